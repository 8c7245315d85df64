"""Comparison and logical functions. ``if``, ``and`` and ``or`` are lazy: ``if`` evaluates only
the branch it takes, so it can guard ``reference()`` (reference §3.1); ``and``/``or`` stop at
the first deciding value. Strings order by InvariantCulture rules, approximated here by
comparing case-folded first and lower case before upper on ties (so ``less('A','a')`` is
false and ``less('a','A')`` true)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.functions.base import (
    Context,
    deep_equal,
    is_int,
    register,
    type_name,
)

Evaluate = Callable[[Any, Context], Any]


@register("equals", min_args=2, max_args=2)
def _equals(_ctx: Context, a: Any, b: Any) -> bool:
    return deep_equal(a, b)


@register("coalesce", min_args=1)
def _coalesce(_ctx: Context, *args: Any) -> Any:
    return next((a for a in args if a is not None), None)


def _order(fn: str, a: Any, b: Any) -> int:
    if is_int(a) and is_int(b):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        ka, kb = a.casefold(), b.casefold()
        if ka != kb:
            return (ka > kb) - (ka < kb)
        # InvariantCulture puts lower case first on a case-only difference.
        sa, sb = a.swapcase(), b.swapcase()
        return (sa > sb) - (sa < sb)
    raise ExpressionError(
        f"The template function '{fn}' expects two integers or two strings; got "
        f"'{type_name(a)}' and '{type_name(b)}'."
    )


@register("less", min_args=2, max_args=2)
def _less(_ctx: Context, a: Any, b: Any) -> bool:
    return _order("less", a, b) < 0


@register("lessOrEquals", min_args=2, max_args=2)
def _less_or_equals(_ctx: Context, a: Any, b: Any) -> bool:
    return _order("lessOrEquals", a, b) <= 0


@register("greater", min_args=2, max_args=2)
def _greater(_ctx: Context, a: Any, b: Any) -> bool:
    return _order("greater", a, b) > 0


@register("greaterOrEquals", min_args=2, max_args=2)
def _greater_or_equals(_ctx: Context, a: Any, b: Any) -> bool:
    return _order("greaterOrEquals", a, b) >= 0


def _bool_arg(fn: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ExpressionError(
            f"The template function '{fn}' expects boolean parameters; got '{type_name(v)}'."
        )
    return v


@register("and", lazy=True, min_args=2)
def _and(ctx: Context, nodes: Any, ev: Evaluate) -> bool:
    return all(_bool_arg("and", ev(n, ctx)) for n in nodes)


@register("or", lazy=True, min_args=2)
def _or(ctx: Context, nodes: Any, ev: Evaluate) -> bool:
    return any(_bool_arg("or", ev(n, ctx)) for n in nodes)


@register("not", min_args=1, max_args=1)
def _not(_ctx: Context, v: Any) -> bool:
    return not _bool_arg("not", v)


@register("if", lazy=True, min_args=3, max_args=3)
def _if(ctx: Context, nodes: Any, ev: Evaluate) -> Any:
    cond = _bool_arg("if", ev(nodes[0], ctx))
    return ev(nodes[1] if cond else nodes[2], ctx)


@register("true", min_args=0, max_args=0)
def _true(_ctx: Context) -> bool:
    return True


@register("false", min_args=0, max_args=0)
def _false(_ctx: Context) -> bool:
    return False


@register("bool", min_args=1, max_args=1)
def _bool(_ctx: Context, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if is_int(v) and v in (0, 1):
        return v == 1
    raise ExpressionError(f"The template function 'bool' cannot convert '{v}' to a boolean.")
