"""Virtual networks and subnets over HTTP (reference/network.md §2)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm.deps import ARM_DEPENDENCIES, JsonBody, StoreDep
from azimg.platform.arm.models import parse
from azimg.platform.arm.network.models import (
    SubnetBody,
    TagsBody,
    VirtualNetworkBody,
    etag,
    ref,
    rg_base,
)
from azimg.platform.arm.network.routes import add_common_routes
from azimg.platform.arm.paging import page
from azimg.platform.errors import InvalidParameter, UnsupportedProperty
from azimg.platform.resources.common import check_tags
from azimg.platform.resources.network import addressing, references, subnets, virtual_networks
from azimg.platform.resources.network.virtual_networks import (
    SUBNET_TYPE,
    TYPE,
    Subnet,
    SubnetSpec,
    VirtualNetwork,
    VirtualNetworkSpec,
)
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["virtualNetworks"])
RG_BASE = rg_base("virtualnetworks")


def subnet_spec(body: SubnetBody, name: str | None = None) -> SubnetSpec:
    p = body.properties
    if p is None:
        return SubnetSpec(name=name or body.name or "")
    for unsupported in ("routeTable", "natGateway", "serviceEndpoints", "delegations"):
        if getattr(p, unsupported):
            raise UnsupportedProperty(
                f"The subnet property '{unsupported}' is not supported by azimg.",
                target=f"properties.{unsupported}",
            )
    return SubnetSpec(
        name=name or body.name or "",
        address_prefix=p.addressPrefix,
        address_prefixes=tuple(p.addressPrefixes or ()),
        nsg_id=p.networkSecurityGroup.id if p.networkSecurityGroup else None,
        private_endpoint_network_policies=p.privateEndpointNetworkPolicies or "Disabled",
        private_link_service_network_policies=p.privateLinkServiceNetworkPolicies or "Enabled",
        default_outbound_access=p.defaultOutboundAccess,
    )


def render_subnet(store: Store, vnet: VirtualNetwork, s: Subnet) -> dict[str, Any]:
    sid = vnet.subnet_id(s.name)
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "addressPrefix": s.address_prefix,
        "privateEndpointNetworkPolicies": s.private_endpoint_network_policies,
        "privateLinkServiceNetworkPolicies": s.private_link_service_network_policies,
    }
    if s.nsg_id:
        props["networkSecurityGroup"] = ref(s.nsg_id)
    if s.default_outbound_access is not None:
        props["defaultOutboundAccess"] = s.default_outbound_access
    users = references.ipconfigs_in_subnet(store, sid)
    if users:
        props["ipConfigurations"] = [{"id": u.ipconfig_id} for u in users]
    return {
        "id": sid,
        "name": s.name,
        "etag": etag(vnet.etag),
        "type": SUBNET_TYPE,
        "properties": props,
    }


def render(store: Store, vnet: VirtualNetwork) -> dict[str, Any]:
    return {
        "id": vnet.id,
        "name": vnet.name,
        "type": TYPE,
        "location": vnet.location,
        "tags": dict(vnet.tags),
        "etag": etag(vnet.etag),
        "properties": {
            "provisioningState": vnet.provisioning_state,
            "resourceGuid": vnet.resource_guid,
            "addressSpace": {"addressPrefixes": list(vnet.address_prefixes)},
            "dhcpOptions": {"dnsServers": list(vnet.dns_servers)},
            "subnets": [render_subnet(store, vnet, s) for s in vnet.subnets],
            "virtualNetworkPeerings": [],
            "enableDdosProtection": vnet.enable_ddos_protection,
            "enableVmProtection": vnet.enable_vm_protection,
        },
    }


@router.put(RG_BASE + "/{name}")
def create_or_update(
    subscription_id: str, resource_group: str, name: str, body: JsonBody, store: StoreDep
) -> Response:
    req = parse(VirtualNetworkBody, body)
    p = req.properties
    if p is not None and p.virtualNetworkPeerings:
        raise UnsupportedProperty(
            "Virtual network peering is not supported by azimg yet.",
            target="properties.virtualNetworkPeerings",
        )
    spec = VirtualNetworkSpec(
        location=req.location,
        address_prefixes=tuple(
            (p.addressSpace.addressPrefixes or []) if p and p.addressSpace else []
        ),
        subnets=tuple(subnet_spec(s) for s in (p.subnets or [])) if p else (),
        dns_servers=tuple(p.dhcpOptions.dnsServers or []) if p and p.dhcpOptions else (),
        tags=req.tags,
        enable_ddos_protection=bool(p and p.enableDdosProtection),
        enable_vm_protection=bool(p and p.enableVmProtection),
    )
    vnet, created = virtual_networks.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        spec=spec,
    )
    return JSONResponse(render(store, vnet), status_code=201 if created else 200)


@router.patch(RG_BASE + "/{name}")
def update_tags(
    subscription_id: str, resource_group: str, name: str, body: JsonBody, store: StoreDep
) -> dict[str, Any]:
    req = parse(TagsBody, body)
    vnet = virtual_networks.get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name
    )
    vnet = virtual_networks.save(store, replace(vnet, tags=check_tags(req.tags)))
    return render(store, vnet)


@router.get(RG_BASE + "/{name}/checkipaddressavailability")
def check_ip_address_availability(
    subscription_id: str, resource_group: str, name: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    """Whether an address is free in the VNet; if not, up to five free ones nearby."""
    vnet = virtual_networks.get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name
    )
    raw = request.query_params.get("ipAddress", "")
    try:
        ip = IPv4Address(raw)
    except ValueError:
        raise InvalidParameter(
            f"The IP address '{raw}' is not a valid IPv4 address.", target="ipAddress"
        ) from None
    subnet = next((s for s in vnet.subnets if ip in s.network), None)
    if subnet is None:
        return {"available": False, "isPlatformReserved": False}
    used = {
        IPv4Address(u.private_ip)
        for u in references.ipconfigs_in_vnet(store, vnet.id)
        if u.private_ip
    }
    reserved = addressing.is_reserved(ip, subnet.network)
    if not reserved and ip not in used:
        return {"available": True}
    free: list[str] = []
    taken = set(used)
    while len(free) < 5:
        nxt = addressing.first_free(subnet.network, taken)
        if nxt is None:
            break
        free.append(str(nxt))
        taken.add(nxt)
    return {"available": False, "availableIPAddresses": free, "isPlatformReserved": reserved}


# --- subnets (child resources) ----------------------------------------------------------------


@router.put(RG_BASE + "/{vnet}/subnets/{name}")
def put_subnet(
    subscription_id: str,
    resource_group: str,
    vnet: str,
    name: str,
    body: JsonBody,
    store: StoreDep,
) -> Response:
    req = parse(SubnetBody, body)
    v, s, created = subnets.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        vnet=vnet,
        spec=subnet_spec(req, name),
    )
    return JSONResponse(render_subnet(store, v, s), status_code=201 if created else 200)


@router.get(RG_BASE + "/{vnet}/subnets/{name}")
def get_subnet(
    subscription_id: str, resource_group: str, vnet: str, name: str, store: StoreDep
) -> dict[str, Any]:
    v, s = subnets.get(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        vnet=vnet,
        name=name,
    )
    return render_subnet(store, v, s)


@router.get(RG_BASE + "/{vnet}/subnets")
def list_subnets(
    subscription_id: str, resource_group: str, vnet: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    v, items = subnets.list_(
        store, subscription_id=subscription_id, resource_group=resource_group, vnet=vnet
    )
    return page(request, [render_subnet(store, v, s) for s in items])


@router.delete(RG_BASE + "/{vnet}/subnets/{name}")
def delete_subnet(
    subscription_id: str, resource_group: str, vnet: str, name: str, store: StoreDep
) -> Response:
    deleted = subnets.delete(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        vnet=vnet,
        name=name,
    )
    return Response(status_code=200 if deleted else 204)


def render_by_id(store: Store, rid: str) -> dict[str, Any]:
    return render(store, virtual_networks.get_by_id(store, rid))


add_common_routes(router, "virtualnetworks", virtual_networks, render)
