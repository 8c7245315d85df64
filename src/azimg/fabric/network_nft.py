"""NSG verdicts as an nftables ruleset for one VNet namespace (pure: data in, script out).

Ports are routed interfaces, so every guest packet crosses the namespace's IP stack and the
``inet`` family's hooks see it with its real in/out port and connection tracking:
- ``forward`` (guest to guest): established/related flows pass (NSGs are stateful; a rule
  change does not cut an open connection), then without IP forwarding a port may only send
  from its own address, then the sender's outbound levels, then the receiver's inbound levels.
- ``output`` (the namespace's own sockets: the public-IP forwarder) meets the receiver's
  inbound levels the same way, with DHCP replies exempt.
- ``input`` (to the namespace itself): DHCP and the platform endpoints 168.63.129.16:80/32526
  and 169.254.169.254:80 only (they bypass NSGs as on Azure); anything else is rejected, so
  e.g. DNS fails fast instead of timing out.
A level (one NSG) is a chain of its rules in priority order, defaults last; an Allow returns
to the caller (the next level decides), a Deny drops. A level without an NSG is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TABLE = "azimg"
PLATFORM_ADDRESSES = ("168.63.129.16", "169.254.169.254")


@dataclass(frozen=True)
class Match:
    """One security rule in packet terms (tags already expanded to CIDRs by the caller)."""

    allow: bool
    protocol: str = "any"  # tcp | udp | icmp | esp | ah | any
    sources: tuple[str, ...] = ()  # CIDRs or addresses; () = any
    source_ports: tuple[tuple[int, int], ...] = ()  # () = any
    destinations: tuple[str, ...] = ()
    destination_ports: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class PortPolicy:
    ifname: str
    address: str  # the NIC's private IP
    inbound: tuple[tuple[Match, ...], ...] = ()  # levels in evaluation order (subnet, NIC)
    outbound: tuple[tuple[Match, ...], ...] = ()  # (NIC, subnet)
    ip_forwarding: bool = False


def _set(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _ports(ranges: tuple[tuple[int, int], ...]) -> str | None:
    if not ranges or any(a == 0 and b == 65535 for a, b in ranges):
        return None
    return _set([str(a) if a == b else f"{a}-{b}" for a, b in ranges])


def _addrs(prefixes: tuple[str, ...]) -> str | None:
    if not prefixes or "0.0.0.0/0" in prefixes:
        return None
    return _set(list(prefixes))


def rule_lines(m: Match) -> list[str]:
    """The nft statements for one rule (several when ``any`` protocol meets ports)."""
    verdict = "return" if m.allow else "drop"
    addr = ""
    if (src := _addrs(m.sources)) is not None:
        addr += f" ip saddr {src}"
    if (dst := _addrs(m.destinations)) is not None:
        addr += f" ip daddr {dst}"
    sport, dport = _ports(m.source_ports), _ports(m.destination_ports)
    ports = (f" th sport {sport}" if sport else "") + (f" th dport {dport}" if dport else "")
    if m.protocol in ("tcp", "udp"):
        return [f"meta l4proto {m.protocol}{addr}{ports} {verdict}"]
    if m.protocol != "any":
        return [f"meta l4proto {m.protocol}{addr} {verdict}"]
    if not ports:
        return [f"meta nfproto ipv4{addr} {verdict}"]
    return [
        f"meta l4proto tcp{addr}{ports} {verdict}",
        f"meta l4proto udp{addr}{ports} {verdict}",
        f"meta l4proto != {{ tcp, udp }}{addr} {verdict}",  # ports mean nothing to ICMP
    ]


def _chain(name: str, lines: list[str]) -> str:
    body = "".join(f"\t\t{line}\n" for line in lines)
    return f"\tchain {name} {{\n{body}\t}}\n"


def render(ports: Sequence[PortPolicy]) -> str:
    """The whole table, replacing the previous one in one transaction."""
    chains: list[str] = []
    forward = [
        "type filter hook forward priority filter; policy drop;",
        "ct state established,related accept",
        "ct state invalid drop",
    ]
    output = [
        "type filter hook output priority filter; policy accept;",
        "ct state established,related accept",
        "udp sport 67 udp dport 68 accept",
    ]
    for p in ports:
        if not p.ip_forwarding:
            forward.append(f'iifname "{p.ifname}" ip saddr != {p.address} drop')
    for p in ports:
        for direction, levels in (("out", p.outbound), ("in", p.inbound)):
            names = []
            for i, level in enumerate(levels):
                name = f"{direction}{i}_{p.ifname}"
                names.append(name)
                chains.append(_chain(name, [line for m in level for line in rule_lines(m)]))
            if names:
                chains.append(_chain(f"{direction}_{p.ifname}", [f"jump {n}" for n in names]))
                key = "iifname" if direction == "out" else "oifname"
                forward.append(f'{key} "{p.ifname}" jump {direction}_{p.ifname}')
                if direction == "in":
                    output.append(f'oifname "{p.ifname}" jump in_{p.ifname}')
    forward.append('iifname "t*" oifname "t*" accept')
    platform = _set(list(PLATFORM_ADDRESSES))
    inp = [
        "type filter hook input priority filter; policy accept;",
        "ct state established,related accept",
        'iifname "lo" accept',
        "udp dport 67 accept",
        f"ip daddr {platform} tcp dport {{ 80, 32526 }} accept",
        "meta l4proto tcp reject with tcp reset",
        "reject",
    ]
    return (
        f"table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n"
        + _chain("forward", forward)
        + _chain("output", output)
        + _chain("input", inp)
        + "".join(chains)
        + "}\n"
    )


def render_forwards(table: str, forwards: Sequence[tuple[str, int, int]], proxy_port: int) -> str:
    """The host-side table: TCP to (public address, allowed port range) goes to the forwarder
    on 127.0.0.1:``proxy_port``; any other port of a public address finds nothing (refused)."""
    elements = ", ".join(f"{ip} . {a}-{b}" for ip, a, b in forwards)
    allowed = (
        "\tset allowed {\n\t\ttype ipv4_addr . inet_service\n\t\tflags interval\n"
        + (f"\t\telements = {{ {elements} }}\n" if forwards else "")
        + "\t}\n"
    )
    chain = _chain(
        "output",
        [
            "type nat hook output priority -100; policy accept;",
            f"ip daddr . tcp dport @allowed redirect to :{proxy_port}",
        ],
    )
    return f"table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n{allowed}{chain}}}\n"
