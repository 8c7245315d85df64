"""Array and object functions, including the ones that also take strings (``concat``,
``contains``, ``empty``, ``first``, ``last``, ``indexOf``, ``lastIndexOf``, ``length``, ``skip``,
``take``). Case rules follow reference §3.1: string ``contains`` is case-sensitive, string
``indexOf``/``lastIndexOf`` are not; object ``contains`` matches keys in any case; arrays
compare elements deeply.
"""

from __future__ import annotations

import copy
from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.functions.base import (
    Context,
    deep_equal,
    get_property,
    is_int,
    register,
    to_string,
    type_name,
    want,
    want_int,
)


@register("concat")
def _concat(_ctx: Context, *args: Any) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [x for a in args for x in a]
    return "".join(to_string(a) for a in args if a is not None)


@register("contains", min_args=2, max_args=2)
def _contains(_ctx: Context, container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return to_string(item) in container
    if isinstance(container, list):
        return any(deep_equal(x, item) for x in container)
    if isinstance(container, dict):
        return isinstance(item, str) and get_property(container, item)[0]
    want("contains", container, "String", "Array", "Object")
    return False


@register("empty", min_args=1, max_args=1)
def _empty(_ctx: Context, v: Any) -> bool:
    return v is None or (isinstance(v, (str, list, dict)) and len(v) == 0)


@register("first", min_args=1, max_args=1)
def _first(_ctx: Context, v: Any) -> Any:
    want("first", v, "String", "Array")
    if not v:
        return "" if isinstance(v, str) else None
    return v[0]


@register("last", min_args=1, max_args=1)
def _last(_ctx: Context, v: Any) -> Any:
    want("last", v, "String", "Array")
    if not v:
        return "" if isinstance(v, str) else None
    return v[-1]


@register("indexOf", min_args=2, max_args=2)
def _index_of(_ctx: Context, v: Any, item: Any) -> int:
    if isinstance(v, str):
        return v.lower().find(to_string(item).lower())
    want("indexOf", v, "Array")
    return next((i for i, x in enumerate(v) if deep_equal(x, item)), -1)


@register("lastIndexOf", min_args=2, max_args=2)
def _last_index_of(_ctx: Context, v: Any, item: Any) -> int:
    if isinstance(v, str):
        return v.lower().rfind(to_string(item).lower())
    want("lastIndexOf", v, "Array")
    return next((i for i in range(len(v) - 1, -1, -1) if deep_equal(v[i], item)), -1)


@register("length", min_args=1, max_args=1)
def _length(_ctx: Context, v: Any) -> int:
    if v is None:
        return 0
    want("length", v, "String", "Array", "Object")
    return len(v)


@register("skip", min_args=2, max_args=2)
def _skip(_ctx: Context, v: Any, n: Any) -> Any:
    want("skip", v, "String", "Array")
    return v[max(want_int("skip", n), 0) :]


@register("take", min_args=2, max_args=2)
def _take(_ctx: Context, v: Any, n: Any) -> Any:
    want("take", v, "String", "Array")
    return v[: max(want_int("take", n), 0)]


@register("array", min_args=1, max_args=1)
def _array(_ctx: Context, v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


@register("createArray")
def _create_array(_ctx: Context, *args: Any) -> list[Any]:
    return list(args)


@register("createObject")
def _create_object(_ctx: Context, *args: Any) -> dict[str, Any]:
    if len(args) % 2:
        raise ExpressionError("The template function 'createObject' takes key/value pairs.")
    out: dict[str, Any] = {}
    for k, v in zip(args[::2], args[1::2], strict=True):
        if not isinstance(k, str):
            raise ExpressionError("The keys of 'createObject' must be strings.")
        out[k] = v
    return out


@register("null", min_args=0, max_args=0)
def _null(_ctx: Context) -> None:
    return None


@register("flatten", min_args=1, max_args=1)
def _flatten(_ctx: Context, v: Any) -> list[Any]:
    want("flatten", v, "Array")
    out: list[Any] = []
    for x in v:
        want("flatten", x, "Array")
        out.extend(x)
    return out


@register("objectKeys", min_args=1, max_args=1)
def _object_keys(_ctx: Context, v: Any) -> list[str]:
    want("objectKeys", v, "Object")
    return list(v)


@register("items", min_args=1, max_args=1)
def _items(_ctx: Context, v: Any) -> list[dict[str, Any]]:
    want("items", v, "Object")
    return [{"key": k, "value": v[k]} for k in sorted(v, key=str.lower)]


@register("range", min_args=2, max_args=2)
def _range(_ctx: Context, start: Any, count: Any) -> list[int]:
    s, n = want_int("range", start), want_int("range", count)
    if not 0 <= n <= 10000:
        raise ExpressionError(
            f"The count '{n}' of 'range' must be between 0 and 10000 (inclusive)."
        )
    if s + n - 1 > 2**31 - 1:
        raise ExpressionError("The sum of start and count of 'range' must fit in 32 bits.")
    return list(range(s, s + n))


@register("tryGet", min_args=2)
def _try_get(_ctx: Context, v: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(v, dict) and isinstance(key, str):
            found, v = get_property(v, key)
            if not found:
                return None
        elif isinstance(v, list) and is_int(key):
            if not 0 <= key < len(v):
                return None
            v = v[key]
        else:
            return None
    return v


@register("shallowMerge", min_args=1, max_args=1)
def _shallow_merge(_ctx: Context, objs: Any) -> dict[str, Any]:
    want("shallowMerge", objs, "Array")
    out: dict[str, Any] = {}
    for o in objs:
        want("shallowMerge", o, "Object")
        out.update(o)
    return out


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(out.get(k), dict) and isinstance(v, dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@register("union", min_args=1)
def _union(_ctx: Context, *args: Any) -> Any:
    if all(isinstance(a, list) for a in args):
        out: list[Any] = []
        for a in args:
            for x in a:
                if not any(deep_equal(x, y) for y in out):
                    out.append(x)
        return out
    if all(isinstance(a, dict) for a in args):
        merged: dict[str, Any] = {}
        for a in args:
            merged = _merge(merged, a)
        return merged
    raise ExpressionError(
        "The template function 'union' expects all arrays or all objects; got "
        + ", ".join(type_name(a) for a in args)
        + "."
    )


@register("intersection", min_args=2)
def _intersection(_ctx: Context, *args: Any) -> Any:
    if all(isinstance(a, list) for a in args):
        out: list[Any] = []
        for x in args[0]:
            in_all = all(any(deep_equal(x, y) for y in a) for a in args[1:])
            if in_all and not any(deep_equal(x, y) for y in out):
                out.append(x)
        return out
    if all(isinstance(a, dict) for a in args):
        first = args[0]
        return {
            k: v for k, v in first.items() if all(k in a and deep_equal(a[k], v) for a in args[1:])
        }
    raise ExpressionError("The template function 'intersection' expects all arrays or objects.")


@register("indexFromEnd", min_args=2, max_args=2)
def _index_from_end(_ctx: Context, v: Any, n: Any) -> Any:
    want("indexFromEnd", v, "Array")
    i = want_int("indexFromEnd", n)
    if not 1 <= i <= len(v):
        raise ExpressionError(f"The index '{i}' of 'indexFromEnd' is out of bounds.")
    return v[-i]


@register("tryIndexFromEnd", min_args=2, max_args=2)
def _try_index_from_end(_ctx: Context, v: Any, n: Any) -> Any:
    want("tryIndexFromEnd", v, "Array")
    i = want_int("tryIndexFromEnd", n)
    return v[-i] if 1 <= i <= len(v) else None
