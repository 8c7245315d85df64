"""Network security groups and their security rules (reference/network.md §5, §6).

Rules arrive inline in the NSG PUT (which then replaces the list, like a VNet's subnets) or as
child resources (``security_rules.py``); either way they are checked here: required fields,
enums compared case-insensitively (``az vm open-port`` sends ``allow``/``inbound``) and stored
in canonical casing, priority 100-4096 unique per direction across all rules, ports and
address prefixes well-formed. The six default rules are constants (``nsg_eval.DEFAULT_RULES``).
Which NICs and subnets use an NSG is derived (``references.users_of_nsg``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network
from typing import Any

from azimg.platform.errors import InvalidParameter, UnsupportedProperty
from azimg.platform.network_errors import (
    InUseNetworkSecurityGroupCannotBeDeleted,
    InvalidSecurityRuleName,
    SecurityRuleConflict,
    SecurityRuleInvalidAddressPrefix,
    SecurityRuleInvalidPortRange,
    SecurityRuleInvalidPriority,
    SecurityRuleParametersMissing,
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
from azimg.platform.resources.network import nsg_eval, references
from azimg.platform.resources.network.references import NSG_TYPE, WRITE_LOCK
from azimg.platform.store import Document, Store

TYPE = NSG_TYPE
RULE_TYPE = f"{TYPE}/securityRules"
DEFAULT_RULE_TYPE = f"{TYPE}/defaultSecurityRules"
PROTOCOLS = ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")
ACCESS = ("Allow", "Deny")
DIRECTIONS = ("Inbound", "Outbound")
SERVICE_TAGS = ("VirtualNetwork", "AzureLoadBalancer", "Internet")
_RULE_NAME = re.compile(r"^\w(?:[\w.\-]{0,78}\w|_)?$|^\w$")


@dataclass(frozen=True)
class SecurityRuleSpec:
    """A rule as a request gives it; validation happens in ``build_rule``."""

    name: str
    protocol: str | None = None
    access: str | None = None
    priority: int | None = None
    direction: str | None = None
    description: str | None = None
    source_port_range: str | None = None
    source_port_ranges: tuple[str, ...] = ()
    destination_port_range: str | None = None
    destination_port_ranges: tuple[str, ...] = ()
    source_address_prefix: str | None = None
    source_address_prefixes: tuple[str, ...] = ()
    destination_address_prefix: str | None = None
    destination_address_prefixes: tuple[str, ...] = ()
    application_security_groups: bool = False  # any *ApplicationSecurityGroups given


@dataclass(frozen=True)
class SecurityRule:
    """A stored rule; singular and plural fields kept as given (az reads them back)."""

    name: str
    protocol: str
    access: str
    priority: int
    direction: str
    description: str | None = None
    source_port_range: str | None = None
    source_port_ranges: tuple[str, ...] = ()
    destination_port_range: str | None = None
    destination_port_ranges: tuple[str, ...] = ()
    source_address_prefix: str | None = None
    source_address_prefixes: tuple[str, ...] = ()
    destination_address_prefix: str | None = None
    destination_address_prefixes: tuple[str, ...] = ()

    def for_eval(self) -> nsg_eval.Rule:
        def both(one: str | None, many: tuple[str, ...]) -> tuple[str, ...]:
            return ((one,) if one else ()) + many

        return nsg_eval.Rule(
            name=self.name,
            priority=self.priority,
            direction=self.direction,
            access=self.access,
            protocol=self.protocol,
            source_prefixes=both(self.source_address_prefix, self.source_address_prefixes),
            source_ports=both(self.source_port_range, self.source_port_ranges),
            destination_prefixes=both(
                self.destination_address_prefix, self.destination_address_prefixes
            ),
            destination_ports=both(self.destination_port_range, self.destination_port_ranges),
        )


@dataclass(frozen=True)
class NetworkSecurityGroup:
    id: str
    name: str
    location: str
    rules: tuple[SecurityRule, ...]
    resource_guid: str
    tags: Mapping[str, str] = field(default_factory=dict)
    flush_connection: bool = False
    provisioning_state: str = "Succeeded"
    etag: str = ""

    def rule(self, name: str) -> SecurityRule | None:
        for r in self.rules:
            if r.name.lower() == name.lower():
                return r
        return None

    def eval_rules(self) -> tuple[nsg_eval.Rule, ...]:
        return tuple(r.for_eval() for r in self.rules)


def _rule_json(r: SecurityRule) -> dict[str, Any]:
    d = dict(vars(r))
    for k, v in d.items():
        if isinstance(v, tuple):
            d[k] = list(v)
    return d


def _rule_from_json(raw: Mapping[str, Any]) -> SecurityRule:
    return SecurityRule(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def _to_doc(n: NetworkSecurityGroup) -> Document:
    body = {
        "id": n.id,
        "name": n.name,
        "location": n.location,
        "rules": [_rule_json(r) for r in n.rules],
        "resource_guid": n.resource_guid,
        "tags": dict(n.tags),
        "flush_connection": n.flush_connection,
        "provisioning_state": n.provisioning_state,
    }
    return Document(id=n.id, type=TYPE, body=body, location=n.location)


def from_doc(doc: Document) -> NetworkSecurityGroup:
    b = doc.body
    return NetworkSecurityGroup(
        id=b["id"],
        name=b["name"],
        location=b["location"],
        rules=tuple(_rule_from_json(r) for r in b["rules"]),
        resource_guid=b["resource_guid"],
        tags=dict(b.get("tags", {})),
        flush_connection=b.get("flush_connection", False),
        provisioning_state=b.get("provisioning_state", "Succeeded"),
        etag=doc.etag,
    )


_READS = Reads(TYPE, from_doc)
get_by_id = _READS.get_by_id
get = _READS.get
list_by_resource_group = _READS.list_by_resource_group
list_by_subscription = _READS.list_by_subscription


def _check_ports(values: tuple[str, ...], *, rule_id: str, target: str) -> None:
    for v in values:
        try:
            nsg_eval.port_range(v)
        except ValueError:
            raise SecurityRuleInvalidPortRange(rule=rule_id, value=v, target=target) from None


def _check_prefixes(values: tuple[str, ...], *, plural: bool, rule_id: str, target: str) -> str:
    """Each value ``*``, an IPv4 address or CIDR, or (singular field only) one service tag."""
    for v in values:
        if v == "*":
            continue
        tag = next((t for t in SERVICE_TAGS if t.lower() == v.lower()), None)
        if tag is not None and not plural:
            continue
        try:
            IPv4Network(v, strict=False)
        except ValueError:
            raise SecurityRuleInvalidAddressPrefix(rule=rule_id, value=v, target=target) from None
    return ""


def _canonical_tag(v: str | None) -> str | None:
    if v is None:
        return None
    return next((t for t in SERVICE_TAGS if t.lower() == v.lower()), v)


def build_rule(spec: SecurityRuleSpec, *, nsg_id: str, target: str = "") -> SecurityRule:
    """``spec`` checked alone (everything but cross-rule conflicts) as a stored rule."""
    t = f"{target}." if target else ""
    rule_id = f"{nsg_id}/securityRules/{spec.name}"
    if not _RULE_NAME.match(spec.name):
        raise InvalidSecurityRuleName(name=spec.name, target=f"{t}name")
    if spec.application_security_groups:
        raise UnsupportedProperty(
            "Application security groups are not supported by azimg.",
            target=f"{t}properties.sourceApplicationSecurityGroups",
        )
    missing = [
        n
        for n, v in (
            ("Protocol", spec.protocol),
            ("Access", spec.access),
            ("Priority", spec.priority),
            ("Direction", spec.direction),
        )
        if v is None
    ]
    if missing:
        raise SecurityRuleParametersMissing(
            rule=rule_id, what=", ".join(missing), target=f"{t}properties"
        )
    for side in ("source", "destination"):
        cap = side.capitalize()
        if getattr(spec, f"{side}_address_prefix") is None and not getattr(
            spec, f"{side}_address_prefixes"
        ):
            raise SecurityRuleParametersMissing(
                rule=rule_id,
                what=f"{cap}AddressPrefixes, {cap}AddressPrefix, or {cap}ApplicationSecurityGroups",
                target=f"{t}properties.{side}AddressPrefix",
            )
        if getattr(spec, f"{side}_port_range") is None and not getattr(spec, f"{side}_port_ranges"):
            raise SecurityRuleParametersMissing(
                rule=rule_id,
                what=f"{cap}PortRanges or {cap}PortRange",
                target=f"{t}properties.{side}PortRange",
            )
        one = getattr(spec, f"{side}_port_range")
        _check_ports(
            ((one,) if one else ()) + getattr(spec, f"{side}_port_ranges"),
            rule_id=rule_id,
            target=f"{t}properties.{side}PortRange",
        )
        one = getattr(spec, f"{side}_address_prefix")
        _check_prefixes(
            (one,) if one else (),
            plural=False,
            rule_id=rule_id,
            target=f"{t}properties.{side}AddressPrefix",
        )
        _check_prefixes(
            getattr(spec, f"{side}_address_prefixes"),
            plural=True,
            rule_id=rule_id,
            target=f"{t}properties.{side}AddressPrefixes",
        )
    assert spec.priority is not None
    if not 100 <= spec.priority <= 4096:
        raise SecurityRuleInvalidPriority(value=spec.priority, target=f"{t}properties.priority")
    if spec.description is not None and len(spec.description) > 140:
        raise InvalidParameter(
            "The description of a security rule can be at most 140 characters.",
            target=f"{t}properties.description",
        )
    return SecurityRule(
        name=spec.name,
        protocol=enum_value(spec.protocol, PROTOCOLS, target=f"{t}properties.protocol"),
        access=enum_value(spec.access, ACCESS, target=f"{t}properties.access"),
        priority=spec.priority,
        direction=enum_value(spec.direction, DIRECTIONS, target=f"{t}properties.direction"),
        description=spec.description,
        source_port_range=spec.source_port_range,
        source_port_ranges=spec.source_port_ranges,
        destination_port_range=spec.destination_port_range,
        destination_port_ranges=spec.destination_port_ranges,
        source_address_prefix=_canonical_tag(spec.source_address_prefix),
        source_address_prefixes=spec.source_address_prefixes,
        destination_address_prefix=_canonical_tag(spec.destination_address_prefix),
        destination_address_prefixes=spec.destination_address_prefixes,
    )


def check_conflicts(rules: tuple[SecurityRule, ...], *, target: str = "properties") -> None:
    """Unique names, and unique priority per direction (inline and child rules alike)."""
    seen: dict[tuple[str, int], SecurityRule] = {}
    names: set[str] = set()
    for r in rules:
        if r.name.lower() in names:
            raise InvalidParameter(
                f"Security rule names must be unique; '{r.name}' appears twice.",
                target=f"{target}.securityRules",
            )
        names.add(r.name.lower())
        other = seen.get((r.direction, r.priority))
        if other is not None:
            raise SecurityRuleConflict(a=other.name, b=r.name, target=f"{target}.securityRules")
        seen[(r.direction, r.priority)] = r


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    location: str | None,
    rules: tuple[SecurityRuleSpec, ...] | None,
    tags: Mapping[str, Any] | None = None,
    flush_connection: bool = False,
) -> tuple[NetworkSecurityGroup, bool]:
    """``rules`` None keeps nothing (an NSG PUT replaces the list, like a VNet's subnets)."""
    rg = require_resource_group(store, subscription_id, resource_group)
    check_name(name, kind="network security group")
    rid = resource_id(subscription_id, rg.body.get("name", resource_group), TYPE, name)
    region = check_location(store, location, rtype=TYPE)
    built = tuple(
        build_rule(s, nsg_id=rid, target=f"properties.securityRules[{i}]")
        for i, s in enumerate(rules or ())
    )
    check_conflicts(built)
    with WRITE_LOCK:
        existing = store.meta.get(rid)
        old = from_doc(existing) if existing and existing.type == TYPE else None
        nsg = NetworkSecurityGroup(
            id=old.id if old else rid,
            name=old.name if old else name,
            location=old.location if old else region,
            rules=built,
            resource_guid=old.resource_guid if old else str(uuid.uuid4()),
            tags=check_tags(tags),
            flush_connection=flush_connection,
        )
        return save(store, nsg), old is None


def save(store: Store, nsg: NetworkSecurityGroup) -> NetworkSecurityGroup:
    doc = store.meta.put(_to_doc(nsg))
    return replace(nsg, etag=doc.etag)


def delete(store: Store, *, subscription_id: str, resource_group: str, name: str) -> bool:
    def check(doc: Document) -> None:
        nics, subnets = references.users_of_nsg(store, doc.id)
        if nics or subnets:
            raise InUseNetworkSecurityGroupCannotBeDeleted(
                nsg=doc.id, users=", ".join([*nics, *subnets])
            )

    return references.delete_unless_used(
        store,
        TYPE,
        check,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
    )
