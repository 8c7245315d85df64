"""Security rules as child resources of an NSG: one entry of the NSG's rule list each,
checked with the same rules as inline ones (priority unique per direction across both)."""

from __future__ import annotations

from dataclasses import replace

from azimg.platform.resources.common import not_found, require_resource_group, resource_id
from azimg.platform.resources.network import network_security_groups as nsgs
from azimg.platform.resources.network.network_security_groups import (
    NetworkSecurityGroup,
    SecurityRule,
    SecurityRuleSpec,
)
from azimg.platform.resources.network.references import WRITE_LOCK
from azimg.platform.store import Store


def _nsg(store: Store, subscription_id: str, resource_group: str, nsg: str) -> NetworkSecurityGroup:
    return nsgs.get_by_id(store, resource_id(subscription_id, resource_group, nsgs.TYPE, nsg))


def get(
    store: Store, *, subscription_id: str, resource_group: str, nsg: str, name: str
) -> tuple[NetworkSecurityGroup, SecurityRule]:
    group = _nsg(store, subscription_id, resource_group, nsg)
    rule = group.rule(name)
    if rule is None:
        raise not_found(nsgs.RULE_TYPE, f"{group.name}/{name}", resource_group)
    return group, rule


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    nsg: str,
    spec: SecurityRuleSpec,
) -> tuple[NetworkSecurityGroup, SecurityRule, bool]:
    require_resource_group(store, subscription_id, resource_group)
    with WRITE_LOCK:
        group = _nsg(store, subscription_id, resource_group, nsg)
        rule = nsgs.build_rule(spec, nsg_id=group.id)
        existing = group.rule(spec.name)
        if existing is not None:
            rule = replace(rule, name=existing.name)
            rules = tuple(rule if r is existing else r for r in group.rules)
        else:
            rules = (*group.rules, rule)
        nsgs.check_conflicts(rules, target="properties")
        saved = nsgs.save(store, replace(group, rules=rules))
        return saved, rule, existing is None


def delete(store: Store, *, subscription_id: str, resource_group: str, nsg: str, name: str) -> bool:
    require_resource_group(store, subscription_id, resource_group)
    with WRITE_LOCK:
        group = _nsg(store, subscription_id, resource_group, nsg)
        rule = group.rule(name)
        if rule is None:
            return False
        nsgs.save(store, replace(group, rules=tuple(r for r in group.rules if r is not rule)))
        return True
