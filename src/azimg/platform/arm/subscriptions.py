"""Subscriptions, tenants and locations (read-only plumbing; providers: ``providers.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, StoreDep
from azimg.platform.arm.paging import page
from azimg.platform.resources import authorization, subscriptions
from azimg.platform.resources.common import check_subscription

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["subscriptions"])


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


__all__ = ["check_subscription", "router"]
