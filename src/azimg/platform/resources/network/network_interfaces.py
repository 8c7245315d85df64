"""Network interfaces and their IP configurations (reference/network.md §3, §7.1).

Private addresses: Static takes the address given, which must lie in the subnet, outside the
five reserved addresses and not held by another IP configuration; Dynamic takes the lowest
free address from ``.4`` and keeps it across updates while the subnet stays the same. All IP
configurations of a NIC are in one VNet, exactly one is primary. The MAC address is chosen
once at creation in Microsoft's ``00-0D-3A`` OUI and never changes. ``virtual_machine_id`` is
set by Compute (``attach`` / ``detach``); a NIC with one cannot be deleted (``NicInUse``).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from typing import Any

from azimg.platform.errors import InvalidParameter, UnsupportedProperty
from azimg.platform.network_errors import (
    InvalidResourceReference,
    NetworkInterfaceIpConfigurationsInvalid,
    NicInUse,
    NicNotInVmLocation,
    PrivateIPAddressInReservedRange,
    PrivateIPAddressIsAllocated,
    PrivateIPAddressNotInSubnet,
    PublicIPAddressInUse,
    SubnetIsFull,
    VirtualMachineMustHaveOneNetworkInterfaceAsPrimary,
)
from azimg.platform.resources.common import (
    Reads,
    check_location,
    check_name,
    check_tags,
    enum_value,
    require_resource_group,
    resource_id,
)
from azimg.platform.resources.network import addressing, references, virtual_networks
from azimg.platform.resources.network.references import (
    NIC_TYPE,
    NSG_TYPE,
    PIP_TYPE,
    VNET_TYPE,
    WRITE_LOCK,
)
from azimg.platform.store import Document, Store

TYPE = NIC_TYPE
IPCONFIG_TYPE = f"{TYPE}/ipConfigurations"
METHODS = ("Static", "Dynamic")


@dataclass(frozen=True)
class IpConfigSpec:
    name: str
    subnet_id: str | None
    allocation_method: str | None = None
    private_ip_address: str | None = None
    version: str | None = None
    primary: bool | None = None
    public_ip_id: str | None = None


@dataclass(frozen=True)
class NetworkInterfaceSpec:
    location: str | None
    ip_configurations: tuple[IpConfigSpec, ...]
    nsg_id: str | None = None
    enable_ip_forwarding: bool = False
    enable_accelerated_networking: bool = False
    dns_servers: tuple[str, ...] = ()
    tags: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class IpConfiguration:
    name: str
    subnet_id: str
    private_ip: str
    allocation_method: str
    primary: bool
    public_ip_id: str | None = None


@dataclass(frozen=True)
class NetworkInterface:
    id: str
    name: str
    location: str
    ip_configurations: tuple[IpConfiguration, ...]
    mac_address: str
    resource_guid: str
    nsg_id: str | None = None
    virtual_machine_id: str | None = None
    primary: bool | None = None  # the NIC's role on its VM
    enable_ip_forwarding: bool = False
    enable_accelerated_networking: bool = False
    dns_servers: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    etag: str = ""

    @property
    def primary_ip_configuration(self) -> IpConfiguration:
        return next(c for c in self.ip_configurations if c.primary)

    def ipconfig_id(self, name: str) -> str:
        return f"{self.id}/ipConfigurations/{name}"


def _to_doc(n: NetworkInterface) -> Document:
    body = {k: v for k, v in vars(n).items() if k != "etag"}
    body[references.NIC_IPCONFIGS] = [vars(c) for c in n.ip_configurations]
    body[references.NIC_NSG] = n.nsg_id
    body["dns_servers"] = list(n.dns_servers)
    body["tags"] = dict(n.tags)
    return Document(id=n.id, type=TYPE, body=body, location=n.location)


def from_doc(doc: Document) -> NetworkInterface:
    b = dict(doc.body)
    b["ip_configurations"] = tuple(IpConfiguration(**c) for c in b["ip_configurations"])
    b["dns_servers"] = tuple(b.get("dns_servers", ()))
    return NetworkInterface(**b, etag=doc.etag)


_READS = Reads(TYPE, from_doc)
get_by_id = _READS.get_by_id
get = _READS.get
list_by_resource_group = _READS.list_by_resource_group
list_by_subscription = _READS.list_by_subscription


def _primary_flags(specs: tuple[IpConfigSpec, ...], nic: str) -> list[bool]:
    if len(specs) == 1:
        return [True]
    flags = [bool(s.primary) for s in specs]
    if flags.count(True) != 1:
        raise NetworkInterfaceIpConfigurationsInvalid(
            nic=nic,
            why="exactly one IP configuration must be primary when a network interface has "
            "several.",
            target="properties.ipConfigurations",
        )
    return flags


def _ipconfig(
    store: Store,
    spec: IpConfigSpec,
    *,
    nic_id: str,
    primary: bool,
    old: IpConfiguration | None,
    taken: dict[str, dict[IPv4Address, str]],
    target: str,
) -> IpConfiguration:
    ipc_id = f"{nic_id}/ipConfigurations/{spec.name}"
    if spec.version not in (None, "IPv4", "ipv4"):
        raise UnsupportedProperty(
            "Only IPv4 IP configurations are supported by azimg.",
            target=f"{target}.properties.privateIPAddressVersion",
        )
    if not spec.subnet_id:
        raise InvalidParameter(
            f"IP configuration {ipc_id} must reference a subnet.",
            target=f"{target}.properties.subnet.id",
        )
    vnet_id, _, sname = spec.subnet_id.rpartition("/subnets/")
    vdoc = references.require_reference(
        store, vnet_id, VNET_TYPE, rid=nic_id, target=f"{target}.properties.subnet.id"
    )
    vnet = virtual_networks.from_doc(vdoc)
    subnet = vnet.subnet(sname)
    if subnet is None:
        raise InvalidResourceReference(
            ref=spec.subnet_id, rid=nic_id, target=f"{target}.properties.subnet.id"
        )
    subnet_id = vnet.subnet_id(subnet.name)
    net = subnet.network
    method = enum_value(
        spec.allocation_method or "Dynamic",
        METHODS,
        target=f"{target}.properties.privateIPAllocationMethod",
    )
    same_subnet = old is not None and old.subnet_id.lower() == subnet_id.lower()
    used = taken.setdefault(subnet_id.lower(), {})  # addresses are per subnet (VNets overlap)
    if method == "Static":
        if not spec.private_ip_address:
            raise InvalidParameter(
                f"IP configuration {ipc_id} has allocation method Static but no privateIPAddress.",
                target=f"{target}.properties.privateIPAddress",
            )
        try:
            ip = IPv4Address(spec.private_ip_address)
        except ValueError:
            raise InvalidParameter(
                f"The private IP address '{spec.private_ip_address}' is not a valid IPv4 address.",
                target=f"{target}.properties.privateIPAddress",
            ) from None
        if ip not in net:
            raise PrivateIPAddressNotInSubnet(
                ipconfig=ipc_id,
                ip=ip,
                prefix=net,
                subnet=subnet_id,
                target=f"{target}.properties.privateIPAddress",
            )
        if addressing.is_reserved(ip, net):
            raise PrivateIPAddressInReservedRange(
                ipconfig=ipc_id,
                ip=ip,
                subnet=subnet_id,
                target=f"{target}.properties.privateIPAddress",
            )
        if ip in used:
            raise PrivateIPAddressIsAllocated(
                ipconfig=ipc_id,
                ip=ip,
                other=used[ip],
                target=f"{target}.properties.privateIPAddress",
            )
    elif same_subnet and old is not None:
        ip = IPv4Address(old.private_ip)  # Dynamic keeps its address within the subnet
    else:
        free = addressing.first_free(net, used)
        if free is None:
            raise SubnetIsFull(subnet=subnet_id, prefix=net, target=f"{target}.properties.subnet")
        ip = free
    used[ip] = ipc_id
    pip_id = None
    if spec.public_ip_id:
        pdoc = references.require_reference(
            store,
            spec.public_ip_id,
            PIP_TYPE,
            rid=nic_id,
            target=f"{target}.properties.publicIPAddress.id",
        )
        user = references.ipconfig_of_public_ip(store, pdoc.id)
        if user is not None and user.nic_id.lower() != nic_id.lower():
            raise PublicIPAddressInUse(
                ipconfig=ipc_id,
                pip=pdoc.id,
                other=user.ipconfig_id,
                target=f"{target}.properties.publicIPAddress.id",
            )
        pip_id = pdoc.id
    return IpConfiguration(
        name=spec.name,
        subnet_id=subnet_id,
        private_ip=str(ip),
        allocation_method=method,
        primary=primary,
        public_ip_id=pip_id,
    )


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    spec: NetworkInterfaceSpec,
) -> tuple[NetworkInterface, bool]:
    rg = require_resource_group(store, subscription_id, resource_group)
    check_name(name, kind="network interface")
    rid = resource_id(subscription_id, rg.body.get("name", resource_group), TYPE, name)
    region = check_location(store, spec.location, rtype=TYPE)
    if not spec.ip_configurations:
        raise NetworkInterfaceIpConfigurationsInvalid(
            nic=rid,
            why="a network interface needs at least one IP configuration.",
            target="properties.ipConfigurations",
        )
    names = [c.name.lower() for c in spec.ip_configurations]
    if len(set(names)) != len(names):
        raise NetworkInterfaceIpConfigurationsInvalid(
            nic=rid,
            why="IP configuration names must be unique.",
            target="properties.ipConfigurations",
        )
    flags = _primary_flags(spec.ip_configurations, rid)
    with WRITE_LOCK:
        existing = store.meta.get(rid)
        old = from_doc(existing) if existing and existing.type == TYPE else None
        nsg_id = None
        if spec.nsg_id:
            nsg_id = references.require_reference(
                store,
                spec.nsg_id,
                NSG_TYPE,
                rid=rid,
                target="properties.networkSecurityGroup.id",
            ).id
        olds = {c.name.lower(): c for c in old.ip_configurations} if old else {}
        taken: dict[str, dict[IPv4Address, str]] = {}  # subnet id → address → ipconfig
        for use in references.ipconfig_uses(store, rid):
            if use.nic_id.lower() != rid.lower() and use.private_ip:
                by_subnet = taken.setdefault(use.subnet_id.lower(), {})
                by_subnet[IPv4Address(use.private_ip)] = use.ipconfig_id
        configs = tuple(
            _ipconfig(
                store,
                s,
                nic_id=rid,
                primary=flags[i],
                old=olds.get(s.name.lower()),
                taken=taken,
                target=f"properties.ipConfigurations[{i}]",
            )
            for i, s in enumerate(spec.ip_configurations)
        )
        vnets = {c.subnet_id.lower().rpartition("/subnets/")[0] for c in configs}
        if len(vnets) > 1:
            raise NetworkInterfaceIpConfigurationsInvalid(
                nic=rid,
                why="all IP configurations must be in subnets of one virtual network.",
                target="properties.ipConfigurations",
            )
        nic = NetworkInterface(
            id=old.id if old else rid,
            name=old.name if old else name,
            location=old.location if old else region,
            ip_configurations=configs,
            mac_address=old.mac_address
            if old
            else addressing.mac_arm(b"\x00\x0d\x3a" + secrets.token_bytes(3)),
            resource_guid=old.resource_guid if old else str(uuid.uuid4()),
            nsg_id=nsg_id,
            virtual_machine_id=old.virtual_machine_id if old else None,
            primary=old.primary if old else None,
            enable_ip_forwarding=spec.enable_ip_forwarding,
            enable_accelerated_networking=spec.enable_accelerated_networking,
            dns_servers=spec.dns_servers,
            tags=check_tags(spec.tags),
        )
        doc = store.meta.put(_to_doc(nic))
        return replace(nic, etag=doc.etag), old is None


def save(store: Store, nic: NetworkInterface) -> NetworkInterface:
    doc = store.meta.put(_to_doc(nic))
    return replace(nic, etag=doc.etag)


def delete(store: Store, *, subscription_id: str, resource_group: str, name: str) -> bool:
    def check(doc: Document) -> None:
        nic = from_doc(doc)
        if nic.virtual_machine_id:
            raise NicInUse(nic=nic.id, vm=nic.virtual_machine_id)

    return references.delete_unless_used(
        store,
        TYPE,
        check,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
    )


@dataclass(frozen=True)
class VmNic:
    """One entry of a VM's ``networkProfile.networkInterfaces``."""

    id: str
    primary: bool | None = None


def check_for_vm(
    store: Store, *, vm_id: str, location: str, refs: tuple[VmNic, ...]
) -> tuple[VmNic, ...]:
    """A VM's NIC references checked as Compute does (each exists, is in the VM's location and
    belongs to no other VM; one primary when there are several), in canonical id casing with
    the primary first."""
    out = []
    for i, ref in enumerate(refs):
        target = f"properties.networkProfile.networkInterfaces[{i}].id"
        doc = references.require_reference(store, ref.id, TYPE, rid=vm_id, target=target)
        nic = from_doc(doc)
        if nic.location != location:
            raise NicNotInVmLocation(
                nic=nic.id, nic_location=nic.location, vm=vm_id, vm_location=location,
                target=target,
            )  # fmt: skip
        if nic.virtual_machine_id and nic.virtual_machine_id.lower() != vm_id.lower():
            raise NicInUse(nic=nic.id, vm=nic.virtual_machine_id, target=target)
        out.append(VmNic(nic.id, True if len(refs) == 1 else bool(ref.primary)))
    if len(out) > 1 and sum(1 for n in out if n.primary) != 1:
        raise VirtualMachineMustHaveOneNetworkInterfaceAsPrimary(
            vm=vm_id, target="properties.networkProfile.networkInterfaces"
        )
    return tuple(sorted(out, key=lambda n: not n.primary))


def attach(store: Store, *, nic_id: str, vm_id: str, primary: bool) -> NetworkInterface:
    """Compute's side: the NIC now belongs to ``vm_id`` (``NicInUse`` if another VM has it)."""
    with WRITE_LOCK:
        nic = get_by_id(store, nic_id)
        if nic.virtual_machine_id and nic.virtual_machine_id.lower() != vm_id.lower():
            raise NicInUse(nic=nic.id, vm=nic.virtual_machine_id)

        def change(doc: Document) -> Document:
            return _to_doc(replace(from_doc(doc), virtual_machine_id=vm_id, primary=primary))

        store.update(nic.id, change)
        return get_by_id(store, nic.id)


def detach(store: Store, *, nic_id: str, vm_id: str | None = None) -> None:
    """Compute's side when the VM is deleted: the NIC is free again (only if it still names
    ``vm_id``, when given; a NIC already gone is fine)."""
    with WRITE_LOCK:

        def change(doc: Document) -> Document | None:
            nic = from_doc(doc)
            if vm_id is not None and (nic.virtual_machine_id or "").lower() != vm_id.lower():
                return None
            return _to_doc(replace(nic, virtual_machine_id=None, primary=None))

        store.update(nic_id, change)
