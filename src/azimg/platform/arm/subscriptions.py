"""Subscriptions, tenants, locations and resource providers (read-only plumbing)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, StoreDep
from azimg.platform.arm.paging import page
from azimg.platform.errors import RouteNotFound
from azimg.platform.resources import authorization, subscriptions
from azimg.platform.resources.common import check_subscription

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["subscriptions"])

_COMPUTE_TYPES = {
    "disks": ["2026-03-02", "2025-01-02", "2024-03-02", "2023-10-02", "2023-04-02"],
    "snapshots": ["2026-03-02", "2025-01-02", "2024-03-02", "2023-10-02", "2023-04-02"],
    "images": ["2026-04-01", "2024-11-01", "2024-07-01", "2024-03-01"],
    "galleries": ["2026-03-03", "2024-03-03", "2023-07-03", "2022-01-03", "2021-10-01"],
    "galleries/images": ["2026-03-03", "2024-03-03", "2023-07-03", "2021-10-01"],
    "galleries/images/versions": ["2026-03-03", "2024-03-03", "2023-07-03", "2021-10-01"],
    "virtualMachines": ["2026-04-01", "2025-11-01", "2024-11-01", "2024-03-01", "2022-11-01"],
    "locations": ["2026-04-01", "2024-11-01"],
    "locations/operations": ["2026-04-01", "2024-11-01"],
    "locations/diskoperations": ["2026-03-02", "2025-01-02"],
    "locations/capsoperations": ["2026-03-03", "2024-03-03"],
}
_RESOURCES_TYPES = {
    "resourceGroups": ["2025-04-01", "2024-11-01", "2022-09-01"],
    "subscriptions": ["2022-12-01"],
    "tenants": ["2022-12-01"],
    "locations": ["2022-12-01"],
}


def _provider(sub: str | None, namespace: str, display_locations: list[str]) -> dict[str, Any]:
    types = _COMPUTE_TYPES if namespace.lower() == "microsoft.compute" else _RESOURCES_TYPES
    canonical = (
        "Microsoft.Compute" if namespace.lower() == "microsoft.compute" else "Microsoft.Resources"
    )
    prefix = f"/subscriptions/{sub}" if sub else ""
    return {
        "id": f"{prefix}/providers/{canonical}",
        "namespace": canonical,
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": [
            {"resourceType": t, "locations": display_locations, "apiVersions": v}
            for t, v in types.items()
        ],
    }


def _display_locations(store: Any, sub: str) -> list[str]:
    return [loc.display_name for loc in subscriptions.list_locations(store, subscription_id=sub)]


def _subscription_json(s: subscriptions.Subscription) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{s.subscription_id}",
        "subscriptionId": s.subscription_id,
        "tenantId": s.tenant_id,
        "displayName": s.display_name,
        "state": s.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
    }


@router.get("/subscriptions")
def list_subscriptions(request: Request, store: StoreDep, caller: CallerDep) -> dict[str, Any]:
    """Only the token tenant's subscriptions where the caller holds a role at or below the
    subscription (reference/rbac-sharing.md §1.5): never another tenant's."""
    visible = set(
        authorization.visible_subscriptions(
            store, tenant_id=caller.tenant_id, principal_id=caller.object_id
        )
    )
    items = [s for s in subscriptions.list_all(store) if s.subscription_id in visible]
    return page(request, [_subscription_json(s) for s in items])


@router.get("/subscriptions/{subscription_id}")
def get_subscription(subscription_id: str, store: StoreDep) -> dict[str, Any]:
    return _subscription_json(subscriptions.get(store, subscription_id=subscription_id))


@router.get("/tenants")
def list_tenants(request: Request, store: StoreDep, caller: CallerDep) -> dict[str, Any]:
    """The token's tenant (a service principal signs in to one tenant at a time)."""
    items = [
        {
            "id": f"/tenants/{t.tenant_id}",
            "tenantId": t.tenant_id,
            "tenantCategory": "Home",
            "displayName": t.display_name,
            "defaultDomain": t.default_domain,
        }
        for t in subscriptions.list_tenants(store)
        if t.tenant_id.lower() == caller.tenant_id.lower()
    ]
    return page(request, items)


@router.get("/subscriptions/{subscription_id}/locations")
def list_locations(subscription_id: str, request: Request, store: StoreDep) -> dict[str, Any]:
    locs = subscriptions.list_locations(store, subscription_id=subscription_id)
    items = [
        {
            "id": f"/subscriptions/{subscription_id}/locations/{loc.name}",
            "name": loc.name,
            "displayName": loc.display_name,
            "regionalDisplayName": f"({loc.geography_group}) {loc.display_name}",
            "type": "Region",
            "metadata": {
                "regionType": "Physical",
                "regionCategory": "Recommended",
                "geographyGroup": loc.geography_group,
                "physicalLocation": loc.physical_location,
                "pairedRegion": [],
            },
        }
        for loc in locs
    ]
    return page(request, items)


_NAMESPACES = ("microsoft.compute", "microsoft.resources")


@router.get("/subscriptions/{subscription_id}/providers")
def list_providers(subscription_id: str, request: Request, store: StoreDep) -> dict[str, Any]:
    locs = _display_locations(store, subscription_id)
    return page(request, [_provider(subscription_id, ns, locs) for ns in _NAMESPACES])


@router.get("/subscriptions/{subscription_id}/providers/{namespace}")
def get_provider(subscription_id: str, namespace: str, store: StoreDep) -> dict[str, Any]:
    if namespace.lower() not in _NAMESPACES:
        raise RouteNotFound(f"The resource provider '{namespace}' is not known to azimg.")
    return _provider(subscription_id, namespace, _display_locations(store, subscription_id))


@router.post("/subscriptions/{subscription_id}/providers/{namespace}/register")
def register_provider(subscription_id: str, namespace: str, store: StoreDep) -> dict[str, Any]:
    """Providers are always registered; registering again answers the provider (200)."""
    return get_provider(subscription_id, namespace, store)


@router.get("/providers")
def list_tenant_providers(request: Request, store: StoreDep) -> dict[str, Any]:
    return page(request, [_provider(None, ns, []) for ns in _NAMESPACES])


@router.get("/providers/{namespace}")
def get_tenant_provider(namespace: str, store: StoreDep) -> dict[str, Any]:
    if namespace.lower() not in _NAMESPACES:
        raise RouteNotFound(f"The resource provider '{namespace}' is not known to azimg.")
    return _provider(None, namespace, [])


__all__ = ["check_subscription", "router"]
