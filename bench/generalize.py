"""Side by side: `azimg generalize` vs libguestfs `virt-sysprep`, same operations, same image.

    .venv/bin/python bench/generalize.py [--image IMAGE.vhd] [--size 4G] [--runs 3]

Without ``--image`` it builds one (``azimg build debian``, bootstrap cache reused). Each run
starts from the same bytes: virt-sysprep edits a fresh sparse copy in place (the copy is made
before its clock starts); azimg writes ``-o OUT`` (its copy is inside its clock — the honest
whole-command figure). Both run as fresh processes, as a user types them.

virt-sysprep gets the operations that match ours (``ssh-hostkeys, machine-id,
dhcp-client-state, bash-history, tmp-files, udev-persistent-net, logfiles, user-account``) plus
``--delete`` of what it has no operation for (cloud-init state, waagent state, resolv.conf,
random seed) and ``--hostname localhost.localdomain``. The appliance runs under TCG
(``force_tcg``: nested KVM hangs here); a host without a kernel lends supermin the Debian kernel
from azimg's bootstrap cache (``bench/check.py``). If virt-sysprep cannot run, the table says
that the peer failed and why, and prints no ratio.

After both, ``azimg check --generalized`` lists which deprovision findings each output still has.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from check import build_image, supermin_kernel  # bench/check.py (same directory)

PYTHON = sys.executable
DEPROVISION = {"AGT-05", "AGT-06", "AGT-11", "NET-08", "NET-09", "SEC-01", "SEC-02", "SEC-04"}
DEPROVISION |= {"SEC-05", "SEC-09", "SEC-11"}
OPERATIONS = ",".join(
    (
        "ssh-hostkeys",
        "machine-id",
        "dhcp-client-state",
        "bash-history",
        "tmp-files",
        "udev-persistent-net",
        "logfiles",
        "user-account",
        "customize",  # --delete and --hostname are customizations: without it they are skipped
    )
)
USERS = "azureuser,opsadmin"  # the e2e's and the docs' admin users
DELETES = (
    "/var/lib/cloud/*",
    "/var/lib/waagent/*",
    "/var/log/azure/*",
    "/etc/resolv.conf",
    "/var/lib/systemd/random-seed",
    "/root/.ssh/authorized_keys",
)


def sparse_copy(src: Path, dst: Path) -> None:
    subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)


def run_ours(image: Path, out: Path) -> float:
    out.unlink(missing_ok=True)
    argv = [PYTHON, "-m", "azimg.cli.main", "generalize", str(image), "-o", str(out)]
    argv += ["--remove-users", "--force", "--output", "json"]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t0


def run_sysprep(image: Path, copy: Path, env: dict[str, str]) -> tuple[float, str | None]:
    sparse_copy(image, copy)
    argv = ["virt-sysprep", "--format", "raw", "-a", str(copy), "--operations", OPERATIONS]
    argv += ["--hostname", "localhost.localdomain", "--remove-user-accounts", USERS]
    for path in DELETES:
        argv += ["--delete", path]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return wall, " / ".join(lines[-2:]) or f"exit {proc.returncode}"
    return wall, None


def leftovers(image: Path) -> list[str]:
    argv = [PYTHON, "-m", "azimg.cli.main", "check", str(image), "--generalized", "-o", "json"]
    doc = json.loads(subprocess.run(argv, capture_output=True, text=True).stdout)
    return sorted(
        f["rule"] for f in doc["findings"] if f["status"] == "fail" and f["rule"] in DEPROVISION
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path)
    ap.add_argument("--size", default="4G")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="azimg-bench-gen-", dir=args.dir))
    try:
        image = args.image or build_image(args.size, work / "built.vhd")
        ours_out, peer_copy = work / "ours.vhd", work / "peer.raw"
        load0 = os.getloadavg()[0]
        ours = [run_ours(image, ours_out) for _ in range(args.runs)]
        env = dict(os.environ, LIBGUESTFS_BACKEND="direct", LIBGUESTFS_BACKEND_SETTINGS="force_tcg")
        env.update(supermin_kernel(work))
        peer: list[float] = []
        why = None
        for _ in range(args.runs):
            wall, why = run_sysprep(image, peer_copy, env)
            if why:
                break
            peer.append(wall)
        load1 = os.getloadavg()[0]
        a = statistics.median(ours)
        gib = image.stat().st_size / 2**30
        print(f"image: {image} ({gib:.1f} GiB); load {load0:.1f} → {load1:.1f}")
        print(f"{'tool':<16} {'median s':>9} {'min s':>7}  runs  deprovision findings left")
        left = leftovers(ours_out) or "none"
        print(f"{'azimg':<16} {a:>9.2f} {min(ours):>7.2f}  {len(ours):>4}  {left}")
        if why:
            print(f"{'virt-sysprep':<16} peer failed: {why}")
            print("ratio: none (the peer did not run)")
            return
        p = statistics.median(peer)
        left = leftovers(peer_copy) or "none"
        print(f"{'virt-sysprep':<16} {p:>9.2f} {min(peer):>7.2f}  {len(peer):>4}  {left}")
        print(f"ratio: virt-sysprep / azimg = {p / a:.1f}x (medians)")
        print("runs: azimg " + " ".join(f"{t:.2f}" for t in ours))
        print("      virt-sysprep " + " ".join(f"{t:.2f}" for t in peer))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
