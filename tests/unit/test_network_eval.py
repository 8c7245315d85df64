"""NSG evaluation and VNet address rules, table-tested (pure functions, no server)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from azimg.platform.network_errors import (
    AddressPrefixNotAllowed,
    InvalidAddressPrefix,
    InvalidCIDRNotation,
)
from azimg.platform.resources.network import addressing
from azimg.platform.resources.network.nsg_eval import (
    Packet,
    Rule,
    allowed_ports,
    complement,
    evaluate,
    evaluate_path,
    expand,
    port_range,
)

VNET = [IPv4Network("10.0.0.0/16")]
A = IPv4Address("10.0.0.4")
B = IPv4Address("10.0.0.5")
OUTSIDE = IPv4Address("127.100.0.1")


def rule(name: str, priority: int, access: str = "Allow", **kw: object) -> Rule:
    base: dict[str, object] = {
        "direction": "Inbound",
        "protocol": "Tcp",
        "source_prefixes": ("*",),
        "source_ports": ("*",),
        "destination_prefixes": ("*",),
        "destination_ports": ("22",),
    }
    base.update(kw)
    return Rule(name=name, priority=priority, access=access, **base)  # type: ignore[arg-type]


def tcp_in(src: IPv4Address, port: int, dst: IPv4Address = A) -> Packet:
    return Packet("Inbound", "Tcp", src, 40000, dst, port)


SSH = rule("ssh", 1000)
DENY_SSH = rule("deny-ssh", 900, "Deny")
WEB_RANGE = rule("web", 1100, destination_ports=("8000-8100",))
FROM_NET = rule("from-net", 1200, source_prefixes=("203.0.113.0/24",), destination_ports=("*",))
UDP_53 = rule("dns", 1300, protocol="Udp", destination_ports=("53",))
DENY_22_AT_99 = rule("d", 99, "Deny")
INTERNET_ONLY = rule("inet", 1400, source_prefixes=("Internet",), destination_ports=("9000",))


@pytest.mark.parametrize(
    ("rules", "packet", "allowed", "decided_by"),
    [
        # the defaults alone: VNet peers in, the outside world not
        ((), tcp_in(B, 22), True, "AllowVnetInBound"),
        ((), tcp_in(OUTSIDE, 22), False, "DenyAllInBound"),
        ((), tcp_in(IPv4Address("168.63.129.16"), 80), True, "AllowVnetInBound"),
        # a user rule opens a port; others stay shut
        ((SSH,), tcp_in(OUTSIDE, 22), True, "ssh"),
        ((SSH,), tcp_in(OUTSIDE, 23), False, "DenyAllInBound"),
        # lower priority number wins, whatever the list order
        ((SSH, DENY_SSH), tcp_in(OUTSIDE, 22), False, "deny-ssh"),
        ((DENY_SSH, SSH), tcp_in(OUTSIDE, 22), False, "deny-ssh"),
        # a user Deny beats the VNet default too
        ((DENY_SSH,), tcp_in(B, 22), False, "deny-ssh"),
        # port ranges, source prefixes, protocol
        ((WEB_RANGE,), tcp_in(OUTSIDE, 8050), True, "web"),
        ((WEB_RANGE,), tcp_in(OUTSIDE, 8101), False, "DenyAllInBound"),
        ((FROM_NET,), tcp_in(IPv4Address("203.0.113.9"), 5), True, "from-net"),
        ((FROM_NET,), tcp_in(IPv4Address("203.0.114.9"), 5), False, "DenyAllInBound"),
        ((UDP_53,), tcp_in(OUTSIDE, 53), False, "DenyAllInBound"),
        ((UDP_53,), Packet("Inbound", "Udp", OUTSIDE, 5, A, 53), True, "dns"),
        # the Internet tag covers what is outside the VNet only
        ((INTERNET_ONLY,), tcp_in(OUTSIDE, 9000), True, "inet"),
        ((INTERNET_ONLY,), tcp_in(B, 9000), True, "AllowVnetInBound"),
        # outbound defaults: VNet and Internet allowed
        ((), Packet("Outbound", "Tcp", A, 40000, B, 22), True, "AllowVnetOutBound"),
        ((), Packet("Outbound", "Tcp", A, 40000, OUTSIDE, 80), True, "AllowInternetOutBound"),
    ],
)
def test_evaluate_one_nsg(
    rules: tuple[Rule, ...], packet: Packet, allowed: bool, decided_by: str
) -> None:
    d = evaluate(rules, packet, VNET)
    assert (d.allowed, d.rule) == (allowed, decided_by)


@pytest.mark.parametrize(
    ("subnet", "nic", "packet", "allowed", "decided_by"),
    [
        # no NSG anywhere: everything passes
        (None, None, tcp_in(OUTSIDE, 22), True, None),
        # inbound: subnet first; a subnet deny stops it even if the NIC allows
        ((DENY_SSH,), (SSH,), tcp_in(OUTSIDE, 22), False, "deny-ssh"),
        # both must allow: subnet allows, NIC (defaults only) denies
        ((SSH,), (), tcp_in(OUTSIDE, 22), False, "DenyAllInBound"),
        ((SSH,), (SSH,), tcp_in(OUTSIDE, 22), True, "ssh"),
        # only one level with an NSG
        (None, (SSH,), tcp_in(OUTSIDE, 22), True, "ssh"),
        ((SSH,), None, tcp_in(OUTSIDE, 22), True, "ssh"),
        # outbound: NIC first
        (
            (rule("sub-out", 100, "Deny", direction="Outbound", destination_ports=("*",)),),
            (rule("nic-out", 100, "Deny", direction="Outbound", destination_ports=("*",)),),
            Packet("Outbound", "Tcp", A, 1, B, 22),
            False,
            "nic-out",
        ),
        # the platform addresses are not subject to NSGs
        ((), (), tcp_in(IPv4Address("169.254.169.254"), 80), True, None),
        ((), (), Packet("Outbound", "Tcp", A, 1, IPv4Address("168.63.129.16"), 80), True, None),
    ],
)
def test_evaluate_path(
    subnet: tuple[Rule, ...] | None,
    nic: tuple[Rule, ...] | None,
    packet: Packet,
    allowed: bool,
    decided_by: str | None,
) -> None:
    d = evaluate_path(subnet, nic, packet, VNET)
    assert (d.allowed, d.rule) == (allowed, decided_by)


def test_tags_expand_for_the_vnet() -> None:
    assert expand("VirtualNetwork", VNET) == [
        IPv4Network("10.0.0.0/16"),
        IPv4Network("168.63.129.16/32"),
    ]
    internet = expand("Internet", VNET)
    assert not any(n.overlaps(IPv4Network("10.0.0.0/16")) for n in internet)
    total = sum(n.num_addresses for n in internet)
    assert total == 2**32 - 2**16 - 1
    assert expand("*", VNET) == [IPv4Network("0.0.0.0/0")]
    assert complement([IPv4Network("0.0.0.0/1")]) == [IPv4Network("128.0.0.0/1")]


@pytest.mark.parametrize(
    ("text", "expected"), [("*", (0, 65535)), ("22", (22, 22)), ("80-90", (80, 90))]
)
def test_port_range(text: str, expected: tuple[int, int]) -> None:
    assert port_range(text) == expected


@pytest.mark.parametrize("bad", ["70000", "90-80", "x", "-1", ""])
def test_port_range_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        port_range(bad)


@pytest.mark.parametrize(
    ("prefix", "error"),
    [
        ("10.10.10.0/16", InvalidCIDRNotation),
        ("10.0.0.0", InvalidAddressPrefix),
        ("fd00::/64", InvalidAddressPrefix),
        ("nonsense", InvalidAddressPrefix),
        ("127.1.0.0/16", AddressPrefixNotAllowed),
        ("169.254.0.0/24", AddressPrefixNotAllowed),
        ("168.63.0.0/16", AddressPrefixNotAllowed),
        ("224.0.0.0/8", AddressPrefixNotAllowed),
    ],
)
def test_prefix_rules(prefix: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        addressing.parse_prefix(prefix, rid="/x", target="t")


def test_reserved_addresses_and_first_free() -> None:
    net = IPv4Network("10.0.1.0/24")
    reserved = [ip for ip in net if addressing.is_reserved(ip, net)]
    assert [str(i) for i in reserved] == [
        "10.0.1.0",
        "10.0.1.1",
        "10.0.1.2",
        "10.0.1.3",
        "10.0.1.255",
    ]
    assert addressing.first_free(net, []) == IPv4Address("10.0.1.4")
    assert addressing.first_free(net, [IPv4Address("10.0.1.4")]) == IPv4Address("10.0.1.5")
    small = IPv4Network("10.0.2.0/29")
    assert addressing.first_free(small, [IPv4Address(f"10.0.2.{i}") for i in (4, 5, 6)]) is None


def test_mac_spellings() -> None:
    arm = addressing.mac_arm(bytes([0, 0x0D, 0x3A, 0x12, 0x34, 0xAB]))
    assert arm == "00-0D-3A-12-34-AB"
    assert addressing.mac_guest(arm) == "00:0d:3a:12:34:ab"
    assert addressing.mac_imds(arm) == "000D3A1234AB"


@pytest.mark.parametrize(
    ("subnet", "nic", "expected"),
    [
        (None, None, ((0, 65535),)),
        (None, (), ()),
        (None, (SSH,), ((22, 22),)),
        (None, (SSH, WEB_RANGE), ((22, 22), (8000, 8100))),
        (None, (SSH, DENY_SSH), ()),
        ((rule("all", 100, destination_ports=("*",)),), (SSH,), ((22, 22),)),
        (None, (rule("r", 100, destination_ports=("20-30",)), DENY_22_AT_99), ((20, 21), (23, 30))),
        (None, (INTERNET_ONLY,), ((9000, 9000),)),
    ],
)  # fmt: skip
def test_allowed_ports_from_outside(
    subnet: tuple[Rule, ...] | None, nic: tuple[Rule, ...] | None, expected: tuple
) -> None:
    got = allowed_ports(subnet, nic, protocol="Tcp", source=OUTSIDE, destination=A, vnet=VNET)
    assert got == expected
