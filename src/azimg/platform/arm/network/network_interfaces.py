"""Network interfaces over HTTP (reference/network.md §3), with their read-only IP
configurations and the effective NSG rules (§8) a NIC is subject to."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Network
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm.deps import ARM_DEPENDENCIES, JsonBody, StoreDep
from azimg.platform.arm.models import parse
from azimg.platform.arm.network.models import (
    NetworkInterfaceBody,
    TagsBody,
    etag,
    ref,
    rg_base,
)
from azimg.platform.arm.network.routes import add_common_routes
from azimg.platform.arm.paging import page
from azimg.platform.errors import UnsupportedProperty
from azimg.platform.resources.common import check_tags, not_found
from azimg.platform.resources.network import network_interfaces as nics
from azimg.platform.resources.network import network_security_groups as nsgs
from azimg.platform.resources.network import nsg_eval, virtual_networks
from azimg.platform.resources.network.network_interfaces import (
    IPCONFIG_TYPE,
    TYPE,
    IpConfigSpec,
    IpConfiguration,
    NetworkInterface,
    NetworkInterfaceSpec,
)
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["networkInterfaces"])
RG_BASE = rg_base("networkinterfaces")


def spec_of(req: NetworkInterfaceBody) -> NetworkInterfaceSpec:
    p = req.properties
    configs = []
    for i, c in enumerate((p.ipConfigurations or []) if p else []):
        cp = c.properties
        if cp and (
            cp.applicationSecurityGroups
            or cp.loadBalancerBackendAddressPools
            or cp.loadBalancerInboundNatRules
        ):
            raise UnsupportedProperty(
                "Application security groups and load balancers are not supported by azimg.",
                target=f"properties.ipConfigurations[{i}].properties",
            )
        configs.append(
            IpConfigSpec(
                name=c.name or "",
                subnet_id=cp.subnet.id if cp and cp.subnet else None,
                allocation_method=cp.privateIPAllocationMethod if cp else None,
                private_ip_address=cp.privateIPAddress if cp else None,
                version=cp.privateIPAddressVersion if cp else None,
                primary=cp.primary if cp else None,
                public_ip_id=cp.publicIPAddress.id if cp and cp.publicIPAddress else None,
            )
        )
    if p is not None and p.nicType not in (None, "Standard"):
        raise UnsupportedProperty(
            f"The nicType '{p.nicType}' is not supported by azimg.", target="properties.nicType"
        )
    return NetworkInterfaceSpec(
        location=req.location,
        ip_configurations=tuple(configs),
        nsg_id=p.networkSecurityGroup.id if p and p.networkSecurityGroup else None,
        enable_ip_forwarding=bool(p and p.enableIPForwarding),
        enable_accelerated_networking=bool(p and p.enableAcceleratedNetworking),
        dns_servers=tuple(p.dnsSettings.dnsServers or ()) if p and p.dnsSettings else (),
        tags=req.tags,
    )


def render_ipconfig(nic: NetworkInterface, c: IpConfiguration) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "privateIPAddress": c.private_ip,
        "privateIPAllocationMethod": c.allocation_method,
        "privateIPAddressVersion": "IPv4",
        "subnet": ref(c.subnet_id),
        "primary": c.primary,
    }
    if c.public_ip_id:
        props["publicIPAddress"] = ref(c.public_ip_id)
    return {
        "id": nic.ipconfig_id(c.name),
        "name": c.name,
        "etag": etag(nic.etag),
        "type": IPCONFIG_TYPE,
        "properties": props,
    }


def render(nic: NetworkInterface) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningState": nic.provisioning_state,
        "resourceGuid": nic.resource_guid,
        "ipConfigurations": [render_ipconfig(nic, c) for c in nic.ip_configurations],
        "dnsSettings": {"dnsServers": list(nic.dns_servers), "appliedDnsServers": []},
        "macAddress": nic.mac_address,
        "enableAcceleratedNetworking": nic.enable_accelerated_networking,
        "enableIPForwarding": nic.enable_ip_forwarding,
        "vnetEncryptionSupported": False,
        "hostedWorkloads": [],
        "tapConfigurations": [],
        "nicType": "Standard",
    }
    if nic.nsg_id:
        props["networkSecurityGroup"] = ref(nic.nsg_id)
    if nic.virtual_machine_id:
        props["virtualMachine"] = ref(nic.virtual_machine_id)
    if nic.primary is not None:
        props["primary"] = nic.primary
    return {
        "id": nic.id,
        "name": nic.name,
        "type": TYPE,
        "location": nic.location,
        "tags": dict(nic.tags),
        "etag": etag(nic.etag),
        "properties": props,
    }


@router.put(RG_BASE + "/{name}")
def create_or_update(
    subscription_id: str, resource_group: str, name: str, body: JsonBody, store: StoreDep
) -> Response:
    req = parse(NetworkInterfaceBody, body)
    nic, created = nics.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        spec=spec_of(req),
    )
    return JSONResponse(render(nic), status_code=201 if created else 200)


@router.patch(RG_BASE + "/{name}")
def update_tags(
    subscription_id: str, resource_group: str, name: str, body: JsonBody, store: StoreDep
) -> dict[str, Any]:
    req = parse(TagsBody, body)
    nic = nics.get(store, subscription_id=subscription_id, resource_group=resource_group, name=name)
    return render(nics.save(store, replace(nic, tags=check_tags(req.tags))))


@router.get(RG_BASE + "/{nic}/ipconfigurations")
def list_ipconfigs(
    subscription_id: str, resource_group: str, nic: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    n = nics.get(store, subscription_id=subscription_id, resource_group=resource_group, name=nic)
    return page(request, [render_ipconfig(n, c) for c in n.ip_configurations])


@router.get(RG_BASE + "/{nic}/ipconfigurations/{name}")
def get_ipconfig(
    subscription_id: str, resource_group: str, nic: str, name: str, store: StoreDep
) -> dict[str, Any]:
    n = nics.get(store, subscription_id=subscription_id, resource_group=resource_group, name=nic)
    for c in n.ip_configurations:
        if c.name.lower() == name.lower():
            return render_ipconfig(n, c)
    raise not_found(IPCONFIG_TYPE, f"{n.name}/{name}", resource_group)


def _effective_rules(
    rules: tuple[nsg_eval.Rule, ...], vnet: list[IPv4Network], user_names: set[str]
) -> list[dict[str, Any]]:
    out = []
    for d in ("Inbound", "Outbound"):
        for r in nsg_eval.ordered(rules, d):
            kind = "securityRules" if r.name in user_names else "defaultSecurityRules"

            def show(ports: tuple[str, ...]) -> str:
                a, b = nsg_eval.port_range(ports[0]) if len(ports) == 1 else (0, 65535)
                return f"{a}-{b}"

            def expanded(prefixes: tuple[str, ...]) -> list[str]:
                return [str(n) for p in prefixes for n in nsg_eval.expand(p, vnet)]

            out.append(
                {
                    "name": f"{kind}/{r.name}",
                    "protocol": "All" if r.protocol == "*" else r.protocol,
                    "sourcePortRange": show(r.source_ports),
                    "destinationPortRange": show(r.destination_ports),
                    "sourceAddressPrefix": r.source_prefixes[0],
                    "destinationAddressPrefix": r.destination_prefixes[0],
                    "expandedSourceAddressPrefix": expanded(r.source_prefixes),
                    "expandedDestinationAddressPrefix": expanded(r.destination_prefixes),
                    "access": r.access,
                    "priority": r.priority,
                    "direction": d,
                }
            )
    return out


@router.post(RG_BASE + "/{nic}/effectivenetworksecuritygroups")
def effective_network_security_groups(
    subscription_id: str, resource_group: str, nic: str, store: StoreDep
) -> dict[str, Any]:
    """The NSGs on the NIC's path (subnet, NIC) with their rules expanded for its VNet."""
    n = nics.get(store, subscription_id=subscription_id, resource_group=resource_group, name=nic)
    primary = n.primary_ip_configuration
    vnet, subnet = virtual_networks.subnet_by_id(store, primary.subnet_id)
    prefixes = [IPv4Network(p) for p in vnet.address_prefixes]
    value = []
    for nsg_id, association in (
        (subnet.nsg_id, {"subnet": ref(primary.subnet_id)}),
        (n.nsg_id, {"networkInterface": ref(n.id)}),
    ):
        if not nsg_id:
            continue
        group = nsgs.get_by_id(store, nsg_id)
        value.append(
            {
                "networkSecurityGroup": ref(group.id),
                "association": association,
                "effectiveSecurityRules": _effective_rules(
                    group.eval_rules(), prefixes, {r.name for r in group.rules}
                ),
                "tagMap": {},
            }
        )
    return {"value": value}


def render_by_id(store: Store, rid: str) -> dict[str, Any]:
    return render(nics.get_by_id(store, rid))


add_common_routes(router, "networkinterfaces", nics, lambda _store, nic: render(nic))
