"""Side by side: `azimg check` vs libguestfs `virt-inspector` on the same built image.

    .venv/bin/python bench/check.py [--image IMAGE.vhd] [--size 4G] [--runs 3]

Without ``--image`` it builds one with ``azimg build debian --size 4G`` (bootstrap cache
reused). Each tool runs as a fresh process (what a user types), wall time measured around it;
ours also reports the bytes it pulled from the image (its own counter, the view's
``bytes_read``) and the process's ``rchar`` from /proc/self/io (every read() incl. Python's
own imports). virt-inspector boots the libguestfs appliance under TCG
(``LIBGUESTFS_BACKEND=direct``, ``LIBGUESTFS_BACKEND_SETTINGS=force_tcg``: nested KVM hangs
here); what its appliance reads happens inside QEMU and is not counted here. supermin needs a
kernel in /boot (setup.sh installs linux-image-amd64); a host without one still lends it the
Debian cloud kernel from azimg's bootstrap cache. A peer run that fails prints why and no
ratio (exit status 1): a time to a failure is not a comparison. The
first virt-inspector run also builds the supermin appliance (cached in /var/tmp/.guestfs-0):
run with ``--peer-runs 2`` to see the warm figure.

Timings on a shared 2-core machine are noisy: the table prints the minimum and median of the
runs, and the ratio uses medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# Runs inside a fresh interpreter: the check plus its own I/O accounting.
OURS = r"""
import json, sys, time
def rchar():
    for line in open("/proc/self/io"):
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0
t0 = time.perf_counter(); r0 = rchar()
from azimg.image.check import check_image
from azimg.image.rules import CheckContext
t1 = time.perf_counter(); r1 = rchar()
report = check_image(sys.argv[1], CheckContext())
t2 = time.perf_counter(); r2 = rchar()
print(json.dumps({"import_s": t1 - t0, "check_s": t2 - t1, "bytes_read": report.bytes_read,
                  "rchar_check": r2 - r1, "rchar_total": r2 - r0,
                  "blockers": len(report.blockers), "os": report.os,
                  "findings": len(report.findings)}))
"""


def build_image(size: str, out: Path) -> Path:
    argv = [PYTHON, "-m", "azimg.cli.main", "build", "debian", "-o", str(out), "--size", size]
    print(f"building {out.name} ({size}) ...", file=sys.stderr)
    subprocess.run(argv, check=True)
    return out


def run_ours(image: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [PYTHON, "-c", OURS, str(image)], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - t0
    doc = json.loads(out.stdout)
    doc["wall_s"] = wall
    return doc


def supermin_kernel(tmp: Path) -> dict[str, str]:
    """A kernel for the libguestfs appliance when the host has none (containers): taken from
    azimg's own bootstrap cache, i.e. the Debian cloud kernel the built images carry."""
    if list(Path("/boot").glob("vmlinuz-*")):
        return {}
    cache = Path(os.environ.get("AZIMG_CACHE", Path.home() / ".cache" / "azimg")) / "rootfs"
    tars = sorted(cache.glob("*.tar"), key=lambda p: p.stat().st_mtime) if cache.is_dir() else []
    if not tars:
        return {}
    # supermin copies the module tree under the host's /lib/modules; it must at least exist.
    if not Path("/lib/modules").exists():
        print("creating an empty /lib/modules for supermin", file=sys.stderr)
        Path("/lib/modules").mkdir(parents=True)
    out = tmp / "kernel"
    with tarfile.open(tars[-1]) as tf:
        members = [
            m
            for m in tf
            if m.name.lstrip("./").startswith(("boot/vmlinuz-", "lib/modules/", "usr/lib/modules/"))
        ]
        tf.extractall(out, members=members, filter="tar")
    kernel = next(out.glob("boot/vmlinuz-*"))
    version = kernel.name[len("vmlinuz-") :]
    modules = next(
        p for p in (out / "usr/lib/modules" / version, out / "lib/modules" / version) if p.is_dir()
    )
    return {
        "SUPERMIN_KERNEL": str(kernel),
        "SUPERMIN_MODULES": str(modules),
        "SUPERMIN_KERNEL_VERSION": version,
    }


@dataclass(frozen=True)
class PeerRun:
    wall_s: float
    ok: bool
    result: str  # what it found, or why it failed


def run_virt_inspector(image: Path, kernel_env: dict[str, str]) -> PeerRun:
    env = dict(os.environ, LIBGUESTFS_BACKEND="direct", LIBGUESTFS_BACKEND_SETTINGS="force_tcg")
    env.update(kernel_env)
    fmt = "vpc" if image.suffix == ".vhd" else "raw"
    t0 = time.perf_counter()
    try:
        out = subprocess.run(
            ["virt-inspector", f"--format={fmt}", "-a", str(image)],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        return PeerRun(time.perf_counter() - t0, False, "timed out after 900 s")
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        lines = [line.strip() for line in out.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]  # libguestfs: error: ...
        why = " | ".join(errors[:2] or lines[-2:])
        return PeerRun(wall, False, f"exit {out.returncode}: {why or 'no message'}")
    distro = _between(out.stdout, "<distro>", "</distro>")
    product = _between(out.stdout, "<product_name>", "</product_name>")
    if not distro:
        return PeerRun(wall, False, "exit 0 but no operating system found in its output")
    return PeerRun(wall, True, f"{distro} {product}".strip())


def _between(text: str, a: str, b: str) -> str:
    i = text.find(a)
    j = text.find(b, i)
    return text[i + len(a) : j] if i >= 0 and j > i else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path)
    ap.add_argument("--size", default="4G")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-runs", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="azimg-bench-check-"))
    status = 0
    try:
        image = args.image or build_image(args.size, tmp / "bench.vhd")
        load_before = os.getloadavg()[0]
        size = image.stat().st_size
        ours = [run_ours(image) for _ in range(args.runs)]
        kernel_env = supermin_kernel(tmp)
        peers = (
            [run_virt_inspector(image, kernel_env) for _ in range(args.peer_runs)]
            if shutil.which("virt-inspector")
            else []
        )
        walls = [o["wall_s"] for o in ours]
        checks = [o["check_s"] for o in ours]
        last = ours[-1]
        print(
            f"image: {image} ({size / 2**30:.2f} GiB file), 1-min load before/after: "
            f"{load_before:.2f}/{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        )
        print(f"{'tool':<28}{'min s':>9}{'median s':>10}{'bytes read':>16}  result")
        print(
            f"{'azimg check (process)':<28}{min(walls):>9.2f}{statistics.median(walls):>10.2f}"
            f"{last['rchar_total'] / 1e6:>13.1f} MB  {last['os']}, {last['blockers']} blockers"
        )
        print(
            f"{'azimg check (check only)':<28}{min(checks):>9.2f}"
            f"{statistics.median(checks):>10.2f}{last['bytes_read'] / 1e6:>13.1f} MB  "
            f"image bytes (rchar of the check: {last['rchar_check'] / 1e6:.1f} MB)"
        )
        failed = [p for p in peers if not p.ok]
        if peers and not failed:
            pw = [p.wall_s for p in peers]
            print(
                f"{'virt-inspector (TCG)':<28}{min(pw):>9.2f}{statistics.median(pw):>10.2f}"
                f"{'n/a':>16}  {peers[-1].result}"
            )
            ratio = statistics.median(pw) / statistics.median(walls)
            print(f"ratio (virt-inspector / azimg check, medians, whole process): {ratio:.1f}x")
        elif failed:
            # A failed peer run is not a time to compare against: no ratio, say why.
            for p in failed:
                print(f"virt-inspector FAILED after {p.wall_s:.1f} s: {p.result}")
            print("no ratio: the peer did not complete (./setup.sh installs the kernel it needs)")
            status = 1
        else:
            print("virt-inspector not installed (apt-get install libguestfs-tools): no ratio")
            status = 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
