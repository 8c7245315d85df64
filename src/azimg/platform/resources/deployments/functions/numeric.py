"""Numeric functions over 64-bit integers: overflow is an error, ``div`` truncates toward
zero and ``mod`` takes the dividend's sign (.NET semantics, reference §3.1)."""

from __future__ import annotations

from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.functions.base import (
    Context,
    is_int,
    register,
    want,
    want_int,
)

_LO, _HI = -(2**63), 2**63 - 1


def _checked(fn: str, v: int) -> int:
    if not _LO <= v <= _HI:
        raise ExpressionError(f"The result of '{fn}' overflows a 64-bit integer.")
    return v


@register("add", min_args=2, max_args=2)
def _add(_ctx: Context, a: Any, b: Any) -> int:
    return _checked("add", want_int("add", a) + want_int("add", b))


@register("sub", min_args=2, max_args=2)
def _sub(_ctx: Context, a: Any, b: Any) -> int:
    return _checked("sub", want_int("sub", a) - want_int("sub", b))


@register("mul", min_args=2, max_args=2)
def _mul(_ctx: Context, a: Any, b: Any) -> int:
    return _checked("mul", want_int("mul", a) * want_int("mul", b))


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


@register("div", min_args=2, max_args=2)
def _div(_ctx: Context, a: Any, b: Any) -> int:
    x, y = want_int("div", a), want_int("div", b)
    if y == 0:
        raise ExpressionError("The template function 'div' cannot divide by zero.")
    return _checked("div", _trunc_div(x, y))


@register("mod", min_args=2, max_args=2)
def _mod(_ctx: Context, a: Any, b: Any) -> int:
    x, y = want_int("mod", a), want_int("mod", b)
    if y == 0:
        raise ExpressionError("The template function 'mod' cannot divide by zero.")
    return x - _trunc_div(x, y) * y


@register("int", min_args=1, max_args=1)
def _int(_ctx: Context, v: Any) -> int:
    if is_int(v):
        return int(v)
    if isinstance(v, str):
        try:
            return _checked("int", int(v.strip()))
        except ValueError:
            pass
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise ExpressionError(f"The template function 'int' cannot convert '{v}' to an integer.")


@register("float", min_args=1, max_args=1)
def _float(_ctx: Context, v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ExpressionError(f"The template function 'float' cannot convert '{v}'.") from None


def _values(fn: str, args: tuple[Any, ...]) -> list[Any]:
    vals = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not vals:
        raise ExpressionError(f"The template function '{fn}' needs at least one value.")
    for v in vals:
        want(fn, v, "Integer")
    return vals


@register("min", min_args=1)
def _min(_ctx: Context, *args: Any) -> int:
    return min(_values("min", args))


@register("max", min_args=1)
def _max(_ctx: Context, *args: Any) -> int:
    return max(_values("max", args))


@register("copyIndex", min_args=0, max_args=2)
def _copy_index(ctx: Context, *args: Any) -> int:
    loop: str | None = None
    offset = 0
    for a in args:
        if isinstance(a, str):
            loop = a
        else:
            offset = want_int("copyIndex", a)
    name = loop if loop is not None else ctx.current_loop
    if name is None:
        raise ExpressionError(
            "The template function 'copyIndex' is not expected at this location: it is "
            "valid only inside a copy loop."
        )
    for key, value in ctx.copy_indexes.items():
        if key.lower() == name.lower():
            return value + offset
    raise ExpressionError(f"The copy loop '{name}' is not an enclosing copy loop here.")
