"""Deployment and scope functions: ``parameters``, ``variables``, ``deployment``,
``environment``, ``resourceGroup``, ``subscription``, ``tenant``, ``managementGroup``,
``deployer``. The objects come from the context, built by the engine as ARM returns them;
``resourceGroup().id`` keeps the stored casing because ``uniqueString`` hashes it."""

from __future__ import annotations

from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.functions.base import (
    Context,
    get_property,
    register,
    want_str,
)


@register("parameters", min_args=1, max_args=1)
def _parameters(ctx: Context, name: Any) -> Any:
    found, value = get_property(ctx.parameters, want_str("parameters", name))
    if not found:
        raise ExpressionError(f"The template parameter '{name}' is not found.")
    return value


@register("variables", min_args=1, max_args=1)
def _variables(ctx: Context, name: Any) -> Any:
    if ctx.variables is None:
        raise ExpressionError("The template function 'variables' is not expected at this location.")
    return ctx.variables(want_str("variables", name))


@register("deployment", min_args=0, max_args=0)
def _deployment(ctx: Context) -> Any:
    return dict(ctx.deployment)


@register("environment", min_args=0, max_args=0)
def _environment(ctx: Context) -> Any:
    return dict(ctx.environment)


@register("resourceGroup", min_args=0, max_args=0)
def _resource_group(ctx: Context) -> Any:
    if ctx.resource_group is None:
        raise ExpressionError(
            "The template function 'resourceGroup' is not expected at this location: the "
            "deployment is not at resource-group scope."
        )
    return dict(ctx.resource_group)


@register("subscription", min_args=0, max_args=0)
def _subscription(ctx: Context) -> Any:
    return {
        "id": f"/subscriptions/{ctx.subscription_id}",
        "subscriptionId": ctx.subscription_id,
        "tenantId": ctx.tenant_id,
        "displayName": ctx.subscription_name,
    }


@register("tenant", min_args=0, max_args=0)
def _tenant(ctx: Context) -> Any:
    return {
        "countryCode": "US",
        "displayName": "azimg",
        "id": f"/tenants/{ctx.tenant_id}",
        "tenantId": ctx.tenant_id,
    }


@register("managementGroup", min_args=0, max_args=0)
def _management_group(_ctx: Context) -> Any:
    raise ExpressionError(
        "The template function 'managementGroup' is valid only in management-group "
        "deployments, which azimg does not serve."
    )


@register("deployer", min_args=0, max_args=0)
def _deployer(ctx: Context) -> Any:
    return dict(ctx.deployer)
