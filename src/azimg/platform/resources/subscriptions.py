"""Subscriptions, tenants and locations: read-only views of what identity bootstraps."""

from __future__ import annotations

from dataclasses import dataclass

from azimg.platform.errors import SubscriptionNotFound
from azimg.platform.identity import SUBSCRIPTION_TYPE, TENANT_TYPE
from azimg.platform.store import Store

# Display names and facts of real regions; an unknown configured region gets a plain name.
_REGION_FACTS: dict[str, tuple[str, str, str]] = {
    "eastus": ("East US", "US", "Virginia"),
    "eastus2": ("East US 2", "US", "Virginia"),
    "westus": ("West US", "US", "California"),
    "westus2": ("West US 2", "US", "Washington"),
    "centralus": ("Central US", "US", "Iowa"),
    "westeurope": ("West Europe", "Europe", "Netherlands"),
    "northeurope": ("North Europe", "Europe", "Ireland"),
    "uksouth": ("UK South", "Europe", "London"),
    "southeastasia": ("Southeast Asia", "Asia Pacific", "Singapore"),
    "japaneast": ("Japan East", "Asia Pacific", "Tokyo, Saitama"),
    "australiaeast": ("Australia East", "Asia Pacific", "New South Wales"),
}


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    tenant_id: str
    display_name: str
    state: str


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    display_name: str
    default_domain: str


@dataclass(frozen=True)
class Location:
    name: str
    display_name: str
    geography_group: str
    physical_location: str


def get(store: Store, *, subscription_id: str) -> Subscription:
    doc = store.meta.get(f"/subscriptions/{subscription_id}")
    if doc is None or doc.type != SUBSCRIPTION_TYPE:
        raise SubscriptionNotFound(f"The subscription '{subscription_id}' could not be found.")
    b = doc.body
    return Subscription(b["subscriptionId"], b["tenantId"], b["displayName"], b["state"])


def list_all(store: Store) -> list[Subscription]:
    return [
        Subscription(
            d.body["subscriptionId"], d.body["tenantId"], d.body["displayName"], d.body["state"]
        )
        for d in store.meta.list(type=SUBSCRIPTION_TYPE)
    ]


def list_tenants(store: Store) -> list[Tenant]:
    return [
        Tenant(d.body["tenantId"], d.body["displayName"], d.body["defaultDomain"])
        for d in store.meta.list(type=TENANT_TYPE)
    ]


def region_facts(store: Store) -> list[Location]:
    """The platform's regions with their display names (no subscription needed)."""
    out = []
    for region in store.regions:
        display, geo, physical = _REGION_FACTS.get(region, (region, "Other", region))
        out.append(Location(region, display, geo, physical))
    return out


def list_locations(store: Store, *, subscription_id: str) -> list[Location]:
    get(store, subscription_id=subscription_id)
    return region_facts(store)
