"""Public IP addresses over HTTP (reference/network.md §4). ``dnsSettings`` always carries
``fqdn`` when present (az's ``vm list -d`` reads it unconditionally)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm.deps import ARM_DEPENDENCIES, JsonBody, StoreDep
from azimg.platform.arm.models import parse
from azimg.platform.arm.network.models import PublicIpBody, TagsBody, etag, rg_base
from azimg.platform.arm.network.routes import add_common_routes
from azimg.platform.errors import UnsupportedProperty
from azimg.platform.resources.network import public_ip_addresses as pips
from azimg.platform.resources.network import references
from azimg.platform.resources.network.public_ip_addresses import TYPE, PublicIp, PublicIpSpec
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["publicIPAddresses"])
RG_BASE = rg_base("publicipaddresses")


def spec_of(req: PublicIpBody, *, location: str | None = None) -> PublicIpSpec:
    p = req.properties
    if p is not None and p.ipTags:
        raise UnsupportedProperty("IP tags are not supported by azimg.", target="properties.ipTags")
    return PublicIpSpec(
        location=location or req.location,
        sku=req.sku.name if req.sku else None,
        tier=req.sku.tier if req.sku else None,
        allocation_method=p.publicIPAllocationMethod if p else None,
        version=p.publicIPAddressVersion if p else None,
        idle_timeout_minutes=p.idleTimeoutInMinutes if p else None,
        domain_name_label=p.dnsSettings.domainNameLabel if p and p.dnsSettings else None,
        zones=tuple(req.zones or ()),
        tags=req.tags,
    )


def render(store: Store, pip: PublicIp) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningState": pip.provisioning_state,
        "resourceGuid": pip.resource_guid,
        "publicIPAddressVersion": "IPv4",
        "publicIPAllocationMethod": pip.allocation_method,
        "idleTimeoutInMinutes": pip.idle_timeout_minutes,
        "ipTags": [],
    }
    if pip.ip_address:
        props["ipAddress"] = pip.ip_address
    if pip.domain_name_label:
        props["dnsSettings"] = {"domainNameLabel": pip.domain_name_label, "fqdn": pip.fqdn}
    user = references.ipconfig_of_public_ip(store, pip.id)
    if user is not None:
        props["ipConfiguration"] = {"id": user.ipconfig_id}
    body: dict[str, Any] = {
        "id": pip.id,
        "name": pip.name,
        "type": TYPE,
        "location": pip.location,
        "tags": dict(pip.tags),
        "etag": etag(pip.etag),
        "sku": {"name": pip.sku, "tier": pip.tier},
        "properties": props,
    }
    if pip.zones:
        body["zones"] = list(pip.zones)
    return body


@router.put(RG_BASE + "/{name}")
def create_or_update(
    subscription_id: str, resource_group: str, name: str, body: JsonBody, store: StoreDep
) -> Response:
    req = parse(PublicIpBody, body)
    pip, created = pips.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        spec=spec_of(req),
    )
    return JSONResponse(render(store, pip), status_code=201 if created else 200)


@router.patch(RG_BASE + "/{name}")
def update_tags(
    subscription_id: str, resource_group: str, name: str, body: JsonBody, store: StoreDep
) -> dict[str, Any]:
    req = parse(TagsBody, body)
    pip = pips.get(store, subscription_id=subscription_id, resource_group=resource_group, name=name)
    spec = PublicIpSpec(
        location=pip.location,
        sku=pip.sku,
        tier=pip.tier,
        allocation_method=pip.allocation_method,
        idle_timeout_minutes=pip.idle_timeout_minutes,
        domain_name_label=pip.domain_name_label,
        zones=pip.zones,
        tags=req.tags,
    )
    pip, _ = pips.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        spec=spec,
    )
    return render(store, pip)


def render_by_id(store: Store, rid: str) -> dict[str, Any]:
    return render(store, pips.get_by_id(store, rid))


add_common_routes(router, "publicipaddresses", pips, render)
