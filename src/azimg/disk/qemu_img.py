"""qemu-img, the converter of record for qcow2, VMDK and VHDX input (DESIGN.md).

Thin on purpose: build the argument list, run it, turn failure into one line. Always pass the
input format explicitly -- probing calls a fixed VHD "raw" (tooling.md §1, pitfall 3).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from azimg.errors import AzimgError, CorruptImage, ToolMissing

QEMU_IMG = "qemu-img"
# `qemu-img check` exit codes: 0 clean, 1 could not check, 2 corrupt, 3 leaked clusters only
# (harmless for reading), 63 the format has no check.
CHECK_HARMLESS = (0, 3, 63)


def _exe() -> str:
    exe = shutil.which(QEMU_IMG)
    if exe is None:
        raise ToolMissing(QEMU_IMG, "qemu-utils")
    return exe


def _last_line(text: str, default: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("qemu-img: ") if lines else default


def _run(args: list[str]) -> str:
    proc = subprocess.run([_exe(), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = _last_line(proc.stderr, f"exit status {proc.returncode}")
        raise AzimgError(f"qemu-img {args[0]} failed: {last}")
    return proc.stdout


def check(path: Path, fmt: str) -> None:
    """Refuse a damaged qcow2/VMDK/VHDX: qemu-img reads past a truncated end as zeros."""
    proc = subprocess.run(
        [_exe(), "check", "-f", fmt, str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode in CHECK_HARMLESS:
        return
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    first = errors[0] if errors else _last_line(proc.stderr, f"exit status {proc.returncode}")
    raise CorruptImage(f"{fmt} image is damaged (qemu-img check: {first})")


def info(path: Path, fmt: str) -> dict[str, Any]:
    """``qemu-img info --output=json``: virtual-size, actual-size, format-specific, backing."""
    return json.loads(_run(["info", "-f", fmt, "--output=json", str(path)]))


def block_map(path: Path, fmt: str) -> list[dict[str, Any]]:
    """``qemu-img map --output=json``: start, length, depth, zero, data and (if valid) offset."""
    return json.loads(_run(["map", "-f", fmt, "--output=json", str(path)]))


def convert_to_raw(src: Path, fmt: str, dst: Path) -> None:
    """Write ``src`` as a sparse raw file at ``dst`` (zero runs stay holes)."""
    _run(["convert", "-f", fmt, "-O", "raw", str(src), str(dst)])


def convert_to_fixed_vhd(src: Path, fmt: str, dst: Path, *, force_share: bool = False) -> None:
    """Write ``src`` as a fixed VHD at ``dst`` (sparse: zero runs stay holes). The virtual size
    is kept exactly (``force_size``), so the footer says what the guest saw. ``force_share``
    reads an image a running QEMU holds open (a crash-consistent copy, as a snapshot of a
    running disk is on Azure)."""
    args = ["convert", "-f", fmt, "-O", "vpc", "-o", "subformat=fixed,force_size=on"]
    if force_share:
        args.append("-U")
    _run([*args, str(src), str(dst)])
