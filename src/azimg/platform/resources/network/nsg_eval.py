"""NSG evaluation as Azure does it (reference/network.md §8), as pure functions.

- Within one NSG: the rules of the packet's direction by ascending priority (user rules
  100-4096, then the defaults 65000/65001/65500); the first rule that matches decides.
- Along the path: inbound, the subnet's NSG then the NIC's; outbound, the NIC's then the
  subnet's; every NSG on the path must allow; a level without an NSG allows everything.
- Protocol ``*`` covers TCP, UDP and ICMP; ports ``*``, ``N`` or ``N-M``; addresses ``*``, an
  IP, a CIDR or one service tag: ``VirtualNetwork`` (the VNet's prefixes plus 168.63.129.16),
  ``AzureLoadBalancer`` (168.63.129.16), ``Internet`` (everything outside ``VirtualNetwork``).
- Traffic to or from 168.63.129.16 and 169.254.169.254 is not subject to NSGs (platform).
Statefulness (replies of an allowed flow pass) is the packet layer's job: connection tracking.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

WIRESERVER = IPv4Address("168.63.129.16")
IMDS = IPv4Address("169.254.169.254")
PLATFORM = (WIRESERVER, IMDS)
ALL = IPv4Network("0.0.0.0/0")


@dataclass(frozen=True)
class Rule:
    """One security rule in evaluation form (user rules and the defaults alike)."""

    name: str
    priority: int
    direction: str  # Inbound | Outbound
    access: str  # Allow | Deny
    protocol: str  # Tcp | Udp | Icmp | Esp | Ah | *
    source_prefixes: tuple[str, ...]
    source_ports: tuple[str, ...]
    destination_prefixes: tuple[str, ...]
    destination_ports: tuple[str, ...]


@dataclass(frozen=True)
class Packet:
    direction: str  # Inbound (into the NIC) | Outbound (from the NIC)
    protocol: str  # Tcp | Udp | Icmp
    source: IPv4Address
    source_port: int
    destination: IPv4Address
    destination_port: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str | None  # the deciding rule's name; None when no NSG was on the path


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        "AllowVnetInBound",
        65000,
        "Inbound",
        "Allow",
        "*",
        ("VirtualNetwork",),
        ("*",),
        ("VirtualNetwork",),
        ("*",),
    ),
    Rule(
        "AllowAzureLoadBalancerInBound",
        65001,
        "Inbound",
        "Allow",
        "*",
        ("AzureLoadBalancer",),
        ("*",),
        ("*",),
        ("*",),
    ),
    Rule("DenyAllInBound", 65500, "Inbound", "Deny", "*", ("*",), ("*",), ("*",), ("*",)),
    Rule(
        "AllowVnetOutBound",
        65000,
        "Outbound",
        "Allow",
        "*",
        ("VirtualNetwork",),
        ("*",),
        ("VirtualNetwork",),
        ("*",),
    ),
    Rule(
        "AllowInternetOutBound",
        65001,
        "Outbound",
        "Allow",
        "*",
        ("*",),
        ("*",),
        ("Internet",),
        ("*",),
    ),
    Rule("DenyAllOutBound", 65500, "Outbound", "Deny", "*", ("*",), ("*",), ("*",), ("*",)),
)


def expand(prefix: str, vnet_prefixes: Sequence[IPv4Network]) -> list[IPv4Network]:
    """The networks an address field stands for (tags expanded for this VNet)."""
    tag = prefix.lower()
    virtual = list(collapse_addresses([*vnet_prefixes, IPv4Network(f"{WIRESERVER}/32")]))
    if tag in ("*", "any"):
        return [ALL]
    if tag == "virtualnetwork":
        return virtual
    if tag == "azureloadbalancer":
        return [IPv4Network(f"{WIRESERVER}/32")]
    if tag == "internet":
        return complement(virtual)
    return [IPv4Network(prefix, strict=False)]


def complement(nets: Iterable[IPv4Network]) -> list[IPv4Network]:
    """0.0.0.0/0 minus ``nets``."""
    remaining = [ALL]
    for net in collapse_addresses(nets):
        nxt: list[IPv4Network] = []
        for r in remaining:
            if net.subnet_of(r):
                nxt.extend(r.address_exclude(net))
            elif not r.subnet_of(net):
                nxt.append(r)
        remaining = nxt
    return sorted(collapse_addresses(remaining))


def port_range(value: str) -> tuple[int, int]:
    """``*`` → (0, 65535); ``22`` → (22, 22); ``80-90`` → (80, 90). Raises ValueError."""
    if value.strip() == "*":
        return 0, 65535
    lo, sep, hi = value.strip().partition("-")
    a, b = int(lo), int(hi) if sep else int(lo)
    if not (0 <= a <= b <= 65535):
        raise ValueError(value)
    return a, b


def _port_in(port: int, ranges: Sequence[str]) -> bool:
    return any(a <= port <= b for a, b in map(port_range, ranges))


def _addr_in(ip: IPv4Address, prefixes: Sequence[str], vnet: Sequence[IPv4Network]) -> bool:
    return any(ip in net for p in prefixes for net in expand(p, vnet))


def matches(rule: Rule, packet: Packet, vnet: Sequence[IPv4Network]) -> bool:
    if rule.direction != packet.direction:
        return False
    if rule.protocol != "*" and rule.protocol.lower() != packet.protocol.lower():
        return False
    ports_apply = packet.protocol.lower() in ("tcp", "udp")
    if ports_apply and not (
        _port_in(packet.source_port, rule.source_ports)
        and _port_in(packet.destination_port, rule.destination_ports)
    ):
        return False
    return _addr_in(packet.source, rule.source_prefixes, vnet) and _addr_in(
        packet.destination, rule.destination_prefixes, vnet
    )


def ordered(rules: Iterable[Rule], direction: str) -> list[Rule]:
    """The rules of one direction in evaluation order, the defaults last."""
    mine = [r for r in rules if r.direction == direction]
    return sorted(mine, key=lambda r: r.priority) + [
        r for r in DEFAULT_RULES if r.direction == direction
    ]


def evaluate(rules: Iterable[Rule], packet: Packet, vnet: Sequence[IPv4Network]) -> Decision:
    """One NSG's verdict: the first matching rule by priority (a default always matches)."""
    for rule in ordered(rules, packet.direction):
        if matches(rule, packet, vnet):
            return Decision(rule.access == "Allow", rule.name)
    raise AssertionError("the default rules always match")


def evaluate_path(
    subnet_nsg: Iterable[Rule] | None,
    nic_nsg: Iterable[Rule] | None,
    packet: Packet,
    vnet: Sequence[IPv4Network],
) -> Decision:
    """Both levels for one NIC: subnet then NIC inbound, NIC then subnet outbound."""
    if packet.source in PLATFORM or packet.destination in PLATFORM:
        return Decision(True, None)
    levels = [subnet_nsg, nic_nsg] if packet.direction == "Inbound" else [nic_nsg, subnet_nsg]
    last = Decision(True, None)
    for rules in levels:
        if rules is None:
            continue
        last = evaluate(rules, packet, vnet)
        if not last.allowed:
            return last
    return last


def allowed_ports(
    subnet_nsg: Sequence[Rule] | None,
    nic_nsg: Sequence[Rule] | None,
    *,
    protocol: str,
    source: IPv4Address,
    destination: IPv4Address,
    vnet: Sequence[IPv4Network],
    source_port: int = 50000,
) -> tuple[tuple[int, int], ...]:
    """The inbound destination ports ``evaluate_path`` allows from ``source``, as merged
    ranges: the verdict only changes at the rules' range boundaries, so one evaluation per
    segment between boundaries decides the whole segment. (A connection's source port is
    not known in advance; ``source_port`` stands in for an ephemeral one.)"""
    cuts = {0, 65536}
    for rules in (subnet_nsg, nic_nsg):
        for r in rules or ():
            for text in r.destination_ports:
                a, b = port_range(text)
                cuts.update((a, b + 1))
    edges = sorted(cuts)
    out: list[tuple[int, int]] = []
    for lo, nxt in itertools.pairwise(edges):
        packet = Packet("Inbound", protocol, source, source_port, destination, lo)
        if evaluate_path(subnet_nsg, nic_nsg, packet, vnet).allowed:
            if out and out[-1][1] == lo - 1:
                out[-1] = (out[-1][0], nxt - 1)
            else:
                out.append((lo, nxt - 1))
    return tuple(out)
