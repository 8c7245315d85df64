"""azimg serve under load: ARM GET throughput and p99 latency, and SAS upload vs Azurite.

Run: .venv/bin/python bench/api.py [--seconds 8] [--upload-mib 256]

1. GET: a disk GET (token check + one SQLite read + JSON) over HTTPS keep-alive connections,
   1 and 50 concurrent clients. The load generator is a separate process (a small asyncio
   HTTP/1.1 client, so the client's cost stays small next to the server's); it reports
   requests/s and the 50th/99th latency percentiles. One real-SDK run (``compute.disks.get``,
   1 client) is printed for scale: that is what a user's script sees.
2. Upload: the same azure-storage-blob ``BlobClient.upload_page`` calls (4 MiB pages, random
   data) to our SAS endpoint and to Azurite (npm ``azurite``, installed by setup.sh, over
   HTTPS with our certificate so TLS costs the same), 1 and 4 threads, interleaved runs;
   MiB/s and the ratio ours/Azurite.

Goals (issue 5): ≥ 1000 GET/s, p99 < 50 ms at 50 clients, upload ≥ Azurite. Both servers and
the load share this machine's cores: numbers on a busy 2-core box are noisy, so the load
average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
PAGE = 4 * MIB
ROOT = Path(__file__).resolve().parent.parent
AZURITE = ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start_azimg(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    cmd = [sys.executable, "-m", "azimg.cli.main", "serve", "--data-dir", str(data_dir)]
    cmd += ["--port", str(port), "-o", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines = []
    while (line := proc.stdout.readline()) and line.rstrip() != "}":
        lines.append(line)
    info = json.loads("".join([*lines, "}"]))
    wait_port(port, time.monotonic() + 30)
    return proc, info


# --- GET load ----------------------------------------------------------------------------------


async def _client(
    host: str, port: int, ctx: ssl.SSLContext, request: bytes, stop_at: float, out: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        writer.write(request)
        length = 0
        status = await reader.readline()
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected answer {status!r}")
        out.append(time.perf_counter() - t0)
    writer.close()


def _load(args: tuple[str, int, str, str, str, int, float], queue: Any) -> None:
    host, port, ca, path, token, clients, seconds = args
    ctx = ssl.create_default_context(cafile=ca)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    latencies: list[float] = []

    async def main() -> float:
        # warm-up: open the connections and do one request each before timing
        warm: list[float] = []
        await asyncio.gather(
            *(
                _client(host, port, ctx, request, time.monotonic() + 0.3, warm)
                for _ in range(clients)
            )
        )
        start = time.monotonic()
        await asyncio.gather(
            *(_client(host, port, ctx, request, start + seconds, latencies) for _ in range(clients))
        )
        return time.monotonic() - start

    import uvloop  # the same loop as the server: the client's share of the CPU stays small

    elapsed = uvloop.run(main())
    queue.put((len(latencies) / elapsed, latencies))


def get_load(
    host: str, port: int, ca: str, path: str, token: str, clients: int, seconds: float
) -> tuple[float, float, float]:
    queue: Any = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(
        target=_load, args=((host, port, ca, path, token, clients, seconds), queue)
    )
    proc.start()
    rate, lat = queue.get(timeout=seconds + 60)
    proc.join()
    lat.sort()
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    return rate, p50, p99


# --- upload ------------------------------------------------------------------------------------


def upload(client: Any, data: bytes, threads: int) -> float:
    """MiB/s for writing ``data`` in 4 MiB Put Page calls with ``threads`` in parallel."""
    offsets = range(0, len(data), PAGE)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(
            pool.map(
                lambda off: client.upload_page(data[off : off + PAGE], offset=off, length=PAGE),
                offsets,
            )
        )
    return len(data) / MIB / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds per GET load run")
    ap.add_argument("--upload-mib", type=int, default=256, help="MiB per upload run")
    ap.add_argument("--repeat", type=int, default=2, help="upload runs per server and mode")
    args = ap.parse_args()
    if not AZURITE.exists():
        sys.exit(f"{AZURITE} is missing: run ./setup.sh")
    print(f"load average before: {os.getloadavg()[0]:.2f}  (cores: {os.cpu_count()})")

    work = Path(tempfile.mkdtemp(prefix="azimg-bench-"))
    port = free_port()
    proc, info = start_azimg(work / "azimg", port)
    azurite: subprocess.Popen[bytes] | None = None
    try:
        os.environ["REQUESTS_CA_BUNDLE"] = info["REQUESTS_CA_BUNDLE"]
        from azure.identity import ClientSecretCredential
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.resource.resources import ResourceManagementClient
        from azure.storage.blob import BlobClient, BlobServiceClient

        cred = ClientSecretCredential(
            info["AZURE_TENANT_ID"],
            info["AZURE_CLIENT_ID"],
            info["AZURE_CLIENT_SECRET"],
            authority=info["AZIMG_ARM_ENDPOINT"],
            disable_instance_discovery=True,
        )
        scope = [info["AZIMG_ARM_SCOPE"]]
        base = info["AZIMG_ARM_ENDPOINT"]
        sub = info["AZURE_SUBSCRIPTION_ID"]
        rm = ResourceManagementClient(cred, sub, base_url=base, credential_scopes=scope)
        compute = ComputeManagementClient(cred, sub, base_url=base, credential_scopes=scope)
        rm.resource_groups.create_or_update("bench", {"location": "eastus"})
        size = args.upload_mib * MIB
        compute.disks.begin_create_or_update(
            "bench",
            "d",
            {
                "location": "eastus",
                "properties": {
                    "creationData": {"createOption": "Upload", "uploadSizeBytes": size + 512}
                },
            },
        ).result()
        token = cred.get_token(scope[0]).token
        path = (
            f"/subscriptions/{sub}/resourceGroups/bench/providers/Microsoft.Compute/disks/d"
            "?api-version=2026-03-02"
        )

        print("\nARM GET (disk), HTTPS keep-alive, load from a separate process")
        print(f"{'clients':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for clients in (1, 50):
            rate, p50, p99 = get_load(
                "127.0.0.1", port, info["REQUESTS_CA_BUNDLE"], path, token, clients, args.seconds
            )
            print(f"{clients:>8} {rate:>9.0f} {p50:>8.1f} {p99:>8.1f}")
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < 3:
            compute.disks.get("bench", "d")
            n += 1
        print(f"real SDK compute.disks.get, 1 client: {n / (time.perf_counter() - t0):.0f} req/s")

        # --- upload: ours vs Azurite -----------------------------------------------------------
        sas = compute.disks.begin_grant_access(
            "bench", "d", {"access": "Write", "durationInSeconds": 3600}
        ).result()
        ours = BlobClient.from_blob_url(sas.access_sas)
        az_port = free_port()
        az_dir = work / "azurite"
        az_dir.mkdir()
        tls_dir = Path(info["AZIMG_CA_CERT"]).parent
        az_cmd = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(az_port)]
        az_cmd += ["--location", str(az_dir), "--silent", "--disableTelemetry"]
        az_cmd += ["--skipApiVersionCheck", "--cert", str(tls_dir / "server.pem")]
        az_cmd += ["--key", str(tls_dir / "server.key")]
        azurite = subprocess.Popen(
            az_cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(az_port, time.monotonic() + 60)
        service = BlobServiceClient(
            f"https://127.0.0.1:{az_port}/{DEV_ACCOUNT}",
            credential={"account_name": DEV_ACCOUNT, "account_key": DEV_KEY},
        )
        service.create_container("bench")
        theirs = service.get_blob_client("bench", "d.vhd")
        theirs.create_page_blob(size + 512)

        data = os.urandom(size)
        print(f"\nupload {args.upload_mib} MiB, BlobClient.upload_page, 4 MiB pages (MiB/s)")
        print(f"{'threads':>8} {'azimg':>8} {'azurite':>8} {'ratio':>6}")
        for threads in (1, 4):
            mine, peer = [], []
            for _ in range(args.repeat):
                mine.append(upload(ours, data, threads))
                peer.append(upload(theirs, data, threads))
            a, b = statistics.median(mine), statistics.median(peer)
            print(f"{threads:>8} {a:>8.0f} {b:>8.0f} {a / b:>6.2f}")
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    finally:
        if azurite is not None:
            os.killpg(azurite.pid, signal.SIGTERM)
            azurite.wait(10)
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
