"""Lambda functions (``filter``, ``map``, ``reduce``, ``sort``, ``toObject``, ``groupBy``,
``mapValues``). They are lazy: the ``lambda(...)`` argument is a node, evaluated once per
element in a child context whose ``lambda_vars`` carry the element (``lambdaVariables``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.functions.base import (
    Context,
    register,
    to_string,
    want,
)

Evaluate = Callable[[Any, Context], Any]


def _lambda(fn: str, node: Any, nparams: Sequence[int]) -> tuple[list[str], Any]:
    """The parameter names and body of a ``lambda('x', ..., body)`` node."""
    if type(node).__name__ != "Call" or node.name.lower() != "lambda":
        raise ExpressionError(f"The template function '{fn}' expects a lambda expression.")
    *params, body = node.args
    names = []
    for p in params:
        if type(p).__name__ != "Lit" or not isinstance(p.value, str):
            raise ExpressionError("The parameters of 'lambda' must be string literals.")
        names.append(p.value)
    if len(names) not in nparams:
        raise ExpressionError(
            f"The lambda of '{fn}' must take {' or '.join(map(str, nparams))} parameter(s)."
        )
    return names, body


def _call(ctx: Context, ev: Evaluate, names: list[str], body: Any, *values: Any) -> Any:
    scope = dict(ctx.lambda_vars)
    scope.update(zip(names, values, strict=False))
    return ev(body, ctx.child(lambda_vars=scope))


@register("lambda", lazy=True, min_args=1)
def _lambda_alone(_ctx: Context, _nodes: Any, _ev: Evaluate) -> Any:
    raise ExpressionError("A lambda may appear only as an argument of a lambda function.")


@register("lambdaVariables", min_args=1, max_args=1)
def _lambda_variables(ctx: Context, name: Any) -> Any:
    if name not in ctx.lambda_vars:
        raise ExpressionError(f"The lambda variable '{name}' is not defined.")
    return ctx.lambda_vars[name]


@register("filter", lazy=True, min_args=2, max_args=2)
def _filter(ctx: Context, nodes: Any, ev: Evaluate) -> list[Any]:
    items = ev(nodes[0], ctx)
    want("filter", items, "Array")
    names, body = _lambda("filter", nodes[1], (1, 2))
    out = []
    for i, x in enumerate(items):
        keep = _call(ctx, ev, names, body, x, i)
        if not isinstance(keep, bool):
            raise ExpressionError("The lambda of 'filter' must return a boolean.")
        if keep:
            out.append(x)
    return out


@register("map", lazy=True, min_args=2, max_args=2)
def _map(ctx: Context, nodes: Any, ev: Evaluate) -> list[Any]:
    items = ev(nodes[0], ctx)
    want("map", items, "Array")
    names, body = _lambda("map", nodes[1], (1, 2))
    return [_call(ctx, ev, names, body, x, i) for i, x in enumerate(items)]


@register("reduce", lazy=True, min_args=3, max_args=3)
def _reduce(ctx: Context, nodes: Any, ev: Evaluate) -> Any:
    items = ev(nodes[0], ctx)
    want("reduce", items, "Array")
    acc = ev(nodes[1], ctx)
    names, body = _lambda("reduce", nodes[2], (2, 3))
    for i, x in enumerate(items):
        acc = _call(ctx, ev, names, body, acc, x, i)
    return acc


@register("sort", lazy=True, min_args=2, max_args=2)
def _sort(ctx: Context, nodes: Any, ev: Evaluate) -> list[Any]:
    items = ev(nodes[0], ctx)
    want("sort", items, "Array")
    names, body = _lambda("sort", nodes[1], (2,))

    def cmp(a: Any, b: Any) -> int:
        if _call(ctx, ev, names, body, a, b) is True:
            return -1
        return 1 if _call(ctx, ev, names, body, b, a) is True else 0

    return sorted(items, key=functools.cmp_to_key(cmp))


@register("toObject", lazy=True, min_args=2, max_args=3)
def _to_object(ctx: Context, nodes: Any, ev: Evaluate) -> dict[str, Any]:
    items = ev(nodes[0], ctx)
    want("toObject", items, "Array")
    knames, kbody = _lambda("toObject", nodes[1], (1,))
    vlam = _lambda("toObject", nodes[2], (1,)) if len(nodes) > 2 else None
    out: dict[str, Any] = {}
    for x in items:
        key = _call(ctx, ev, knames, kbody, x)
        if not isinstance(key, str):
            raise ExpressionError("The key lambda of 'toObject' must return a string.")
        out[key] = _call(ctx, ev, vlam[0], vlam[1], x) if vlam else x
    return out


@register("groupBy", lazy=True, min_args=2, max_args=2)
def _group_by(ctx: Context, nodes: Any, ev: Evaluate) -> dict[str, list[Any]]:
    items = ev(nodes[0], ctx)
    want("groupBy", items, "Array")
    names, body = _lambda("groupBy", nodes[1], (1,))
    out: dict[str, list[Any]] = {}
    for x in items:
        out.setdefault(to_string(_call(ctx, ev, names, body, x)), []).append(x)
    return out


@register("mapValues", lazy=True, min_args=2, max_args=2)
def _map_values(ctx: Context, nodes: Any, ev: Evaluate) -> dict[str, Any]:
    obj = ev(nodes[0], ctx)
    want("mapValues", obj, "Object")
    names, body = _lambda("mapValues", nodes[1], (1,))
    return {k: _call(ctx, ev, names, body, v) for k, v in obj.items()}
