"""IPv4 prefixes and addresses as Azure's virtual networks treat them (reference/network.md
§2.4, §7.1). Pure functions over ``ipaddress`` objects; they raise the Network error classes.

A subnet loses five addresses: the network address, ``.1`` (the gateway), ``.2`` and ``.3``
(Azure DNS) and the last (broadcast); the first assignable address is ``.4``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network

from azimg.platform.network_errors import (
    AddressPrefixNotAllowed,
    InvalidAddressPrefix,
    InvalidCIDRNotation,
)

#: Ranges a virtual network may not use, with the reason shown to the caller.
FORBIDDEN = (
    (IPv4Network("224.0.0.0/4"), "multicast"),
    (IPv4Network("255.255.255.255/32"), "broadcast"),
    (IPv4Network("127.0.0.0/8"), "loopback"),
    (IPv4Network("169.254.0.0/16"), "link-local"),
    (IPv4Network("168.63.129.16/32"), "the Azure platform address"),
)
WIRESERVER = IPv4Address("168.63.129.16")
IMDS = IPv4Address("169.254.169.254")
RESERVED_AT_START = 4  # network, gateway, two DNS


def parse_prefix(value: str, *, rid: str, target: str) -> IPv4Network:
    """``value`` as an IPv4 prefix with no host bits set, outside the forbidden ranges."""
    try:
        net = ipaddress.ip_network(value, strict=False)
    except (ValueError, TypeError):
        raise InvalidAddressPrefix(prefix=value, rid=rid, target=target) from None
    if not isinstance(net, IPv4Network) or "/" not in value:
        raise InvalidAddressPrefix(prefix=value, rid=rid, target=target)
    if str(net) != value.strip():
        raise InvalidCIDRNotation(prefix=value, rid=rid, fixed=str(net), target=target)
    for bad, why in FORBIDDEN:
        if net.overlaps(bad):
            raise AddressPrefixNotAllowed(prefix=value, rid=rid, why=why, target=target)
    return net


def first_overlap(nets: Iterable[IPv4Network]) -> tuple[IPv4Network, IPv4Network] | None:
    """The first pair of prefixes in ``nets`` that overlap, or None."""
    seen: list[IPv4Network] = []
    for net in nets:
        for other in seen:
            if net.overlaps(other):
                return other, net
        seen.append(net)
    return None


def within_any(net: IPv4Network, spaces: Iterable[IPv4Network]) -> bool:
    return any(net.subnet_of(space) for space in spaces)


def gateway(subnet: IPv4Network) -> IPv4Address:
    return subnet.network_address + 1


def is_reserved(ip: IPv4Address, subnet: IPv4Network) -> bool:
    offset = int(ip) - int(subnet.network_address)
    return offset < RESERVED_AT_START or ip == subnet.broadcast_address


def first_free(subnet: IPv4Network, used: Iterable[IPv4Address]) -> IPv4Address | None:
    """The lowest assignable address of ``subnet`` not in ``used`` (Azure: usually sequential)."""
    taken = set(used)
    start = int(subnet.network_address) + RESERVED_AT_START
    for n in range(start, int(subnet.broadcast_address)):
        ip = IPv4Address(n)
        if ip not in taken:
            return ip
    return None


def mac_arm(raw: bytes) -> str:
    """Six bytes as ARM spells a MAC (``00-0D-3A-12-34-56``)."""
    return "-".join(f"{b:02X}" for b in raw)


def mac_guest(arm: str) -> str:
    """ARM's ``00-0D-3A-12-34-56`` as the guest and QEMU spell it (``00:0d:3a:12:34:56``)."""
    return arm.replace("-", ":").lower()


def mac_imds(arm: str) -> str:
    """ARM's ``00-0D-3A-12-34-56`` as IMDS spells it (``000D3A123456``)."""
    return arm.replace("-", "").upper()
