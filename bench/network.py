"""VNet packet layer: TCP throughput and connect latency, side by side with today's relay.

Run (root): .venv/bin/python bench/network.py [--mib 256] [--repeat 3] [--connects 200]

Loopback only and bounded: two stand-in guests (network namespaces that got their addresses
from our DHCP server through the real dhclient, as in tests/e2e/test_fabric_network.py) in
one VNet; nothing leaves the machine. What it measures:
1. guest -> guest throughput at private IPs (routed /32 ports, nftables + conntrack on the way);
2. host -> public IP throughput (127.100.x.y: host nftables redirect, the forwarder, the VNet
   namespace's NSG chains) and
3. its connect latency (connect + first byte, median and p95 over --connects);
4. the peer: today's ``azimg vm ssh`` relay, i.e. vmhost's asyncio splice (``vmhost._splice``)
   serving a host-side socket from inside the guest's network (how vmhost reaches QEMU's
   hostfwd), measured for throughput and connect latency the same way.
The guest's slirp (QEMU user networking) behind today's relay is not included: the peer is
the relay alone, so the ratio isolates what replaces it. Ratios are printed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.test_fabric_network import Guest, _cleanup, _guest

from azimg.fabric.network import Forward, Networks

PUBLIC = "127.100.251.1"
SERVERS = """
import socket, threading
def sink(c):
    n = 0
    buf = bytearray(1 << 20)
    while (k := c.recv_into(buf)):
        n += k
    c.sendall(str(n).encode()); c.close()
def hello(c):
    c.sendall(b"!"); c.close()
def serve(port, fn):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(128)
    while True:
        c, _ = s.accept()
        threading.Thread(target=fn, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(5001, sink), daemon=True).start()
serve(5002, hello)
"""
SEND = """
import socket, sys, time
host, port, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunk = b"x" * (1 << 20)
t = time.perf_counter()
s = socket.create_connection((host, port))
for _ in range(mib):
    s.sendall(chunk)
s.shutdown(socket.SHUT_WR)
got = int(s.recv(64))
assert got == mib << 20, got
print(time.perf_counter() - t)
"""
RELAY = """
import asyncio, socket, sys
from azimg.fabric.vmhost import _splice
ip, port, fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
async def main():
    async def one(r, w):
        await _splice(r, w, lambda: asyncio.open_connection(ip, port))
    server = await asyncio.start_server(one, sock=socket.socket(fileno=fd))
    await server.serve_forever()
asyncio.run(main())
"""


def send_seconds(prefix: list[str], host: str, port: int, mib: int) -> float:
    out = subprocess.run(
        [*prefix, sys.executable, "-c", SEND, host, str(port), str(mib)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return float(out.stdout)


def latencies(host: str, port: int, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        with socket.create_connection((host, port), timeout=10) as s:
            assert s.recv(1) == b"!"
        out.append(time.perf_counter() - t)
    return out


def relay_in(netns: str, ip: str) -> tuple[subprocess.Popen[bytes], int, int]:
    """Today's relay: a host socket served by vmhost's splice from inside ``netns``; one
    listener for the sink port and one for the hello port."""
    procs, ports = [], []
    for port in (5001, 5002):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
        argv = ["ip", "netns", "exec", netns, sys.executable, "-c", RELAY, ip, str(port)]
        procs.append(subprocess.Popen([*argv, str(s.fileno())], pass_fds=(s.fileno(),), env=env))
        ports.append(s.getsockname()[1])
        s.close()
    return procs, ports[0], ports[1]  # type: ignore[return-value]


def mbps(mib: int, seconds: float) -> float:
    return mib * 1.048576 * 8 / seconds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connects", type=int, default=200)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/network.py needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    print(f"load average before: {os.getloadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-net-"))
    nets = Networks(f"b{os.getpid() % 100000}")
    guests: list[Guest] = []
    relays: list[subprocess.Popen[bytes]] = []
    try:
        g1 = _guest(nets, "vbench", "b1", "10.0.0.4", tmp)
        guests.append(g1)
        g2 = _guest(nets, "vbench", "b2", "10.0.0.5", tmp)
        guests.append(g2)
        servers = subprocess.Popen(["ip", "netns", "exec", g2.netns, sys.executable, "-c", SERVERS])
        g2.procs.append(servers)
        nets.set_forwards([Forward(PUBLIC, "vbench", "10.0.0.5", ((5001, 5002),))])
        relays, relay_sink, relay_hello = relay_in(g2.netns, "127.0.0.1")
        time.sleep(1.0)
        runs: dict[str, list[float]] = {"guest->guest": [], "host->public IP": [], "relay": []}
        for _ in range(args.repeat):
            prefix = ["ip", "netns", "exec", g1.netns]
            runs["guest->guest"].append(send_seconds(prefix, "10.0.0.5", 5001, args.mib))
            runs["host->public IP"].append(send_seconds([], PUBLIC, 5001, args.mib))
            runs["relay"].append(send_seconds([], "127.0.0.1", relay_sink, args.mib))
        print(f"\nTCP throughput, {args.mib} MiB x {args.repeat} (best run, Mbit/s):")
        best = {k: mbps(args.mib, min(v)) for k, v in runs.items()}
        for k, v in best.items():
            print(f"  {k:<34} {v:10.0f}")
        print(
            f"  public IP / today's relay          {best['host->public IP'] / best['relay']:10.2f}x"
        )
        lat_pub = latencies(PUBLIC, 5002, args.connects)
        lat_relay = latencies("127.0.0.1", relay_hello, args.connects)
        print(f"\nconnect + first byte, {args.connects} connections (ms):")
        for name, lat in (("public IP (forwarder)", lat_pub), ("today's relay", lat_relay)):
            q = statistics.quantiles(lat, n=20)
            print(
                f"  {name:<34} median {statistics.median(lat) * 1e3:6.2f}  p95 {q[18] * 1e3:6.2f}"
            )
        ratio = statistics.median(lat_pub) / statistics.median(lat_relay)
        print(f"  public IP / today's relay (median) {ratio:6.2f}x")
    finally:
        for p in relays:
            p.kill()
            p.wait()
        _cleanup(guests, tmp)
        nets.close()
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
