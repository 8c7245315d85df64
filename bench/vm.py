"""VM creation: API latency for a 4 GiB and a 32 GiB gallery version, and boot to Ready.

Run: .venv/bin/python bench/vm.py [--repeat 3] [--image4 X.vhd --image32 Y.vhd]

What it measures, through the real Azure SDK against a real `azimg serve`:
1. create-API latency: the time of ``begin_create_or_update`` returning (the PUT's 201) for
   VMs from a 4 GiB and a 32 GiB version, ``--repeat`` times each. The OS disk is a qcow2
   clone, so this must not grow with the version's size. Each VM is deleted right away.
   The peer is what a copying platform would pay instead: a sparse-aware full copy of the
   same version's bytes (``cp --reflink=never --sparse=always`` + sync), timed side by side;
   the ratio is printed.
2. seconds from create to OSProvisioningComplete (cloud-init's Ready) and to Succeeded, for
   one VM from the 4 GiB version (TCG; depends heavily on machine load).
Images are built with `azimg build debian` (Gen1, cloud-init) unless given. Timings on a
shared 2-core machine are noisy; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.api.conftest import PlatformServer, free_port
from tests.e2e.test_vm import LOCATION, publish_version, vm_body


def build(out: Path, size: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", "build", "debian", "-o", str(out),
         "--generation", "1", "--agent", "cloud-init", "--size", size],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return out


def replica_path(server: PlatformServer, version_id: str) -> Path:
    """The version's replica file in LOCATION (the largest blob whose name marks a version)."""
    files = [p for p in (server.data_dir / "blobs" / LOCATION).glob("v-*-os")]
    return max(files, key=lambda p: p.stat().st_mtime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image4", type=Path)
    parser.add_argument("--image32", type=Path)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="azimg-bench-vm-", dir=args.dir))
    print(f"load average before: {os.getloadavg()}")
    images = {
        "4 GiB": args.image4 or build(work / "img4.vhd", "4G"),
        "32 GiB": args.image32 or build(work / "img32.vhd", "32G"),
    }
    server = PlatformServer(data_dir=work / "data", port=free_port(), regions="eastus")
    server.data_dir.mkdir()
    server.start()
    os.environ["REQUESTS_CA_BUNDLE"] = server.ca_bundle
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    try:
        compute = server.compute_client()
        group = "rg-bench"
        server.resource_client().resource_groups.create_or_update(group, {"location": LOCATION})
        rows = []
        boot_version = ""
        for label, vhd in images.items():
            version = publish_version(compute, group, vhd, generation="V1")
            replica = replica_path(server, version)
            ours, peer = [], []
            for i in range(args.repeat):
                name = f"bench-{label.split()[0]}-{i}"
                started = time.perf_counter()
                compute.virtual_machines.begin_create_or_update(
                    group, name, vm_body(version, name, "opsadmin", key)
                )
                ours.append(time.perf_counter() - started)
                compute.virtual_machines.begin_delete(group, name).result()
                copy = work / f"copy-{uuid.uuid4().hex}"
                started = time.perf_counter()
                subprocess.run(
                    ["cp", "--reflink=never", "--sparse=always", str(replica), str(copy)],
                    check=True,
                )
                subprocess.run(["sync", str(copy)], check=True)  # a copy is done when on disk
                peer.append(time.perf_counter() - started)
                copy.unlink()
            rows.append((label, statistics.median(ours), statistics.median(peer)))
            if label == "4 GiB":
                boot_version = version
        print()
        print(f"{'version':<8} {'create API (median)':>20} {'full copy (peer)':>18} {'ratio':>8}")
        for label, ours_s, peer_s in rows:
            print(f"{label:<8} {ours_s * 1000:>17.0f} ms {peer_s * 1000:>15.0f} ms "
                  f"{peer_s / ours_s:>7.1f}x")  # fmt: skip
        growth = rows[1][1] / rows[0][1]
        print(f"create API latency 32 GiB / 4 GiB: {growth:.2f}x (constant time means ~1x)")
        started = time.perf_counter()
        poller = compute.virtual_machines.begin_create_or_update(
            group, "bench-boot", vm_body(boot_version, "bench-boot", "opsadmin", key)
        )
        complete_at = None
        while not poller.done():
            view = compute.virtual_machines.instance_view(group, "bench-boot")
            codes = [s.code for s in view.statuses or []]
            if complete_at is None and any("OSProvisioningComplete" in c for c in codes):
                complete_at = time.perf_counter() - started
            poller.wait(1)
        poller.result()
        succeeded_at = time.perf_counter() - started
        print(f"create → OSProvisioningComplete: {complete_at or succeeded_at:.1f} s; "
              f"→ Succeeded: {succeeded_at:.1f} s (TCG, Standard_B2s)")  # fmt: skip
        compute.virtual_machines.begin_delete(group, "bench-boot").result()
    finally:
        server.stop()
        print(f"load average after: {os.getloadavg()}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
