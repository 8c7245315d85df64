"""Virtual networks and their subnets (reference/network.md §2).

A VNet is one document holding its subnets. A VNet PUT *replaces* the subnet list, as on
Azure: a body without a subnet that exists deletes it — refused with
``InUseSubnetCannotBeDeleted`` while a NIC's IP configuration is in it. Child PUT/DELETE of
``.../subnets/{name}`` (``subnets.py``) edit one entry of the same document. Which IP
configurations use a subnet is derived from the NIC documents (``references``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network
from typing import Any

from azimg.platform.errors import InvalidParameter
from azimg.platform.network_errors import (
    InUseSubnetCannotBeDeleted,
    InUseSubnetCannotBeUpdated,
    InvalidSubnetPrefixLength,
    NetcfgSubnetRangeOutsideVnet,
    NetcfgSubnetRangesOverlap,
    VnetAddressSpacesOverlap,
)
from azimg.platform.resources.common import (
    Reads,
    check_location,
    check_name,
    check_tags,
    not_found,
    parse_id,
    require_resource_group,
    resource_id,
)
from azimg.platform.resources.network import references
from azimg.platform.resources.network.addressing import first_overlap, parse_prefix, within_any
from azimg.platform.resources.network.references import NSG_TYPE, VNET_TYPE, WRITE_LOCK
from azimg.platform.store import Document, Store

TYPE = VNET_TYPE
SUBNET_TYPE = f"{TYPE}/subnets"
NETWORK_POLICIES = ("Enabled", "Disabled", "NetworkSecurityGroupEnabled", "RouteTableEnabled")


@dataclass(frozen=True)
class SubnetSpec:
    """A subnet as a request gives it (inline in a VNet PUT or as a child PUT)."""

    name: str
    address_prefix: str | None = None
    address_prefixes: tuple[str, ...] = ()
    nsg_id: str | None = None
    private_endpoint_network_policies: str = "Disabled"
    private_link_service_network_policies: str = "Enabled"
    default_outbound_access: bool | None = None


@dataclass(frozen=True)
class VirtualNetworkSpec:
    """A VNet PUT: ``subnets`` is the complete list the VNet will have afterwards."""

    location: str | None
    address_prefixes: tuple[str, ...]
    subnets: tuple[SubnetSpec, ...] = ()
    dns_servers: tuple[str, ...] = ()
    tags: Mapping[str, Any] | None = None
    enable_ddos_protection: bool = False
    enable_vm_protection: bool = False


@dataclass(frozen=True)
class Subnet:
    name: str
    address_prefix: str
    nsg_id: str | None = None
    private_endpoint_network_policies: str = "Disabled"
    private_link_service_network_policies: str = "Enabled"
    default_outbound_access: bool | None = None

    @property
    def network(self) -> IPv4Network:
        return IPv4Network(self.address_prefix)


@dataclass(frozen=True)
class VirtualNetwork:
    id: str
    name: str
    location: str
    address_prefixes: tuple[str, ...]
    subnets: tuple[Subnet, ...]
    resource_guid: str
    dns_servers: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    enable_ddos_protection: bool = False
    enable_vm_protection: bool = False
    provisioning_state: str = "Succeeded"
    etag: str = ""

    def subnet_id(self, name: str) -> str:
        return f"{self.id}/subnets/{name}"

    def subnet(self, name: str) -> Subnet | None:
        for s in self.subnets:
            if s.name.lower() == name.lower():
                return s
        return None


def _to_doc(v: VirtualNetwork) -> Document:
    body = {
        "id": v.id,
        "name": v.name,
        "location": v.location,
        "address_prefixes": list(v.address_prefixes),
        references.VNET_SUBNETS: [vars(s) for s in v.subnets],
        "resource_guid": v.resource_guid,
        "dns_servers": list(v.dns_servers),
        "tags": dict(v.tags),
        "enable_ddos_protection": v.enable_ddos_protection,
        "enable_vm_protection": v.enable_vm_protection,
        "provisioning_state": v.provisioning_state,
    }
    return Document(id=v.id, type=TYPE, body=body, location=v.location)


def from_doc(doc: Document) -> VirtualNetwork:
    b = doc.body
    return VirtualNetwork(
        id=b["id"],
        name=b["name"],
        location=b["location"],
        address_prefixes=tuple(b["address_prefixes"]),
        subnets=tuple(Subnet(**s) for s in b[references.VNET_SUBNETS]),
        resource_guid=b["resource_guid"],
        dns_servers=tuple(b.get("dns_servers", ())),
        tags=dict(b.get("tags", {})),
        enable_ddos_protection=b.get("enable_ddos_protection", False),
        enable_vm_protection=b.get("enable_vm_protection", False),
        provisioning_state=b.get("provisioning_state", "Succeeded"),
        etag=doc.etag,
    )


_READS = Reads(TYPE, from_doc)
get_by_id = _READS.get_by_id
get = _READS.get
list_by_resource_group = _READS.list_by_resource_group
list_by_subscription = _READS.list_by_subscription


def check_subnet_name(name: str) -> None:
    check_name(name, kind="subnet")


def build_subnet(
    store: Store, spec: SubnetSpec, *, vnet_id: str, vnet_name: str, target: str = ""
) -> Subnet:
    """``spec`` checked on its own (name, prefix, size, NSG reference) as a stored subnet."""
    check_subnet_name(spec.name)
    target = f"{target}." if target else ""
    sid = f"{vnet_id}/subnets/{spec.name}"
    prefixes = ([spec.address_prefix] if spec.address_prefix else []) + list(spec.address_prefixes)
    if len(prefixes) != 1:
        raise InvalidParameter(
            f"Subnet '{spec.name}' must have exactly one IPv4 address prefix "
            "(addressPrefix, or addressPrefixes with one entry).",
            target=f"{target}properties.addressPrefix",
        )
    net = parse_prefix(prefixes[0], rid=sid, target=f"{target}properties.addressPrefix")
    if not 8 <= net.prefixlen <= 29:
        raise InvalidSubnetPrefixLength(
            subnet=spec.name, vnet=vnet_name, prefix=str(net), target=f"{target}properties"
        )
    if spec.nsg_id:
        references.require_reference(
            store,
            spec.nsg_id,
            NSG_TYPE,
            rid=sid,
            target=f"{target}properties.networkSecurityGroup.id",
        )
    nsg_doc = store.meta.get(spec.nsg_id) if spec.nsg_id else None
    return Subnet(
        name=spec.name,
        address_prefix=str(net),
        nsg_id=nsg_doc.id if nsg_doc else None,  # canonical casing (reference summary 10)
        private_endpoint_network_policies=spec.private_endpoint_network_policies,
        private_link_service_network_policies=spec.private_link_service_network_policies,
        default_outbound_access=spec.default_outbound_access,
    )


def check_layout(vnet: VirtualNetwork) -> None:
    """Subnets inside the address space and not overlapping one another."""
    spaces = [IPv4Network(p) for p in vnet.address_prefixes]
    for i, s in enumerate(vnet.subnets):
        if not within_any(s.network, spaces):
            raise NetcfgSubnetRangeOutsideVnet(
                subnet=s.name, vnet=vnet.name, target=f"properties.subnets[{i}].addressPrefix"
            )
    pair = first_overlap(s.network for s in vnet.subnets)
    if pair is not None:
        later = next(s for s in vnet.subnets if s.network == pair[1])
        raise NetcfgSubnetRangesOverlap(
            subnet=later.name, vnet=vnet.name, target="properties.subnets"
        )


def check_subnet_changes(store: Store, old: VirtualNetwork | None, new: VirtualNetwork) -> None:
    """A subnet holding IP configurations may be neither removed nor resized."""
    if old is None:
        return
    uses = references.ipconfigs_in_vnet(store, old.id)
    for s in old.subnets:
        sid = old.subnet_id(s.name).lower()
        holders = [u for u in uses if u.subnet_id.lower() == sid]
        if not holders:
            continue
        kept = new.subnet(s.name)
        if kept is None:
            raise InUseSubnetCannotBeDeleted(
                subnet=s.name, ipconfig=holders[0].ipconfig_id, target="properties.subnets"
            )
        if kept.address_prefix != s.address_prefix:
            raise InUseSubnetCannotBeUpdated(
                subnet=s.name, ipconfig=holders[0].ipconfig_id, target="properties.subnets"
            )


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    spec: VirtualNetworkSpec,
) -> tuple[VirtualNetwork, bool]:
    """The VNet as stored and whether it was created (201) rather than replaced (200)."""
    rg = require_resource_group(store, subscription_id, resource_group)
    check_name(name, kind="virtual network")
    rid = resource_id(subscription_id, rg.body.get("name", resource_group), TYPE, name)
    location = check_location(store, spec.location, rtype=TYPE)
    if not spec.address_prefixes:
        raise InvalidParameter(
            "The virtual network must have at least one address prefix in "
            "addressSpace.addressPrefixes.",
            target="properties.addressSpace.addressPrefixes",
        )
    nets = [
        parse_prefix(p, rid=rid, target=f"properties.addressSpace.addressPrefixes[{i}]")
        for i, p in enumerate(spec.address_prefixes)
    ]
    pair = first_overlap(nets)
    if pair is not None:
        raise VnetAddressSpacesOverlap(
            a=str(pair[0]), b=str(pair[1]), vnet=name, target="properties.addressSpace"
        )
    names = [s.name.lower() for s in spec.subnets]
    if len(set(names)) != len(names):
        raise InvalidParameter(
            "Subnet names must be unique within a virtual network.", target="properties.subnets"
        )
    with WRITE_LOCK:
        existing = store.meta.get(rid)
        old = from_doc(existing) if existing and existing.type == TYPE else None
        subnets = tuple(
            build_subnet(store, s, vnet_id=rid, vnet_name=name, target=f"properties.subnets[{i}]")
            for i, s in enumerate(spec.subnets)
        )
        vnet = VirtualNetwork(
            id=old.id if old else rid,
            name=old.name if old else name,
            location=old.location if old else location,
            address_prefixes=tuple(str(n) for n in nets),
            subnets=subnets,
            resource_guid=old.resource_guid if old else str(uuid.uuid4()),
            dns_servers=spec.dns_servers,
            tags=check_tags(spec.tags),
            enable_ddos_protection=spec.enable_ddos_protection,
            enable_vm_protection=spec.enable_vm_protection,
        )
        check_layout(vnet)
        check_subnet_changes(store, old, vnet)
        return save(store, vnet), old is None


def save(store: Store, vnet: VirtualNetwork) -> VirtualNetwork:
    doc = store.meta.put(_to_doc(vnet))
    return replace(vnet, etag=doc.etag)


def delete(store: Store, *, subscription_id: str, resource_group: str, name: str) -> bool:
    """False when there was nothing to delete (204)."""

    def check(doc: Document) -> None:
        uses = references.ipconfigs_in_vnet(store, doc.id)
        if uses:
            subnet = uses[0].subnet_id.rsplit("/", 1)[-1]
            raise InUseSubnetCannotBeDeleted(subnet=subnet, ipconfig=uses[0].ipconfig_id)

    return references.delete_unless_used(
        store,
        TYPE,
        check,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
    )


def subnet_by_id(store: Store, subnet_id: str) -> tuple[VirtualNetwork, Subnet]:
    """The VNet and subnet a ``.../virtualNetworks/{v}/subnets/{s}`` id names (404s if not)."""
    vnet_id, _, sname = subnet_id.rpartition("/subnets/")
    vnet = get_by_id(store, vnet_id)
    sub = vnet.subnet(sname)
    if sub is None:
        raise_subnet_not_found(vnet, sname)
    assert sub is not None
    return vnet, sub


def raise_subnet_not_found(vnet: VirtualNetwork, name: str) -> None:
    raise not_found(SUBNET_TYPE, f"{vnet.name}/{name}", parse_id(vnet.id)["resource_group"])
