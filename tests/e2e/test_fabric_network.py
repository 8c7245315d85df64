"""The VNet packet layer on a real kernel network, with plain network namespaces standing in
for guests (each gets its address from our DHCP server through the real ISC dhclient).

Needs root (CAP_NET_ADMIN), nftables and dhclient, as the platform does; no VM is booted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from azimg.fabric.network import Desired, Forward, Networks, NicPlug, Port, port_name
from azimg.fabric.network_dhcp import OFFER
from azimg.fabric.network_nft import Match, PortPolicy, render_forwards
from azimg.fabric.supervisor import Supervisor
from tests.e2e.test_fabric_host import Events, make_spec

SUBNET = IPv4Network("10.0.0.0/24")
PUBLIC = "127.100.250.1"
ECHO = """
import socket, socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"hello from " + sys.argv[1].encode() + b"\\n")
        for line in self.rfile:
            self.wfile.write(line)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("0.0.0.0", 22), H).serve_forever()
"""


@dataclass
class Guest:
    name: str
    netns: str
    port: Port
    procs: list[subprocess.Popen[bytes]]

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def connect(self, ip: str, port: int = 22, timeout: float = 3) -> str:
        """What the peer says first, or the error's class name."""
        code = (
            "import socket,sys\n"
            "try:\n"
            f"  s=socket.create_connection(('{ip}',{port}),timeout={timeout})\n"
            "  print(s.recv(100).decode().strip())\n"
            "except Exception as e:\n"
            "  print(type(e).__name__)\n"
        )
        return self.run(sys.executable, "-c", code).stdout.strip()


def _guest(nets: Networks, vnet: str, name: str, address: str, tmp: Path, **kw: object) -> Guest:
    mac = "00:0d:3a:00:00:" + address.rsplit(".", 1)[1].rjust(2, "0")[-2:]
    port = Port(port_name(f"{vnet}/{name}"), mac, IPv4Address(address), SUBNET, **kw)  # type: ignore[arg-type]
    peer = nets.add_port(vnet, port, kind="veth")
    assert peer is not None
    ns = f"g-{name}-{os.getpid()}"
    subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    etc = Path("/etc/netns") / ns  # dhclient-script writes resolv.conf: keep the host's intact
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text("")
    subprocess.run(["ip", "link", "set", peer, "netns", ns], check=True)
    for args in (
        ["link", "set", peer, "name", "eth0"],
        ["link", "set", "eth0", "address", mac],
        ["link", "set", "eth0", "up"],
        ["link", "set", "lo", "up"],
    ):
        subprocess.run(["ip", "-n", ns, *args], check=True)
    g = Guest(name, ns, port, [])
    lease = tmp / f"{name}.leases"
    out = g.run(
        "dhclient", "-1", "-v", "-lf", str(lease), "-pf", str(tmp / f"{name}.pid"), "eth0",
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    echo = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", ECHO, name])
    g.procs.append(echo)
    for _ in range(100):  # the echo server is up when it answers on its own loopback
        if g.connect("127.0.0.1").startswith("hello"):
            break
        time.sleep(0.1)
    return g


def _cleanup(guests: list[Guest], tmp: Path) -> None:
    for g in guests:
        for p in g.procs:
            p.kill()
            p.wait()
        pidfile = tmp / f"{g.name}.pid"
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text().strip()), 9)
        subprocess.run(["ip", "netns", "delete", g.netns], check=False)
        shutil.rmtree(Path("/etc/netns") / g.netns, ignore_errors=True)


class _Wire(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    assert os.geteuid() == 0, "VNets need root (CAP_NET_ADMIN), as the platform does"
    for tool in ("nft", "dhclient"):
        assert shutil.which(tool), f"{tool} is missing (setup.sh installs it)"
    tmp = tmp_path_factory.mktemp("vnet")
    sock = tmp / "g1-wireserver.sock"

    class Reply(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"wireserver for g1\n")

    wire = _Wire(str(sock), Reply)
    threading.Thread(target=wire.serve_forever, daemon=True).start()
    nets = Networks(f"t{os.getpid() % 100000}")
    guests: list[Guest] = []
    try:
        g1 = _guest(nets, "va", "g1", "10.0.0.4", tmp, endpoints={"wireserver": str(sock)})
        guests.append(g1)
        g2 = _guest(nets, "va", "g2", "10.0.0.5", tmp)
        guests.append(g2)
        g3 = _guest(nets, "vb", "g3", "10.0.0.4", tmp)  # same addresses, another VNet
        guests.append(g3)
        yield {"nets": nets, "g1": g1, "g2": g2, "g3": g3, "tmp": tmp}
    finally:
        _cleanup(guests, tmp)
        nets.close()
        wire.shutdown()
        wire.server_close()


def test_dhcp_gives_the_nic_address_gateway_and_azure_routes(lab: dict[str, object]) -> None:
    g1 = lab["g1"]
    assert isinstance(g1, Guest)
    addr = g1.run("ip", "-4", "addr", "show", "eth0").stdout
    assert "inet 10.0.0.4/24" in addr
    routes = g1.run("ip", "route").stdout
    assert "default via 10.0.0.1" in routes
    assert "168.63.129.16 via 10.0.0.1" in routes
    assert "169.254.169.254 via 10.0.0.1" in routes
    # waagent's route test: a /proc/net/route line containing 168.63.129.16 (10813FA8)
    assert "10813FA8" in g1.run("cat", "/proc/net/route").stdout
    lease = (lab["tmp"] / "g1.leases").read_text()  # type: ignore[operator]
    assert "option unknown-245 a8:3f:81:10;" in lease
    assert "option dhcp-server-identifier 168.63.129.16;" in lease


def test_guests_in_one_vnet_reach_each_other_by_private_ip(lab: dict[str, object]) -> None:
    g1, g2 = lab["g1"], lab["g2"]
    assert isinstance(g1, Guest) and isinstance(g2, Guest)
    assert g1.connect("10.0.0.5") == "hello from g2"
    assert g2.connect("10.0.0.4") == "hello from g1"
    ping = g1.run("ping", "-c", "1", "-W", "2", "10.0.0.5")
    assert ping.returncode == 0, ping.stdout


def test_another_vnet_is_invisible_and_nothing_leaves(lab: dict[str, object]) -> None:
    g3 = lab["g3"]
    assert isinstance(g3, Guest)
    # vb has the same address space; 10.0.0.5 exists only in va
    assert g3.connect("10.0.0.5") != "hello from g2"
    assert g3.connect("10.0.0.4") == "hello from g3"  # its own address, in its own VNet
    assert not g3.connect("192.0.2.1", 80).startswith("hello")
    assert g3.run("ping", "-c", "1", "-W", "2", "192.0.2.1").returncode != 0


def test_wireserver_reaches_the_socket_of_the_guest_that_asked(lab: dict[str, object]) -> None:
    g1, g2 = lab["g1"], lab["g2"]
    assert isinstance(g1, Guest) and isinstance(g2, Guest)
    assert g1.connect("168.63.129.16", 80) == "wireserver for g1"
    assert g2.connect("168.63.129.16", 80) in ("", "ConnectionResetError")  # no VM behind g2


def _host_connect(ip: str, port: int = 22, timeout: float = 15) -> str:
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
            return s.recv(100).decode().strip() or "closed"
    except OSError as err:
        return type(err).__name__


def test_public_ip_forwards_allowed_ports_only(lab: dict[str, object]) -> None:
    nets = lab["nets"]
    assert isinstance(nets, Networks)
    nets.set_forwards([Forward(PUBLIC, "va", "10.0.0.5", ((22, 22),))])
    assert _host_connect(PUBLIC) == "hello from g2"
    assert _host_connect(PUBLIC, 23) == "ConnectionRefusedError"
    nets.set_forwards([Forward(PUBLIC, "va", "10.0.0.5", ())])
    assert _host_connect(PUBLIC) == "ConnectionRefusedError"
    nets.set_forwards([])


def test_nsg_chains_filter_between_guests_and_keep_open_flows(lab: dict[str, object]) -> None:
    nets, g1, g2 = lab["nets"], lab["g1"], lab["g2"]
    assert isinstance(nets, Networks) and isinstance(g1, Guest) and isinstance(g2, Guest)
    nets.set_forwards([Forward(PUBLIC, "va", "10.0.0.5", ((22, 22),))])
    open_flow = socket.create_connection((PUBLIC, 22), timeout=10)
    assert open_flow.recv(100).startswith(b"hello from g2")
    deny_ssh = PortPolicy(
        g2.port.ifname,
        "10.0.0.5",
        inbound=((Match(False, "tcp", destination_ports=((22, 22),)), Match(True)),),
    )
    try:
        nets.apply_policies("va", [deny_ssh])
        assert g1.connect("10.0.0.5", timeout=2) == "TimeoutError"  # dropped, as on Azure
        open_flow.sendall(b"still here\n")  # established flows survive a rule change
        assert open_flow.recv(100) == b"still here\n"
        nets.apply_policies("va", [])
        assert g1.connect("10.0.0.5") == "hello from g2"
    finally:
        open_flow.close()
        nets.apply_policies("va", [])
        nets.set_forwards([])


def test_a_port_may_not_send_from_a_foreign_address(lab: dict[str, object]) -> None:
    g1 = lab["g1"]
    assert isinstance(g1, Guest)
    g1.run("ip", "addr", "add", "10.0.0.9/24", "dev", "eth0")
    try:
        code = (
            "import socket\n"
            "s=socket.socket(); s.bind(('10.0.0.9',0)); s.settimeout(2)\n"
            "try:\n  s.connect(('10.0.0.5',22)); print('connected')\n"
            "except Exception as e: print(type(e).__name__)\n"
        )
        assert g1.run(sys.executable, "-c", code).stdout.strip() == "TimeoutError"
    finally:
        g1.run("ip", "addr", "del", "10.0.0.9/24", "dev", "eth0")


def test_a_vm_on_a_vnet_nic_asks_our_dhcp_through_its_tap(tmp_path: Path) -> None:
    """Real QEMU, no guest OS: SeaBIOS finds no boot disk and iPXE (the virtio-net option
    ROM) asks for an address with the NIC's MAC through the tap QEMU got as a descriptor."""
    assert os.geteuid() == 0, "VNets need root (CAP_NET_ADMIN), as the platform does"
    nets = Networks(f"q{os.getpid() % 100000}")
    sup = Supervisor(tmp_path / "run", Events(), networks=nets)
    port = Port(port_name("vq/vm"), "00:0d:3a:00:00:42", IPv4Address("10.0.0.4"), SUBNET)
    try:
        spec = make_spec(tmp_path, "vm-tap", timeout=600)
        spec = replace(spec, provisioning=None, nics=(NicPlug("vq", port),))
        sup.start(spec)
        deadline = time.monotonic() + 300
        while dhcp_offer_missing(nets, port.mac) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not dhcp_offer_missing(nets, port.mac), "no DHCP DISCOVER from the VM's MAC"
        link = subprocess.run(
            ["ip", "-n", nets.netns("vq"), "link", "show", port.ifname],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "LOWER_UP" in link  # QEMU holds the tap
        cmdline = (tmp_path / "run" / "vm-tap" / "vmhost.json").read_text()
        assert "tap,id=n0,fd=" in cmdline and "mac=00:0d:3a:00:00:42" in cmdline
        assert "user,id=n0" not in cmdline  # no slirp for a VNet NIC
        sup.stop("vm-tap")
        gone = subprocess.run(
            ["ip", "-n", nets.netns("vq"), "link", "show", port.ifname],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert gone.returncode != 0  # the port went with the VM
    finally:
        sup.close()
        nets.close()


def dhcp_offer_missing(nets: Networks, mac: str) -> bool:
    return OFFER not in nets.answered.get(mac, [])


def test_reconcile_applies_what_the_owner_wants_within_a_second(tmp_path: Path) -> None:
    """The owner changes its mind (an NSG PUT); the loop brings the packets in line."""
    assert os.geteuid() == 0, "VNets need root (CAP_NET_ADMIN), as the platform does"
    state: dict[str, Desired] = {}
    nets = Networks(
        f"r{os.getpid() % 100000}",
        desired=lambda keys: state.get("now", Desired({}, [])),
        interval=0.2,
    )
    guests: list[Guest] = []
    try:
        a = _guest(nets, "vr", "ra", "10.0.0.4", tmp_path)
        guests.append(a)
        b = _guest(nets, "vr", "rb", "10.0.0.5", tmp_path)
        guests.append(b)
        assert a.connect("10.0.0.5") == "hello from rb"
        deny = PortPolicy(
            b.port.ifname,
            "10.0.0.5",
            inbound=((Match(False, "tcp", destination_ports=((22, 22),)), Match(True)),),
        )
        state["now"] = Desired({"vr": [deny]}, [Forward(PUBLIC, "vr", "10.0.0.5", ((22, 22),))])
        deadline = time.monotonic() + 5
        while a.connect("10.0.0.5", timeout=0.5) != "TimeoutError":
            assert time.monotonic() < deadline, "the deny did not arrive"
        assert _host_connect(PUBLIC) in ("ConnectionResetError", "closed")  # forwarder refused
        state["now"] = Desired({}, [])
        deadline = time.monotonic() + 5
        while a.connect("10.0.0.5") != "hello from rb":
            assert time.monotonic() < deadline, "the allow did not come back"
        assert _host_connect(PUBLIC) == "ConnectionRefusedError"
    finally:
        _cleanup(guests, tmp_path)
        nets.close()


def test_a_new_owner_reaps_what_a_killed_one_left() -> None:
    tag = f"k{os.getpid() % 100000}"
    first = Networks(tag)
    ns = first.ensure_vnet("left")
    # a forwarder table whose owner died (its proxy port no longer listens)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    stale = render_forwards("azimg_pip_dead", [("127.100.9.9", 22, 22)], port)
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=stale)
    # killed: no close(); a successor with the same tag starts
    second = Networks(tag)
    try:
        assert not (Path("/run/netns") / ns).exists()
        tables = subprocess.run(
            ["nft", "list", "tables"], capture_output=True, text=True, check=True
        ).stdout
        assert "azimg_pip_dead" not in tables
        assert f"azimg_pip_{tag}" in tables  # its own, and live others', stay
    finally:
        second.close()
