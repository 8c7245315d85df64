"""Virtual networks with real packets: one network namespace per VNet, routed ports, our DHCP,
nftables for NSGs, and public IPs on 127.100.0.0/16 forwarded into the VNet.

The decision (reference/network.md §10 compares slirp, bridges and userspace switches):
- **A namespace per VNet, no uplink.** Nothing a guest sends can leave the machine (there is
  no route out), and VNets cannot see each other (separate network stacks), even with
  overlapping address spaces.
- **Routed /32 ports instead of a bridge.** Each NIC is a tap (a veth for the tests' stand-in
  guests) carrying its subnet's ``.1/32``, with ``proxy_arp`` and a ``/32`` route to the NIC's
  address. Guests ARP for their peers and the namespace answers, as Azure's L3 overlay does; all
  guest traffic crosses the namespace's IP stack, so the ``inet`` nftables hooks see each
  packet with its real in/out port and conntrack makes NSGs stateful without
  ``br_netfilter`` (this kernel has no bridge conntrack).
- **Our own DHCP server** (``network_dhcp.py``): the answer is fixed per port (MAC → address),
  and Azure's lease (router ``.1``, option 121 routes, option 245) is what waagent and
  cloud-init look for. dnsmasq's per-subnet matching does not fit /32 ports.
- **The platform endpoints inside the namespace**: 168.63.129.16 and 169.254.169.254 live on
  its ``lo``; listeners created inside it relay each connection to the Unix socket of the VM
  whose private address it came from (unique within a VNet) — the same sockets the slirp path
  uses, so WireServer and IMDS code does not change.
- **Public IPs**: each is its own address in 127.100.0.0/16 (all of 127/8 is local on Linux,
  nothing outside the machine can reach it). A host-side nftables table redirects TCP to a
  public address *only on the ports the effective NSG allows* to one forwarder; other ports
  find no listener and are refused. The forwarder connects from inside the VNet namespace,
  from 198.51.100.1 (standing in for "the Internet"), to the NIC's private address, where the
  namespace's NSG chains apply once more. Rule changes rewrite both tables atomically.
Root is needed (CAP_NET_ADMIN); the platform falls back to per-VM slirp without it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import selectors
import socket
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from azimg.fabric import network_dhcp, network_ns
from azimg.fabric.network_nft import PortPolicy, render, render_forwards

log = logging.getLogger(__name__)

INTERNET_SOURCE = "198.51.100.1"  # the apparent source of forwarded public-IP connections
SO_ORIGINAL_DST = 80
ENDPOINTS = {
    ("168.63.129.16", 80): "wireserver",
    ("168.63.129.16", 32526): "hostgaplugin",
    ("169.254.169.254", 80): "imds",
}


@dataclass(frozen=True)
class Port:
    """One NIC in a VNet: the guest behind ``ifname`` has ``mac`` and gets ``address``."""

    ifname: str
    mac: str  # "00:0d:3a:12:34:56"
    address: IPv4Address
    subnet: IPv4Network
    endpoints: dict[str, str] = field(default_factory=dict)  # service → Unix socket path
    domain: str = "internal.cloudapp.net"
    key: str = ""  # the owner's name for this NIC (the platform: its resource id)


@dataclass(frozen=True)
class NicPlug:
    """A VM's NIC as its ``VmSpec`` carries it: which VNet, which port."""

    vnet: str
    port: Port


@dataclass(frozen=True)
class Forward:
    """A public IP: TCP to ``public_ip`` on ``tcp_ports`` reaches ``private_ip`` in ``vnet``."""

    public_ip: str
    vnet: str
    private_ip: str
    tcp_ports: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Desired:
    """What the owner wants enforced now: NSG chains per VNet and every public IP."""

    policies: Mapping[str, Sequence[PortPolicy]]
    forwards: Sequence[Forward]


#: Asked with the keys of the ports that exist; answers what to enforce for them.
DesiredFn = Callable[[Sequence[str]], Desired]


def port_name(seed: str) -> str:
    """A stable interface name (≤ 15 chars, starts with ``t``) for a NIC id."""
    return "t" + hashlib.sha256(seed.lower().encode()).hexdigest()[:12]


@dataclass
class _VNet:
    netns: str
    ports: dict[str, Port] = field(default_factory=dict)
    dhcp: dict[str, socket.socket] = field(default_factory=dict)
    listeners: list[socket.socket] = field(default_factory=list)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def splice(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both sides are done, then close both (one thread per direction)."""
    t = threading.Thread(target=_pump, args=(b, a), daemon=True)
    t.start()
    _pump(a, b)
    t.join()
    for s in (a, b):
        with contextlib.suppress(OSError):
            s.close()


def _refuse(s: socket.socket) -> None:
    """Close with RST, so the client sees a reset rather than an orderly close."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


class Networks:
    """Every VNet of one fabric owner; ``tag`` keeps two owners on one machine apart.

    With ``desired``, a reconcile loop asks every ``interval`` seconds what to enforce for
    the ports that exist and rewrites only what changed, so a rule change reaches running
    guests within about a second whichever API call made it (``reconcile()`` does it now)."""

    def __init__(
        self, tag: str, *, desired: DesiredFn | None = None, interval: float = 1.0
    ) -> None:
        self.tag = tag
        self._desired = desired
        self._interval = interval
        self._applied: dict[str, str] = {}  # vnet → the nft script in force
        self._vnets: dict[str, _VNet] = {}
        self._forwards: dict[str, Forward] = {}
        self._lock = threading.RLock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._closed = threading.Event()
        self.answered: dict[str, list[int]] = {}  # MAC → DHCP answers sent (OFFER, ACK, ...)
        self._proxy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._proxy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._proxy.bind(("127.0.0.1", 0))
        self._proxy.listen(64)
        self._table = f"azimg_pip_{tag}"
        self._threads = [
            threading.Thread(target=self._dhcp_loop, name="vnet-dhcp", daemon=True),
            threading.Thread(
                target=self._accept_loop,
                args=(self._proxy, self._forward_one),
                name="vnet-pip",
                daemon=True,
            ),
        ]
        if desired is not None:
            self._threads.append(
                threading.Thread(target=self._reconcile_loop, name="vnet-reconcile", daemon=True)
            )
        self.reap_stale()
        for t in self._threads:
            t.start()
        self._apply_forwards()

    def reap_stale(self) -> list[str]:
        """Namespaces a predecessor with this tag left (killed before ``close``): their
        guests died with it, so they go."""
        prefix = f"azimg-{self.tag}-"
        gone = []
        if network_ns.NETNS_DIR.exists():
            for entry in network_ns.NETNS_DIR.iterdir():
                if entry.name.startswith(prefix) and entry.name[len(prefix) :] not in self._vnets:
                    network_ns.delete(entry.name)
                    gone.append(entry.name)
        listening = _listening_ports()
        for table in network_ns.run(["nft", "list", "tables", "ip"]).split():
            if not table.startswith("azimg_pip_") or table == self._table:
                continue
            text = network_ns.run(["nft", "list", "table", "ip", table])
            port = re.search(r"redirect to :(\d+)", text)
            if port is None or int(port.group(1)) not in listening:  # its forwarder is gone
                network_ns.nft(None, f"delete table ip {table}\n")
                gone.append(table)
        return gone

    def reconcile(self) -> None:
        """Apply what ``desired`` says for the ports that exist now (changed parts only)."""
        if self._desired is None:
            return
        with self._lock:
            keys = [p.key for v in self._vnets.values() for p in v.ports.values() if p.key]
            want = self._desired(keys)
            for vnet, v in self._vnets.items():
                script = render(want.policies.get(vnet, ()))
                if self._applied.get(vnet) != script:
                    network_ns.nft(v.netns, script)
                    self._applied[vnet] = script
            forwards = {f.public_ip: f for f in want.forwards if f.vnet in self._vnets}
            if forwards != self._forwards:
                self._forwards = forwards
                self._apply_forwards()

    def _reconcile_loop(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                self.reconcile()
            except Exception:
                log.exception("VNet reconcile failed; retrying")

    # --- VNets and ports ----------------------------------------------------------------------

    def netns(self, vnet: str) -> str:
        return f"azimg-{self.tag}-{vnet}"

    def ensure_vnet(self, vnet: str) -> str:
        """The VNet's namespace, created with its platform addresses and an empty policy."""
        with self._lock:
            if vnet in self._vnets:
                return self._vnets[vnet].netns
            ns = self.netns(vnet)
            network_ns.delete(ns)  # a predecessor's leftovers
            network_ns.create(ns)
            network_ns.ip(ns, "link", "set", "lo", "up")
            for addr in ("168.63.129.16", "169.254.169.254", INTERNET_SOURCE):
                network_ns.ip(ns, "addr", "add", f"{addr}/32", "dev", "lo")
            for key, value in (
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.conf.default.rp_filter", "0"),
                ("net.ipv4.conf.all.send_redirects", "0"),
                ("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"),
            ):
                network_ns.sysctl(ns, key, value)
            v = _VNet(ns)
            self._vnets[vnet] = v
            network_ns.nft(ns, render([]))
            self._applied[vnet] = render([])
            for (addr, port), service in ENDPOINTS.items():
                listener = network_ns.in_netns(ns, lambda a=addr, p=port: _listen(a, p))
                v.listeners.append(listener)
                threading.Thread(
                    target=self._accept_loop,
                    args=(listener, lambda c, v=v, s=service: self._endpoint_one(v, s, c)),
                    name=f"vnet-{service}",
                    daemon=True,
                ).start()
            return ns

    def add_port(self, vnet: str, port: Port, *, kind: str = "tap") -> str | None:
        """Create ``port`` in the VNet. ``kind="veth"`` (tests): the guest end, named
        ``<ifname>g``, is left in this namespace and its name returned."""
        ns = self.ensure_vnet(vnet)
        with self._lock:
            v = self._vnets[vnet]
            if port.ifname in v.ports:
                self.remove_port(vnet, port.ifname)
            peer = None
            if kind == "tap":
                network_ns.ip(ns, "tuntap", "add", "dev", port.ifname, "mode", "tap")
            else:
                peer = port.ifname + "g"
                network_ns.ip(
                    None, "link", "add", port.ifname, "type", "veth", "peer", "name", peer
                )
                network_ns.ip(None, "link", "set", port.ifname, "netns", ns)
            gateway = port.subnet.network_address + 1
            network_ns.ip(ns, "addr", "add", f"{gateway}/32", "dev", port.ifname)
            network_ns.sysctl(ns, f"net.ipv4.conf.{port.ifname}.proxy_arp", "1")
            network_ns.ip(ns, "link", "set", port.ifname, "up")
            network_ns.ip(ns, "route", "add", f"{port.address}/32", "dev", port.ifname)
            v.ports[port.ifname] = port
            sock = network_ns.in_netns(ns, lambda: network_dhcp.port_socket(port.ifname))
            v.dhcp[port.ifname] = sock
            lease = network_dhcp.Lease(port.mac, port.address, port.subnet, port.domain)
            self._selector.register(sock, selectors.EVENT_READ, lease)
            self._wake_w.send(b"x")
        try:  # the port's NSG is in force before its guest sends a packet
            self.reconcile()
        except Exception:
            log.exception("VNet reconcile failed after adding %s", port.ifname)
        return peer

    def remove_port(self, vnet: str, ifname: str) -> None:
        with self._lock:
            v = self._vnets.get(vnet)
            if v is None or ifname not in v.ports:
                return
            sock = v.dhcp.pop(ifname)
            self._selector.unregister(sock)
            sock.close()
            del v.ports[ifname]
            with contextlib.suppress(network_ns.NetnsError):
                network_ns.ip(v.netns, "link", "delete", ifname)

    def open_tap(self, vnet: str, ifname: str) -> int:
        """A file descriptor on the port's tap for QEMU (``-netdev tap,fd=N``): opened inside
        the VNet's namespace, where the tap lives."""
        return network_ns.in_netns(self._vnets[vnet].netns, lambda: _open_tap(ifname))

    def apply_policies(self, vnet: str, policies: Sequence[PortPolicy]) -> None:
        """Replace the VNet's NSG chains (one nft transaction; open flows survive)."""
        with self._lock:
            script = render(policies)
            network_ns.nft(self._vnets[vnet].netns, script)
            self._applied[vnet] = script

    def delete_vnet(self, vnet: str) -> None:
        with self._lock:
            v = self._vnets.pop(vnet, None)
            self._applied.pop(vnet, None)
            if v is None:
                return
            for sock in v.dhcp.values():
                self._selector.unregister(sock)
                sock.close()
            for listener in v.listeners:
                with contextlib.suppress(OSError):
                    listener.shutdown(socket.SHUT_RDWR)
                listener.close()
            network_ns.delete(v.netns)

    # --- public IPs ---------------------------------------------------------------------------

    def set_forwards(self, forwards: Sequence[Forward]) -> None:
        """All public IPs at once: which address reaches which guest, on which TCP ports."""
        with self._lock:
            self._forwards = {f.public_ip: f for f in forwards}
            self._apply_forwards()

    def _apply_forwards(self) -> None:
        rows = [(f.public_ip, a, b) for f in self._forwards.values() for a, b in f.tcp_ports]
        network_ns.nft(None, render_forwards(self._table, rows, self._proxy.getsockname()[1]))

    def _forward_one(self, client: socket.socket) -> None:
        raw = client.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        port = struct.unpack_from("!H", raw, 2)[0]
        public_ip = socket.inet_ntoa(raw[4:8])
        with self._lock:
            f = self._forwards.get(public_ip)
            v = self._vnets.get(f.vnet) if f else None
        if f is None or v is None:
            _refuse(client)
            return

        def connect() -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((INTERNET_SOURCE, 0))
            s.settimeout(10)
            s.connect((f.private_ip, port))
            s.settimeout(None)
            return s

        try:
            upstream = network_ns.in_netns(v.netns, connect)
        except OSError:
            _refuse(client)
            return
        splice(client, upstream)

    def serve_tcp(self, listener: socket.socket, vnet: str, ip: str, port: int) -> None:
        """Connections to ``listener`` (host side) reach ``ip:port`` in the VNet, from the
        namespace's own address there (a VNet source: ``azimg vm ssh``'s path)."""

        def one(client: socket.socket) -> None:
            with self._lock:
                v = self._vnets.get(vnet)
            if v is None:
                _refuse(client)
                return

            def connect() -> socket.socket:
                return socket.create_connection((ip, port), timeout=10)

            try:
                upstream = network_ns.in_netns(v.netns, connect)
            except OSError:
                _refuse(client)
                return
            upstream.settimeout(None)
            splice(client, upstream)

        threading.Thread(
            target=self._accept_loop, args=(listener, one), name="vnet-ssh", daemon=True
        ).start()

    # --- platform endpoints and DHCP ----------------------------------------------------------

    def _endpoint_one(self, v: _VNet, service: str, client: socket.socket) -> None:
        source = client.getpeername()[0]
        with self._lock:
            port = next((p for p in v.ports.values() if str(p.address) == source), None)
        path = port.endpoints.get(service) if port else None
        if path is None:
            _refuse(client)
            return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(path)
        except OSError:
            upstream.close()
            _refuse(client)
            return
        splice(client, upstream)

    def _accept_loop(
        self, listener: socket.socket, handle: Callable[[socket.socket], None]
    ) -> None:
        while not self._closed.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(client,), daemon=True).start()

    def _dhcp_loop(self) -> None:
        while not self._closed.is_set():
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    self._wake_r.recv(4096)
                    continue
                with contextlib.suppress(OSError):
                    kind = network_dhcp.answer(key.fileobj, key.data)  # type: ignore[arg-type]
                    if kind is not None:
                        self.answered.setdefault(key.data.mac, []).append(kind)

    def close(self) -> None:
        """Every VNet namespace and the host-side table go; guests lose their network."""
        self._closed.set()
        for vnet in list(self._vnets):
            self.delete_vnet(vnet)
        with contextlib.suppress(network_ns.NetnsError):
            network_ns.nft(None, f"table ip {self._table}\ndelete table ip {self._table}\n")
        with contextlib.suppress(OSError):
            self._proxy.shutdown(socket.SHUT_RDWR)
        self._proxy.close()
        self._wake_w.send(b"x")


def _listening_ports() -> set[int]:
    """TCP ports something listens on in this namespace (/proc/net/tcp, state 0A)."""
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _listen(addr: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    return s


TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def _open_tap(ifname: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TAP | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd
