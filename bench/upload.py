"""Side by side: azimg's upload vs the SDK's plain way, BlobClient.upload_blob(PageBlob).

    .venv/bin/python bench/upload.py [--size-gib 8] [--data-gib 1] [--dir /var/tmp]

The image: a fixed VHD of ``--size-gib`` with ``--data-gib`` of random data in 4 MiB pieces
spread over it (the rest is holes), as a real OS disk mostly is.

1. **The whole command** — ``azimg upload`` (in-process ``uploader.upload``) into a fresh
   ``azimg serve``: create, check skipped (random data has no OS), Put Pages, revoke. Bytes
   sent against the allocated bytes (goal: at most 1.05 times), seconds, MiB/s of data at 1
   and 4 threads.
2. **The same page blob, two clients** — Azurite (the Azure Storage emulator, setup.sh installs
   it) holds a page blob of the VHD's size; azimg's Put Page engine (SEEK_DATA ranges, zero
   chunks skipped) and ``BlobClient.upload_blob(f, blob_type="PageBlob")`` (reads the whole
   file; the SDK skips empty pages itself) each fill it, at 1 and 4 threads
   (``max_concurrency``). The managed-disk SAS of azimg (like Azure's) serves Put Page only, so
   upload_blob — which starts with Put Blob — cannot target it; that is why the peer runs
   against Azurite, and ours does too for the ratio.

Timings on a shared 2-core machine are noisy; the load average is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api import AZURITE, DEV_KEY, free_port, start_azimg  # noqa: E402  (bench/api.py)
from azimg.cli import uploader  # noqa: E402
from azimg.disk.convert import make_fixed_in_place  # noqa: E402
from convert import fill_sparse  # noqa: E402  (bench/convert.py)

MIB = 1 << 20
GIB = 1 << 30


def make_image(path: Path, size: int, data: int) -> None:
    fill_sparse(path, size, data)
    make_fixed_in_place(path)


def start_serve(work: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    data, port = work / "platform", free_port()
    data.mkdir()
    proc, info = start_azimg(data, port)
    os.environ["REQUESTS_CA_BUNDLE"] = info["REQUESTS_CA_BUNDLE"]
    return proc, {**info, "data_dir": str(data), "port": str(port)}


def start_azurite(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--silent"]
    cmd += ["--location", str(work / "azurite"), "--disableTelemetry", "--skipApiVersionCheck"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    return proc, f"http://127.0.0.1:{port}/devstoreaccount1"


def whole_command(info: dict[str, str], image: Path, threads: int, name: str) -> dict[str, Any]:
    from azure.identity import ClientSecretCredential
    from azure.mgmt.resource.resources import ResourceManagementClient

    from azimg.cli.arm_client import connect

    conn = connect(Path(info["data_dir"]), int(info["port"]))
    cred = ClientSecretCredential(
        conn.tenant_id,
        conn.client_id,
        conn.client_secret,
        authority=conn.authority,
        disable_instance_discovery=True,
    )
    rm = ResourceManagementClient(
        cred, conn.subscription_id, base_url=conn.arm_endpoint, credential_scopes=[conn.scope]
    )
    rm.resource_groups.create_or_update("bench", {"location": "eastus"})
    r = uploader.upload(
        conn,
        image,
        resource_group="bench",
        name=name,
        threads=threads,
        hyper_v_generation="V2",
        checked=False,
    )
    return {"seconds": r.seconds, "sent": r.bytes_sent, "allocated": r.allocated}


def page_blob(account: str, name: str, size: int) -> str:
    from azure.storage.blob import (
        BlobSasPermissions,
        BlobServiceClient,
        generate_blob_sas,
    )

    svc = BlobServiceClient(
        account, credential={"account_name": "devstoreaccount1", "account_key": DEV_KEY}
    )
    container = svc.get_container_client("bench")
    if not container.exists():
        container.create_container()
    blob = container.get_blob_client(name)
    blob.create_page_blob(size)
    sas = generate_blob_sas(
        "devstoreaccount1",
        "bench",
        name,
        account_key=DEV_KEY,
        permission=BlobSasPermissions(read=True, write=True, create=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2),
    )
    return f"{account}/bench/{name}?{sas}"


def ours_engine(sas: str, image: Path, threads: int) -> tuple[float, int]:
    with uploader.open_source(image) as src:
        pieces = uploader.chunks(src.runs, src.data_size)
        t0 = time.perf_counter()
        sent = uploader.put_pages(
            sas, src.path, pieces, src.footer, src.data_size, threads, lambda _n: None
        )
        return time.perf_counter() - t0, sent


def sdk_upload_blob(sas: str, image: Path, threads: int) -> float:
    from azure.storage.blob import BlobClient

    client = BlobClient.from_blob_url(sas)
    t0 = time.perf_counter()
    with open(image, "rb") as fh:
        client.upload_blob(
            fh,
            blob_type="PageBlob",
            length=image.stat().st_size,
            overwrite=True,
            max_concurrency=threads,
        )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-gib", type=int, default=8)
    ap.add_argument("--data-gib", type=float, default=1.0)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="azimg-bench-up-", dir=args.dir))
    procs: list[subprocess.Popen[Any]] = []
    try:
        image = work / "disk.vhd"
        data = int(args.data_gib * GIB)
        make_image(image, args.size_gib * GIB, data)
        print(
            f"image: {args.size_gib} GiB fixed VHD, {data / GIB:.2f} GiB of data; "
            f"load {os.getloadavg()[0]:.1f}"
        )
        serve, info = start_serve(work)
        procs.append(serve)
        print("\n1. azimg upload into azimg serve (create, Put Pages, revoke)")
        for threads in (1, 4):
            r = whole_command(info, image, threads, f"d{threads}")
            ratio = r["sent"] / r["allocated"]
            print(
                f"  threads {threads}: {r['seconds']:.2f} s, sent {r['sent'] / MIB:.1f} MiB "
                f"= {ratio:.3f}x allocated, {data / MIB / r['seconds']:.1f} MiB/s of data"
            )
        azurite, account = start_azurite(work)
        procs.append(azurite)
        print("\n2. the same page blob in Azurite: azimg's engine vs BlobClient.upload_blob")
        print(f"  {'threads':>7} {'azimg s':>9} {'upload_blob s':>14} {'ratio':>7}  azimg MiB/s")
        size = image.stat().st_size
        for threads in (1, 4):
            ours_s, _sent = ours_engine(page_blob(account, f"a{threads}", size), image, threads)
            try:
                peer_s: float | None = sdk_upload_blob(
                    page_blob(account, f"p{threads}", size), image, threads
                )
                why = ""
            except Exception as err:  # the peer's failure is reported, not raised
                peer_s, why = None, f"{type(err).__name__}: {str(err).splitlines()[0]}"
            rate = data / MIB / ours_s
            if peer_s is None:
                print(f"  {threads:>7} {ours_s:>9.2f} peer failed: {why}   {rate:.1f}")
            else:
                print(
                    f"  {threads:>7} {ours_s:>9.2f} {peer_s:>14.2f} "
                    f"{peer_s / ours_s:>6.1f}x  {rate:.1f}"
                )
        print(f"\nload {os.getloadavg()[0]:.1f}; ratio = upload_blob time / azimg time")
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
