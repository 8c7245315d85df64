"""Subnets as child resources of a virtual network (reference/network.md §2.3).

A child PUT adds or replaces one entry of the VNet's ``subnets``; a child DELETE removes it,
refused with ``InUseSubnetCannotBeDeleted`` while an IP configuration is in it. Both rewrite
the VNet document under the network write lock, with the same checks as a VNet PUT.
"""

from __future__ import annotations

from dataclasses import replace

from azimg.platform.network_errors import InUseSubnetCannotBeDeleted
from azimg.platform.resources.common import require_resource_group, resource_id
from azimg.platform.resources.network import references, virtual_networks
from azimg.platform.resources.network.references import WRITE_LOCK
from azimg.platform.resources.network.virtual_networks import (
    TYPE,
    Subnet,
    SubnetSpec,
    VirtualNetwork,
    check_layout,
    check_subnet_changes,
)
from azimg.platform.store import Store


def _vnet_id(subscription_id: str, resource_group: str, vnet: str) -> str:
    return resource_id(subscription_id, resource_group, TYPE, vnet)


def get(
    store: Store, *, subscription_id: str, resource_group: str, vnet: str, name: str
) -> tuple[VirtualNetwork, Subnet]:
    return virtual_networks.subnet_by_id(
        store, f"{_vnet_id(subscription_id, resource_group, vnet)}/subnets/{name}"
    )


def list_(
    store: Store, *, subscription_id: str, resource_group: str, vnet: str
) -> tuple[VirtualNetwork, tuple[Subnet, ...]]:
    v = virtual_networks.get_by_id(store, _vnet_id(subscription_id, resource_group, vnet))
    return v, v.subnets


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    vnet: str,
    spec: SubnetSpec,
) -> tuple[VirtualNetwork, Subnet, bool]:
    """The VNet and subnet as stored, and whether the subnet was created."""
    require_resource_group(store, subscription_id, resource_group)
    with WRITE_LOCK:
        old = virtual_networks.get_by_id(store, _vnet_id(subscription_id, resource_group, vnet))
        sub = virtual_networks.build_subnet(store, spec, vnet_id=old.id, vnet_name=old.name)
        existing = old.subnet(spec.name)
        if existing is not None:
            sub = replace(sub, name=existing.name)
            subnets = tuple(sub if s is existing else s for s in old.subnets)
        else:
            subnets = (*old.subnets, sub)
        new = replace(old, subnets=subnets)
        check_layout(new)
        check_subnet_changes(store, old, new)
        saved = virtual_networks.save(store, new)
        return saved, sub, existing is None


def delete(
    store: Store, *, subscription_id: str, resource_group: str, vnet: str, name: str
) -> bool:
    require_resource_group(store, subscription_id, resource_group)
    with WRITE_LOCK:
        v = virtual_networks.get_by_id(store, _vnet_id(subscription_id, resource_group, vnet))
        sub = v.subnet(name)
        if sub is None:
            return False
        holders = references.ipconfigs_in_subnet(store, v.subnet_id(sub.name))
        if holders:
            raise InUseSubnetCannotBeDeleted(subnet=sub.name, ipconfig=holders[0].ipconfig_id)
        virtual_networks.save(
            store, replace(v, subnets=tuple(s for s in v.subnets if s is not sub))
        )
        return True
