"""CIDR functions (``parseCidr``, ``cidrSubnet``, ``cidrHost``) on Python's ``ipaddress``;
host bits of the input are masked; IPv6 has no broadcast and its first usable is the
network (reference §3.5)."""

from __future__ import annotations

import ipaddress
from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.functions.base import (
    Context,
    register,
    want_int,
    want_str,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _net(fn: str, text: Any) -> Network:
    try:
        return ipaddress.ip_network(want_str(fn, text), strict=False)
    except ValueError:
        raise ExpressionError(f"The value '{text}' of '{fn}' is not a valid CIDR.") from None


@register("parseCidr", min_args=1, max_args=1)
def _parse_cidr(_ctx: Context, text: Any) -> dict[str, Any]:
    net = _net("parseCidr", text)
    if isinstance(net, ipaddress.IPv4Network):
        small = net.prefixlen >= 31
        first = net.network_address if small else net.network_address + 1
        last = net.broadcast_address if small else net.broadcast_address - 1
        return {
            "network": str(net.network_address),
            "netmask": str(net.netmask),
            "broadcast": str(net.broadcast_address),
            "firstUsable": str(first),
            "lastUsable": str(last),
            "cidr": net.prefixlen,
        }
    return {
        "network": str(net.network_address),
        "netmask": str(net.netmask),
        "firstUsable": str(net.network_address),
        "lastUsable": str(net.broadcast_address),
        "cidr": net.prefixlen,
    }


@register("cidrSubnet", min_args=3, max_args=3)
def _cidr_subnet(_ctx: Context, text: Any, prefix: Any, index: Any) -> str:
    net = _net("cidrSubnet", text)
    new, i = want_int("cidrSubnet", prefix), want_int("cidrSubnet", index)
    if not net.prefixlen <= new <= net.max_prefixlen:
        raise ExpressionError(
            f"The new prefix length '{new}' of 'cidrSubnet' must be between "
            f"{net.prefixlen} and {net.max_prefixlen}."
        )
    count = 2 ** (new - net.prefixlen)
    if not 0 <= i < count:
        raise ExpressionError(f"The subnet index '{i}' of 'cidrSubnet' is out of range.")
    size = 2 ** (net.max_prefixlen - new)
    start = int(net.network_address) + i * size
    first = ipaddress.IPv4Address(start) if net.version == 4 else ipaddress.IPv6Address(start)
    return f"{first}/{new}"


@register("cidrHost", min_args=2, max_args=2)
def _cidr_host(_ctx: Context, text: Any, index: Any) -> str:
    net = _net("cidrHost", text)
    i = want_int("cidrHost", index)
    if net.version == 4:
        usable = net.num_addresses - 2 if net.prefixlen < 31 else net.num_addresses
        offset = 1 if net.prefixlen < 31 else 0
    else:
        usable, offset = net.num_addresses - 1, 1
    if not 0 <= i < usable:
        raise ExpressionError(f"The host index '{i}' of 'cidrHost' is out of range.")
    return str(net.network_address + offset + i)
