"""Public IP addresses (reference/network.md §4).

Every public IP is a real address on this machine: one per resource, from ``POOL`` inside
127.0.0.0/8 (Linux treats all of it as local, so no interface needs configuring and nothing
is reachable from outside the machine). The fabric forwards the ports the effective NSG
allows from that address to the guest.

When an address exists follows Azure (§4.2): Static (Standard must be Static) gets it at
creation and keeps it until deletion; Basic Dynamic gets it when its VM runs
(``assign_dynamic``) and loses it on deallocation (``release_dynamic``) or a switch to
Dynamic. Allocation scans the stored public IPs under the network write lock.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from azimg.platform.errors import InvalidParameter, UnsupportedProperty
from azimg.platform.network_errors import (
    DnsRecordInUse,
    InvalidDomainNameLabel,
    PublicIPAddressCannotBeDeleted,
    PublicIPAddressInUseCannotUpdateToDynamic,
    PublicIPPoolExhausted,
    StandardSkuPublicIPAddressesMustBeStatic,
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
from azimg.platform.resources.network import references
from azimg.platform.resources.network.references import PIP_TYPE, WRITE_LOCK
from azimg.platform.store import Document, Store

TYPE = PIP_TYPE
POOL = IPv4Network("127.100.0.0/16")
SKUS = ("Basic", "Standard", "StandardV2")
TIERS = ("Regional", "Global")
METHODS = ("Static", "Dynamic")
_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class PublicIpSpec:
    location: str | None
    sku: str | None = None
    tier: str | None = None
    allocation_method: str | None = None
    version: str | None = None
    idle_timeout_minutes: int | None = None
    domain_name_label: str | None = None
    zones: tuple[str, ...] = ()
    tags: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class PublicIp:
    id: str
    name: str
    location: str
    sku: str
    tier: str
    allocation_method: str
    idle_timeout_minutes: int
    resource_guid: str
    ip_address: str | None = None
    domain_name_label: str | None = None
    zones: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    etag: str = ""

    @property
    def fqdn(self) -> str | None:
        if not self.domain_name_label:
            return None
        return f"{self.domain_name_label}.{self.location}.cloudapp.azure.com"


def _to_doc(p: PublicIp) -> Document:
    body = {k: v for k, v in vars(p).items() if k != "etag"}
    body["zones"] = list(p.zones)
    body["tags"] = dict(p.tags)
    return Document(id=p.id, type=TYPE, body=body, location=p.location)


def from_doc(doc: Document) -> PublicIp:
    b = dict(doc.body)
    b["zones"] = tuple(b.get("zones", ()))
    return PublicIp(**b, etag=doc.etag)


_READS = Reads(TYPE, from_doc)
get_by_id = _READS.get_by_id
get = _READS.get
list_by_resource_group = _READS.list_by_resource_group
list_by_subscription = _READS.list_by_subscription


def _allocate(store: Store) -> str:
    """The lowest free address of ``POOL`` across every subscription (under WRITE_LOCK)."""
    used = {d.body.get("ip_address") for d in store.meta.list(type=TYPE)}
    for n in range(int(POOL.network_address) + 1, int(POOL.broadcast_address)):
        ip = str(IPv4Address(n))
        if ip not in used:
            return ip
    raise PublicIPPoolExhausted(count=POOL.num_addresses - 2, pool=str(POOL))


def _check_label(store: Store, label: str, *, rid: str, location: str) -> None:
    if not _LABEL.match(label):
        raise InvalidDomainNameLabel(label=label, target="properties.dnsSettings.domainNameLabel")
    fqdn = f"{label}.{location}.cloudapp.azure.com"
    for d in store.meta.list(type=TYPE):
        other = from_doc(d)
        if other.id.lower() != rid.lower() and other.fqdn == fqdn:
            raise DnsRecordInUse(
                fqdn=fqdn, other=other.id, target="properties.dnsSettings.domainNameLabel"
            )


def create_or_update(
    store: Store, *, subscription_id: str, resource_group: str, name: str, spec: PublicIpSpec
) -> tuple[PublicIp, bool]:
    rg = require_resource_group(store, subscription_id, resource_group)
    check_name(name, kind="public IP address")
    rid = resource_id(subscription_id, rg.body.get("name", resource_group), TYPE, name)
    region = check_location(store, spec.location, rtype=TYPE)
    sku = enum_value(spec.sku or "Basic", SKUS, target="sku.name")
    tier = enum_value(spec.tier or "Regional", TIERS, target="sku.tier")
    default_method = "Dynamic" if sku == "Basic" else "Static"
    method = enum_value(
        spec.allocation_method or default_method,
        METHODS,
        target="properties.publicIPAllocationMethod",
    )
    if sku != "Basic" and method == "Dynamic":
        raise StandardSkuPublicIPAddressesMustBeStatic(
            pip=rid, target="properties.publicIPAllocationMethod"
        )
    if spec.version not in (None, "IPv4", "ipv4"):
        raise UnsupportedProperty(
            "Only IPv4 public IP addresses are supported by azimg.",
            target="properties.publicIPAddressVersion",
        )
    if spec.zones and sku == "Basic":
        raise InvalidParameter(
            "Zones can only be specified for Standard SKU public IP addresses.", target="zones"
        )
    bad_zone = next((z for z in spec.zones if z not in ("1", "2", "3")), None)
    if bad_zone is not None:
        raise InvalidParameter(f"The zone '{bad_zone}' is not valid.", target="zones")
    timeout = spec.idle_timeout_minutes if spec.idle_timeout_minutes is not None else 4
    if not 4 <= timeout <= 30:
        raise InvalidParameter(
            f"The idle timeout {timeout} is not valid: it must be between 4 and 30 minutes.",
            target="properties.idleTimeoutInMinutes",
        )
    with WRITE_LOCK:
        existing = store.meta.get(rid)
        old = from_doc(existing) if existing and existing.type == TYPE else None
        location = old.location if old else region
        if spec.domain_name_label:
            _check_label(store, spec.domain_name_label, rid=rid, location=location)
        user = references.ipconfig_of_public_ip(store, rid)
        if old is not None and method == "Dynamic" and old.allocation_method == "Static" and user:
            raise PublicIPAddressInUseCannotUpdateToDynamic(
                pip=old.id,
                ipconfig=user.ipconfig_id,
                target="properties.publicIPAllocationMethod",
            )
        address = old.ip_address if old else None
        if method == "Static" and address is None:
            address = _allocate(store)
        elif method == "Dynamic" and old is not None and old.allocation_method == "Static":
            address = None  # Static → Dynamic releases (§4.2)
        pip = PublicIp(
            id=old.id if old else rid,
            name=old.name if old else name,
            location=location,
            sku=sku,
            tier=tier,
            allocation_method=method,
            idle_timeout_minutes=timeout,
            resource_guid=old.resource_guid if old else str(uuid.uuid4()),
            ip_address=address,
            domain_name_label=spec.domain_name_label,
            zones=spec.zones,
            tags=check_tags(spec.tags),
        )
        doc = store.meta.put(_to_doc(pip))
        return replace(pip, etag=doc.etag), old is None


def delete(store: Store, *, subscription_id: str, resource_group: str, name: str) -> bool:
    def check(doc: Document) -> None:
        user = references.ipconfig_of_public_ip(store, doc.id)
        if user is not None:
            raise PublicIPAddressCannotBeDeleted(pip=doc.id, ipconfig=user.ipconfig_id)

    return references.delete_unless_used(
        store,
        TYPE,
        check,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
    )


def assign_dynamic(store: Store, pip_id: str) -> PublicIp:
    """A Dynamic address for a VM that starts (no-op for Static or already assigned)."""
    with WRITE_LOCK:
        pip = get_by_id(store, pip_id)
        if pip.ip_address is not None:
            return pip
        address = _allocate(store)

        def change(doc: Document) -> Document:
            return _to_doc(replace(from_doc(doc), ip_address=address))

        store.update(pip.id, change)
        return get_by_id(store, pip_id)


def release_dynamic(store: Store, pip_id: str) -> PublicIp:
    """A deallocated VM's Dynamic address goes back to the pool (Static ones stay)."""
    with WRITE_LOCK:
        pip = get_by_id(store, pip_id)
        if pip.allocation_method != "Dynamic" or pip.ip_address is None:
            return pip

        def change(doc: Document) -> Document:
            return _to_doc(replace(from_doc(doc), ip_address=None))

        store.update(pip.id, change)
        return get_by_id(store, pip_id)
