"""azimg convert side by side with `qemu-img convert -O vpc -o subformat=fixed,force_size=on`.

Run: .venv/bin/python bench/convert.py [--dir /var/tmp] [--repeat 3]

Cases (issue 2): a 4 GiB sparse raw with ~0.5 GiB of data, a 4 GiB dense raw, an 8 GiB qcow2
with 1 GiB of data, and `--in-place` on the sparse raw against qemu-img converting it (as a
function call, and as a whole `azimg` process, Python start-up included). Each tool
runs `--repeat` times, interleaved (azimg, qemu-img, qemu-img, azimg, ...) so drifting page-cache
and load conditions hit both alike; the table shows medians. Neither tool syncs inside the timed
part (qemu-img convert defaults to cache=unsafe, azimg to no fdatasync); after each run the output
is fdatasync'ed untimed, so no run pays for the previous run's dirty pages.
`qemu-img compare` checks that both outputs hold the same data. Timings on a shared 2-core
machine are noisy: the load average is printed before and after.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from azimg.disk.convert import convert, make_fixed_in_place

MIB = 1024 * 1024
GIB = 1024 * MIB
CHUNK = 4 * MIB


def fill_sparse(path: Path, size: int, data: int) -> None:
    """``data`` bytes of random 4 MiB chunks spread evenly over a sparse ``size``-byte file."""
    chunks = data // CHUNK
    stride = (size // CHUNK) // chunks
    with open(path, "wb") as f:
        f.truncate(size)
        for i in range(chunks):
            f.seek(i * stride * CHUNK)
            f.write(os.urandom(CHUNK))


def fill_dense(path: Path, size: int) -> None:
    block = os.urandom(64 * MIB)
    with open(path, "wb") as f:
        for i in range(size // len(block)):
            # vary each block so nothing downstream can deduplicate or skip it
            f.write(i.to_bytes(8, "big") + block[8:])


def qemu_convert(src: Path, fmt: str, dst: Path) -> None:
    opts = "subformat=fixed,force_size=on"
    args = ["qemu-img", "convert", "-f", fmt, "-O", "vpc", "-o", opts, str(src), str(dst)]
    subprocess.run(args, check=True)


def identical(a: Path, b: Path) -> bool:
    proc = subprocess.run(
        ["qemu-img", "compare", "-f", "vpc", "-F", "vpc", str(a), str(b)],
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@dataclass
class Row:
    case: str
    azimg: list[float]
    qemu: list[float]
    same: bool

    @property
    def ratio(self) -> float:
        return statistics.median(self.azimg) / statistics.median(self.qemu)


def run_case(
    name: str,
    src: Path,
    fmt: str,
    work: Path,
    repeat: int,
    in_place: bool = False,
    via_cli: bool = False,
) -> Row:
    ours, theirs = work / "azimg.vhd", work / "qemu.vhd"
    a_times: list[float] = []
    q_times: list[float] = []

    def settle(path: Path) -> None:
        """Untimed: write our own dirty pages out, so the next run starts from a clean slate."""
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def run_ours() -> None:
        ours.unlink(missing_ok=True)
        if in_place:
            subprocess.run(["cp", "--sparse=always", str(src), str(ours)], check=True)
            settle(ours)
            if via_cli:
                cli = [sys.executable, "-m", "azimg.cli.main", "convert", "--in-place", str(ours)]
                a_times.append(timed(lambda: subprocess.run(cli, check=True, capture_output=True)))
            else:
                a_times.append(timed(lambda: make_fixed_in_place(ours)))
        else:
            a_times.append(timed(lambda: convert(src, ours)))
        settle(ours)

    def run_theirs() -> None:
        theirs.unlink(missing_ok=True)
        q_times.append(timed(lambda: qemu_convert(src, fmt, theirs)))
        settle(theirs)

    for i in range(repeat):
        order = (run_ours, run_theirs) if i % 2 == 0 else (run_theirs, run_ours)
        for step in order:
            step()
    row = Row(name, a_times, q_times, identical(ours, theirs))
    ours.unlink()
    theirs.unlink()
    return row


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"), help="work directory")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the cases (smoke runs)")
    args = parser.parse_args()
    if shutil.which("qemu-img") is None:
        print("qemu-img is not installed (apt-get install qemu-utils)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="azimg-bench-", dir=args.dir))

    def gib(n: float) -> int:
        return max(32 * MIB, int(n * args.scale * GIB) // MIB * MIB)

    try:
        print(f"load average before: {load()}  (2-core machine shared with other work)")
        sparse = work / "sparse.raw"
        fill_sparse(sparse, gib(4), gib(0.5))
        dense = work / "dense.raw"
        fill_dense(dense, gib(4))
        qcow = work / "data.qcow2"
        tmp_raw = work / "qcow-src.raw"
        fill_sparse(tmp_raw, gib(8), gib(1))
        subprocess.run(
            ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(tmp_raw), str(qcow)], check=True
        )
        tmp_raw.unlink()
        rows = [
            run_case("4 GiB sparse raw (0.5 GiB data)", sparse, "raw", work, args.repeat),
            run_case("4 GiB dense raw", dense, "raw", work, args.repeat),
            run_case("8 GiB qcow2 (1 GiB data)", qcow, "qcow2", work, args.repeat),
            run_case(
                "--in-place 4 GiB sparse raw", sparse, "raw", work, args.repeat, in_place=True
            ),
            run_case(
                "  same, CLI process (startup incl.)",
                sparse,
                "raw",
                work,
                args.repeat,
                in_place=True,
                via_cli=True,
            ),
        ]
        print(f"load average after:  {load()}")
        print()
        print(f"{'case':<34} {'azimg s':>9} {'qemu-img s':>11} {'ratio':>9}  data identical")
        for r in rows:
            a, q = statistics.median(r.azimg), statistics.median(r.qemu)
            print(f"{r.case:<34} {a:>9.4f} {q:>11.4f} {r.ratio:>9.4f}  {'yes' if r.same else 'NO'}")
        print()
        print(
            "ratio = azimg median / qemu-img median (lower is better); runs per tool:", args.repeat
        )
        for r in rows:
            print(
                f"  {r.case}: azimg {' '.join(f'{t:.3f}' for t in r.azimg)} | "
                f"qemu-img {' '.join(f'{t:.3f}' for t in r.qemu)}"
            )
        return 0 if all(r.same for r in rows) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
