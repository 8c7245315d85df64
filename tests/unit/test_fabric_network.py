"""The pure halves of the VNet packet layer: DHCP messages and the nftables rendering."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv4Network

import pytest

from azimg.fabric import network_dhcp as dhcp
from azimg.fabric.network import port_name
from azimg.fabric.network_nft import Match, PortPolicy, render, render_forwards, rule_lines
from azimg.fabric.network_ns import NetnsError, run

LEASE = dhcp.Lease("00:0d:3a:12:34:56", IPv4Address("10.1.0.4"), IPv4Network("10.1.0.0/24"))


def request(kind: int, mac: str = LEASE.mac, requested: str | None = None) -> bytes:
    chaddr = bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")
    head = dhcp.HEADER.pack(1, 1, 6, 0, 0x1234, 0, 0x8000, b"\0" * 4, b"\0" * 4, b"\0" * 4,
                            b"\0" * 4, chaddr, b"", b"")  # fmt: skip
    opts = bytes([53, 1, kind])
    if requested:
        opts += bytes([50, 4]) + IPv4Address(requested).packed
    return head + dhcp.MAGIC + opts + b"\xff"


def options(raw: bytes) -> dict[int, bytes]:
    msg = dhcp.parse(raw.replace(b"\x02", b"\x01", 1))  # parse() reads requests: flip op
    assert msg is not None
    return msg.options


@pytest.mark.parametrize(
    ("kind", "requested", "answer"),
    [
        (dhcp.DISCOVER, None, dhcp.OFFER),
        (dhcp.REQUEST, "10.1.0.4", dhcp.ACK),
        (dhcp.REQUEST, None, dhcp.ACK),
        (dhcp.REQUEST, "10.1.0.9", dhcp.NAK),
    ],
)
def test_dhcp_answers(kind: int, requested: str | None, answer: int) -> None:
    msg = dhcp.parse(request(kind, requested=requested))
    assert msg is not None and msg.chaddr == LEASE.mac
    out = dhcp.reply(msg, LEASE)
    assert out is not None
    assert out[0] == 2  # BOOTREPLY
    assert struct.unpack_from("!I", out, 4)[0] == 0x1234
    yiaddr = IPv4Address(out[16:20])
    opts = options(out)
    assert opts[53] == bytes([answer])
    assert opts[54] == IPv4Address("168.63.129.16").packed
    if answer == dhcp.NAK:
        assert yiaddr == IPv4Address(0) and 3 not in opts
        return
    assert yiaddr == LEASE.address
    assert opts[1] == IPv4Address("255.255.255.0").packed
    assert opts[3] == IPv4Address("10.1.0.1").packed
    assert opts[6] == IPv4Address("168.63.129.16").packed
    assert opts[51] == b"\xff\xff\xff\xff"
    assert opts[245] == bytes([168, 63, 129, 16])
    # option 121: 168.63.129.16/32, 169.254.169.254/32 and the default route, all via .1
    assert opts[121] == bytes(
        [32, 168, 63, 129, 16, 10, 1, 0, 1, 32, 169, 254, 169, 254, 10, 1, 0, 1, 0, 10, 1, 0, 1]
    )


def test_dhcp_ignores_other_macs_and_other_messages() -> None:
    other = dhcp.parse(request(dhcp.DISCOVER, mac="00:0d:3a:ff:ff:ff"))
    assert other is not None and dhcp.reply(other, LEASE) is None
    release = dhcp.parse(request(dhcp.RELEASE))
    assert release is not None and dhcp.reply(release, LEASE) is None
    assert dhcp.parse(b"garbage") is None
    assert dhcp.parse(request(dhcp.DISCOVER).replace(b"\x01\x01\x06", b"\x01\x06\x06", 1)) is None


@pytest.mark.parametrize(
    ("match", "lines"),
    [
        (Match(True), ["meta nfproto ipv4 return"]),
        (Match(False, "tcp", destination_ports=((22, 22),)), ["meta l4proto tcp th dport 22 drop"]),
        (
            Match(True, "udp", ("10.0.0.0/16",), (), ("10.0.1.4",), ((53, 53), (8000, 8100))),
            [
                "meta l4proto udp ip saddr 10.0.0.0/16 ip daddr 10.0.1.4 "
                "th dport { 53, 8000-8100 } return"
            ],
        ),
        (Match(True, "tcp", ("0.0.0.0/0",), ((0, 65535),)), ["meta l4proto tcp return"]),
        (Match(False, "icmp", ("1.2.3.0/24", "5.6.7.8")), [
            "meta l4proto icmp ip saddr { 1.2.3.0/24, 5.6.7.8 } drop"
        ]),
        (
            Match(True, "any", destination_ports=((80, 80),)),
            [
                "meta l4proto tcp th dport 80 return",
                "meta l4proto udp th dport 80 return",
                "meta l4proto != { tcp, udp } return",
            ],
        ),
    ],
)  # fmt: skip
def test_rule_lines(match: Match, lines: list[str]) -> None:
    assert rule_lines(match) == lines


def test_render_orders_levels_and_guards_spoofing() -> None:
    p = PortPolicy(
        "tabc",
        "10.0.0.4",
        inbound=((Match(False, "tcp", destination_ports=((22, 22),)), Match(True)), (Match(True),)),
        outbound=((Match(True),),),
    )
    script = render([p, PortPolicy("tdef", "10.0.0.5", ip_forwarding=True)])
    assert script.startswith("table inet azimg\ndelete table inet azimg\n")
    assert 'iifname "tabc" ip saddr != 10.0.0.4 drop' in script
    assert "10.0.0.5 drop" not in script  # IP forwarding on: no source check
    assert script.index("jump in0_tabc") < script.index("jump in1_tabc")
    assert 'oifname "tabc" jump in_tabc' in script
    assert 'iifname "tabc" jump out_tabc' in script
    assert script.index("ct state established,related accept") < script.index("jump out_tabc")


def test_render_forwards() -> None:
    script = render_forwards("azimg_pip_x", [("127.100.0.1", 22, 22), ("127.100.0.2", 0, 65535)], 4)
    assert "elements = { 127.100.0.1 . 22-22, 127.100.0.2 . 0-65535 }" in script
    assert "redirect to :4" in script
    assert "elements" not in render_forwards("azimg_pip_x", [], 4)


def test_port_names_fit_linux() -> None:
    rid = "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/nics/n"
    name, name_upper = port_name(rid), rid.upper()
    assert len(name) <= 15 and name.startswith("t")
    assert name == port_name(name_upper)


def test_a_missing_tool_is_a_netns_error_not_a_crash() -> None:
    with pytest.raises(NetnsError, match="no-such-tool"):
        run(["no-such-tool", "list"])
