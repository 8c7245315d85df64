"""A DHCP server for one VNet port at a time: the answer is fixed by the port (reference/
network.md §7.2, §10.2).

Why our own and not dnsmasq: VNet ports are routed /32 taps (see ``network.py``), which
dnsmasq's subnet matching does not fit, and the whole answer is known in advance — the NIC's
MAC gets the NIC's address, nothing else gets anything. What goes out is what Azure's lease
carries: the address and mask, router ``.1``, DNS 168.63.129.16, an infinite lease, server
identifier 168.63.129.16, classless routes (option 121) for 168.63.129.16/32,
169.254.169.254/32 and the default route via ``.1``, and option 245 (the WireServer, which
waagent looks for in the lease). Packet building and parsing are pure functions; ``serve``
answers DISCOVER with OFFER and REQUEST with ACK (or NAK for another address).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

MAGIC = b"\x63\x82\x53\x63"
# RFC 2131 §2: op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr,
# chaddr[16], sname[64], file[128]; then the magic cookie and options.
HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8
WIRESERVER = IPv4Address("168.63.129.16")
IMDS = IPv4Address("169.254.169.254")
INFINITE = 0xFFFFFFFF


@dataclass(frozen=True)
class Lease:
    """What one port's guest is told."""

    mac: str  # "00:0d:3a:12:34:56"
    address: IPv4Address
    subnet: IPv4Network
    domain: str = "internal.cloudapp.net"
    dns: tuple[IPv4Address, ...] = (WIRESERVER,)

    @property
    def router(self) -> IPv4Address:
        return self.subnet.network_address + 1


@dataclass(frozen=True)
class Message:
    op: int
    xid: int
    flags: int
    ciaddr: IPv4Address
    chaddr: str  # "00:0d:3a:..."
    options: dict[int, bytes]

    @property
    def kind(self) -> int:
        raw = self.options.get(53, b"")
        return raw[0] if raw else 0


def parse(data: bytes) -> Message | None:
    """A BOOTREQUEST from an Ethernet client, or None for anything else."""
    if len(data) < HEADER.size + 4 or data[HEADER.size : HEADER.size + 4] != MAGIC:
        return None
    op, htype, hlen, _hops, xid, _secs, flags, ciaddr, *_rest = HEADER.unpack_from(data)
    chaddr = HEADER.unpack_from(data)[11]
    if op != 1 or htype != 1 or hlen != 6:
        return None
    options: dict[int, bytes] = {}
    i = HEADER.size + 4
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            return None
        length = data[i + 1]
        options[code] = data[i + 2 : i + 2 + length]
        i += 2 + length
    mac = ":".join(f"{b:02x}" for b in chaddr[:6])
    return Message(op, xid, flags, IPv4Address(ciaddr), mac, options)


def _routes(lease: Lease) -> bytes:
    """Option 121: each route as prefix length, significant octets, router."""
    out = b""
    gw = lease.router.packed
    for dest, length in ((WIRESERVER, 32), (IMDS, 32), (IPv4Address("0.0.0.0"), 0)):
        out += bytes([length]) + dest.packed[: (length + 7) // 8] + gw
    return out


def reply(request: Message, lease: Lease) -> bytes | None:
    """The answer to ``request`` (OFFER, ACK or NAK), or None when there is none to give."""
    if request.chaddr != lease.mac:
        return None
    if request.kind == DISCOVER:
        kind = OFFER
    elif request.kind == REQUEST:
        asked = request.options.get(50)
        wanted = IPv4Address(asked) if asked and len(asked) == 4 else request.ciaddr
        kind = ACK if wanted in (lease.address, IPv4Address(0)) else NAK
    else:
        return None
    options: list[tuple[int, bytes]] = [(53, bytes([kind])), (54, WIRESERVER.packed)]
    if kind != NAK:
        options += [
            (51, struct.pack("!I", INFINITE)),
            (1, lease.subnet.netmask.packed),
            (3, lease.router.packed),
            (6, b"".join(a.packed for a in lease.dns)),
            (15, lease.domain.encode()),
            (121, _routes(lease)),
            (245, WIRESERVER.packed),
        ]
    body = b"".join(bytes([code, len(value)]) + value for code, value in options) + b"\xff"
    chaddr = bytes.fromhex(request.chaddr.replace(":", "")).ljust(16, b"\0")
    header = HEADER.pack(
        2, 1, 6, 0, request.xid, 0, request.flags,
        request.ciaddr.packed,
        (lease.address if kind != NAK else IPv4Address(0)).packed,
        IPv4Address(0).packed, IPv4Address(0).packed,
        chaddr, b"", b"",
    )  # fmt: skip
    return header + MAGIC + body


def port_socket(ifname: str) -> socket.socket:
    """UDP :67 bound to one port (call inside the VNet's namespace): only its guest's
    requests arrive, and broadcasts sent on it leave through that port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    s.bind(("0.0.0.0", 67))
    return s


def answer(sock: socket.socket, lease: Lease) -> int | None:
    """Read one datagram from ``sock`` and answer it (broadcast: the client has no address);
    the kind of answer sent (OFFER, ACK, NAK), or None."""
    data, _peer = sock.recvfrom(4096)
    msg = parse(data)
    if msg is None:
        return None
    out = reply(msg, lease)
    if out is None:
        return None
    sock.sendto(out, ("255.255.255.255", 68))
    return out[HEADER.size + 4 + 2]  # option 53 comes first
