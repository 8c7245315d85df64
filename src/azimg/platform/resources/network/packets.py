"""What the packet layer must enforce for running NICs, read from the network resources.

Plain reads and pure translation: NSG rules (both levels, defaults included, tags expanded for
the NIC's VNet) become ``fabric.network_nft`` chains; each public IP on a running NIC becomes a
``fabric.network.Forward`` carrying exactly the TCP ports ``nsg_eval.allowed_ports`` lets in
from the forwarder's stand-in Internet source. A Standard public IP with no NSG on the path
lets nothing in (Azure: Standard is closed unless an NSG allows); a Basic one lets all in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from azimg.fabric.network import INTERNET_SOURCE, Desired, Forward, Port, port_name
from azimg.fabric.network_nft import Match, PortPolicy
from azimg.platform.errors import PlatformError
from azimg.platform.resources.network import addressing, nsg_eval, virtual_networks
from azimg.platform.resources.network import network_interfaces as nics
from azimg.platform.resources.network import network_security_groups as nsgs
from azimg.platform.resources.network import public_ip_addresses as pips
from azimg.platform.resources.network.network_interfaces import NetworkInterface
from azimg.platform.store import Store


def vnet_key(vnet_id: str) -> str:
    """A short stable name for a VNet's namespace."""
    return hashlib.sha256(vnet_id.lower().encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Plug:
    """One NIC as the fabric needs it, and what IMDS says about it."""

    nic_id: str
    vnet: str  # vnet_key
    port: Port
    public_ip: str | None

    @property
    def imds_mac(self) -> str:
        return self.port.mac.replace(":", "").upper()


def plug(store: Store, nic_id: str, *, endpoints: Mapping[str, str] | None = None) -> Plug:
    nic = nics.get_by_id(store, nic_id)
    ipc = nic.primary_ip_configuration
    vnet, subnet = virtual_networks.subnet_by_id(store, ipc.subnet_id)
    public = pips.get_by_id(store, ipc.public_ip_id).ip_address if ipc.public_ip_id else None
    port = Port(
        key=nic.id,
        ifname=port_name(nic.id),
        mac=addressing.mac_guest(nic.mac_address),
        address=IPv4Address(ipc.private_ip),
        subnet=subnet.network,
        endpoints=dict(endpoints or {}),
        domain=f"{vnet.resource_guid[:8]}.internal.cloudapp.net",
    )
    return Plug(nic.id, vnet_key(vnet.id), port, public)


def vm_plugs(
    store: Store, nic_ids: Sequence[str], *, endpoints: Mapping[str, str] | None = None
) -> tuple[Plug, ...]:
    """A VM's NICs in order (primary first, as ``check_for_vm`` returns them)."""
    return tuple(plug(store, n, endpoints=endpoints) for n in nic_ids)


def public_ip_ids(store: Store, nic_id: str) -> list[str]:
    """The public IPs the NIC's IP configurations reference."""
    nic = nics.get_by_id(store, nic_id)
    return [c.public_ip_id for c in nic.ip_configurations if c.public_ip_id]


def imds_fields(store: Store, nic_id: str) -> dict[str, str]:
    """What IMDS ``network`` says about the primary NIC (``fabric.imds.InstanceMetadata``)."""
    p = plug(store, nic_id)
    return {
        "mac_address": p.imds_mac,
        "private_ip": str(p.port.address),
        "public_ip": p.public_ip or "",
        "subnet_address": str(p.port.subnet.network_address),
        "subnet_prefix": str(p.port.subnet.prefixlen),
    }


def to_match(rule: nsg_eval.Rule, vnet: Sequence[IPv4Network]) -> Match:
    def addrs(prefixes: tuple[str, ...]) -> tuple[str, ...]:
        nets = [n for p in prefixes for n in nsg_eval.expand(p, vnet)]
        if any(n.prefixlen == 0 for n in nets):
            return ()
        return tuple(str(n) for n in collapse_addresses(nets))

    def ports(texts: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
        ranges = [nsg_eval.port_range(t) for t in texts]
        return () if (0, 65535) in ranges else tuple(ranges)

    proto = rule.protocol.lower()
    return Match(
        allow=rule.access == "Allow",
        protocol="any" if proto == "*" else proto,
        sources=addrs(rule.source_prefixes),
        source_ports=ports(rule.source_ports),
        destinations=addrs(rule.destination_prefixes),
        destination_ports=ports(rule.destination_ports),
    )


def _levels(
    store: Store, nic: NetworkInterface
) -> tuple[tuple[nsg_eval.Rule, ...] | None, tuple[nsg_eval.Rule, ...] | None, list[IPv4Network]]:
    ipc = nic.primary_ip_configuration
    vnet, subnet = virtual_networks.subnet_by_id(store, ipc.subnet_id)
    subnet_rules = nsgs.get_by_id(store, subnet.nsg_id).eval_rules() if subnet.nsg_id else None
    nic_rules = nsgs.get_by_id(store, nic.nsg_id).eval_rules() if nic.nsg_id else None
    return subnet_rules, nic_rules, [IPv4Network(p) for p in vnet.address_prefixes]


def port_policy(store: Store, nic_id: str) -> PortPolicy:
    nic = nics.get_by_id(store, nic_id)
    subnet_rules, nic_rules, prefixes = _levels(store, nic)

    def chain(rules: Iterable[nsg_eval.Rule] | None, direction: str) -> tuple[Match, ...] | None:
        if rules is None:
            return None
        return tuple(to_match(r, prefixes) for r in nsg_eval.ordered(rules, direction))

    inbound = [chain(subnet_rules, "Inbound"), chain(nic_rules, "Inbound")]
    outbound = [chain(nic_rules, "Outbound"), chain(subnet_rules, "Outbound")]
    return PortPolicy(
        ifname=port_name(nic.id),
        address=nic.primary_ip_configuration.private_ip,
        inbound=tuple(c for c in inbound if c is not None),
        outbound=tuple(c for c in outbound if c is not None),
        ip_forwarding=nic.enable_ip_forwarding,
    )


def forward(store: Store, nic_id: str) -> Forward | None:
    """The public IP of the NIC's primary IP configuration, if it has an address."""
    nic = nics.get_by_id(store, nic_id)
    ipc = nic.primary_ip_configuration
    if not ipc.public_ip_id:
        return None
    pip = pips.get_by_id(store, ipc.public_ip_id)
    if pip.ip_address is None:
        return None
    subnet_rules, nic_rules, prefixes = _levels(store, nic)
    if pip.sku != "Basic" and subnet_rules is None and nic_rules is None:
        ports: tuple[tuple[int, int], ...] = ()
    else:
        ports = nsg_eval.allowed_ports(
            subnet_rules,
            nic_rules,
            protocol="Tcp",
            source=IPv4Address(INTERNET_SOURCE),
            destination=IPv4Address(ipc.private_ip),
            vnet=prefixes,
        )
    vnet, _ = virtual_networks.subnet_by_id(store, ipc.subnet_id)
    return Forward(pip.ip_address, vnet_key(vnet.id), ipc.private_ip, ports)


def desired(store: Store, nic_ids: Sequence[str]) -> Desired:
    """What the fabric enforces for the NICs it has ports for (``fabric.network.DesiredFn``).
    A NIC that vanished meanwhile is left out; its port goes when its VM stops."""
    policies: dict[str, list[PortPolicy]] = {}
    forwards: list[Forward] = []
    for nic_id in nic_ids:
        try:
            nic = nics.get_by_id(store, nic_id)
            vnet, _ = virtual_networks.subnet_by_id(store, nic.primary_ip_configuration.subnet_id)
            policies.setdefault(vnet_key(vnet.id), []).append(port_policy(store, nic_id))
            f = forward(store, nic_id)
        except PlatformError:
            continue
        if f is not None:
            forwards.append(f)
    return Desired(policies, forwards)
