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

from azimg.errors import AzimgError, ToolMissing

QEMU_IMG = "qemu-img"


def _run(args: list[str]) -> str:
    exe = shutil.which(QEMU_IMG)
    if exe is None:
        raise ToolMissing(QEMU_IMG, "qemu-utils")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        raise AzimgError(f"qemu-img {args[0]} failed: {last.removeprefix('qemu-img: ')}")
    return proc.stdout


def info(path: Path, fmt: str) -> dict[str, Any]:
    """``qemu-img info --output=json``: virtual-size, actual-size, format-specific, backing."""
    return json.loads(_run(["info", "-f", fmt, "--output=json", str(path)]))


def convert_to_raw(src: Path, fmt: str, dst: Path) -> None:
    """Write ``src`` as a sparse raw file at ``dst`` (zero runs stay holes)."""
    _run(["convert", "-f", fmt, "-O", "raw", str(src), str(dst)])
