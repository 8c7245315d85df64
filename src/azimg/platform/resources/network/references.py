"""Who uses what among network resources, read from the stored documents.

Back-references (a subnet's ``ipConfigurations``, a public IP's ``ipConfiguration``, an NSG's
``networkInterfaces`` and ``subnets``) are derived from the referencing documents at read time
instead of being written into the referenced ones: the store has no multi-document
transaction, and a derived reference can never go stale. This leaf module knows the few body
keys it reads (declared here, written by ``network_interfaces`` and ``virtual_networks``), so
the VNet, public IP and NSG modules need not import the NIC module (no cycles).

``WRITE_LOCK`` serialises every check-then-write of the network modules in this process (an
address chosen as free must still be free when the NIC is written). Several API processes
sharing one database would need a compare-and-set on a per-subnet document instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from azimg.platform.network_errors import InvalidResourceReference
from azimg.platform.resources.common import require_resource_group, resource_id
from azimg.platform.store import Document, Store

VNET_TYPE = "Microsoft.Network/virtualNetworks"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
PIP_TYPE = "Microsoft.Network/publicIPAddresses"
NSG_TYPE = "Microsoft.Network/networkSecurityGroups"

# Body keys of the NIC document that other modules read.
NIC_IPCONFIGS = "ip_configurations"  # [{"name", "subnet_id", "private_ip", "public_ip_id", ...}]
NIC_NSG = "nsg_id"
# Body keys of the VNet document that other modules read.
VNET_SUBNETS = "subnets"  # [{"name", "nsg_id", ...}]

WRITE_LOCK = threading.RLock()


@dataclass(frozen=True)
class IpConfigUse:
    ipconfig_id: str
    nic_id: str
    subnet_id: str
    private_ip: str | None
    public_ip_id: str | None


def _subscription_prefix(rid: str) -> str:
    return "/" + "/".join(rid.strip("/").split("/")[:2]) + "/"


def nic_documents(store: Store, any_id: str) -> list[Document]:
    """Every NIC document in the subscription of ``any_id``."""
    return store.meta.list(type=NIC_TYPE, prefix=_subscription_prefix(any_id))


def ipconfig_uses(store: Store, any_id: str) -> list[IpConfigUse]:
    out = []
    for doc in nic_documents(store, any_id):
        for ipc in doc.body.get(NIC_IPCONFIGS, ()):
            out.append(
                IpConfigUse(
                    ipconfig_id=f"{doc.id}/ipConfigurations/{ipc['name']}",
                    nic_id=doc.id,
                    subnet_id=ipc["subnet_id"],
                    private_ip=ipc.get("private_ip"),
                    public_ip_id=ipc.get("public_ip_id"),
                )
            )
    return out


def ipconfigs_in_subnet(store: Store, subnet_id: str) -> list[IpConfigUse]:
    key = subnet_id.lower()
    return [u for u in ipconfig_uses(store, subnet_id) if u.subnet_id.lower() == key]


def ipconfigs_in_vnet(store: Store, vnet_id: str) -> list[IpConfigUse]:
    prefix = vnet_id.lower() + "/subnets/"
    return [u for u in ipconfig_uses(store, vnet_id) if u.subnet_id.lower().startswith(prefix)]


def ipconfig_of_public_ip(store: Store, pip_id: str) -> IpConfigUse | None:
    key = pip_id.lower()
    for use in ipconfig_uses(store, pip_id):
        if use.public_ip_id and use.public_ip_id.lower() == key:
            return use
    return None


def users_of_nsg(store: Store, nsg_id: str) -> tuple[list[str], list[str]]:
    """(NIC ids, subnet ids) associated with the NSG ``nsg_id``."""
    key = nsg_id.lower()
    prefix = _subscription_prefix(nsg_id)
    nics = [
        d.id
        for d in store.meta.list(type=NIC_TYPE, prefix=prefix)
        if (d.body.get(NIC_NSG) or "").lower() == key
    ]
    subnets = [
        f"{d.id}/subnets/{s['name']}"
        for d in store.meta.list(type=VNET_TYPE, prefix=prefix)
        for s in d.body.get(VNET_SUBNETS, ())
        if (s.get("nsg_id") or "").lower() == key
    ]
    return nics, subnets


def require_reference(store: Store, ref: str, rtype: str, *, rid: str, target: str) -> Document:
    """The document ``ref`` names, which must be a ``rtype``; else ``InvalidResourceReference``."""
    doc = store.meta.get(ref) if ref.lower().startswith("/subscriptions/") else None
    if doc is None or doc.type.lower() != rtype.lower():
        raise InvalidResourceReference(ref=ref, rid=rid, target=target)
    return doc


def delete_unless_used(
    store: Store,
    rtype: str,
    check: Callable[[Document], None],
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
) -> bool:
    """Delete the resource unless ``check`` raises (it is in use); False when there was
    nothing to delete (204)."""
    rid = resource_id(subscription_id, resource_group, rtype, name)
    require_resource_group(store, subscription_id, resource_group)
    with WRITE_LOCK:
        doc = store.meta.get(rid)
        if doc is None or doc.type != rtype:
            return False
        check(doc)
        return store.meta.delete(rid)
