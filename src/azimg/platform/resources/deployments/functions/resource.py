"""Resource functions: the ID builders, ``reference``, ``list*`` and ``pickZones``.

``reference`` and ``list*`` call the hooks the engine puts in the context; where they are not
allowed (variables, names, conditions, validation) the context has ``allow_reference`` false
and the call is an error, as on Azure (reference §2.3 "Placement").
"""

from __future__ import annotations

from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.functions.base import (
    Context,
    register,
    want_str,
)


def _typed_path(fn: str, rtype: str, names: list[Any]) -> str:
    ns, *types = rtype.strip("/").split("/")
    if not types:
        raise ExpressionError(f"The resource type '{rtype}' of '{fn}' is not valid.")
    if len(names) != len(types):
        raise ExpressionError(
            f"Unable to evaluate template language function '{fn}': the type '{rtype}' "
            f"requires '{len(types)}' resource name argument(s)."
        )
    parts = [ns]
    for t, n in zip(types, names, strict=True):
        parts += [t, want_str(fn, n)]
    return "/".join(parts)


def _split_type(fn: str, args: tuple[Any, ...]) -> tuple[list[Any], str, list[Any]]:
    for i, a in enumerate(args):
        if isinstance(a, str) and "/" in a:
            return list(args[:i]), a, list(args[i + 1 :])
    raise ExpressionError(f"The template function '{fn}' needs a resource type.")


def resource_id(ctx: Context, *args: Any) -> str:
    scope, rtype, names = _split_type("resourceId", args)
    if len(scope) > 2:
        raise ExpressionError("The template function 'resourceId' got too many scope arguments.")
    sub = scope[0] if len(scope) == 2 else ctx.subscription_id
    rg = scope[-1] if scope else ctx.resource_group_name
    path = _typed_path("resourceId", rtype, names)
    if rg is None:
        return f"/subscriptions/{sub}/providers/{path}"
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{path}"


@register("resourceId", min_args=2)
def _resource_id(ctx: Context, *args: Any) -> str:
    return resource_id(ctx, *args)


@register("subscriptionResourceId", min_args=2)
def _subscription_resource_id(ctx: Context, *args: Any) -> str:
    scope, rtype, names = _split_type("subscriptionResourceId", args)
    sub = scope[0] if scope else ctx.subscription_id
    return f"/subscriptions/{sub}/providers/{_typed_path('subscriptionResourceId', rtype, names)}"


@register("tenantResourceId", min_args=2)
def _tenant_resource_id(_ctx: Context, *args: Any) -> str:
    _, rtype, names = _split_type("tenantResourceId", args)
    return f"/providers/{_typed_path('tenantResourceId', rtype, names)}"


@register("managementGroupResourceId", min_args=2)
def _mg_resource_id(_ctx: Context, *args: Any) -> str:
    scope, rtype, names = _split_type("managementGroupResourceId", args)
    if not scope:
        raise ExpressionError("azimg has no management groups: pass the group's name.")
    path = _typed_path("managementGroupResourceId", rtype, names)
    return f"/providers/Microsoft.Management/managementGroups/{scope[0]}/providers/{path}"


@register("extensionResourceId", min_args=3)
def _extension_resource_id(_ctx: Context, base: Any, rtype: Any, *names: Any) -> str:
    path = _typed_path("extensionResourceId", want_str("extensionResourceId", rtype), list(names))
    return f"{want_str('extensionResourceId', base).rstrip('/')}/providers/{path}"


def _runtime(ctx: Context, fn: str) -> None:
    if not ctx.allow_reference or ctx.reference is None or ctx.list_action is None:
        raise ExpressionError(
            f"The template function '{fn}' is not expected at this location. It can only be "
            "used in the resource properties and the outputs of a template."
        )


@register("reference", min_args=1, max_args=3)
def _reference(ctx: Context, target: Any, api_version: Any = None, full: Any = None) -> Any:
    _runtime(ctx, "reference")
    is_full = isinstance(full, str) and full.lower() == "full"
    if full is not None and not is_full:
        raise ExpressionError("The third parameter of 'reference' must be 'Full'.")
    version = None if api_version is None else want_str("reference", api_version)
    assert ctx.reference is not None
    return ctx.reference(want_str("reference", target), version, is_full)


@register("list*", min_args=2, max_args=3)
def _list_action(ctx: Context, action: str, target: Any, api_version: Any, body: Any = None) -> Any:
    """Any ``list{Action}(id, apiVersion[, body])``; the evaluator routes every unknown
    ``list…`` name here with the name as written."""
    _runtime(ctx, action)
    assert ctx.list_action is not None
    return ctx.list_action(action, want_str(action, target), want_str(action, api_version), body)


@register("pickZones", min_args=3, max_args=5)
def _pick_zones(_ctx: Context, *_args: Any) -> list[str]:
    """azimg's regions have no availability zones, which Azure reports as ``[]``."""
    return []
