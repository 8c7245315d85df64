"""Copy-on-write clones: a qcow2 overlay whose backing file is a fixed VHD (or a raw image).

Azure "makes a copy of the image" for every VM; we make a qcow2 overlay instead, so creating a
VM's OS disk takes the same time for 4 GiB as for 1 TiB. The backing file is opened read-only
by QEMU and never written, so two VMs cloned from one version cannot see each other's writes
and the version's bytes stay as published.

A fixed VHD is raw disk bytes followed by a 512-byte footer (cookie ``conectix``). We do not
let QEMU's ``vpc`` driver size it (it may pick a CHS-derived size, tooling.md §1 pitfall 5):
the backing is described as ``raw`` with an explicit ``size`` = file size - 512, so the guest
sees exactly the disk's bytes and never the footer. ``qemu-img create -u`` skips opening the
backing file, which is what keeps the time constant.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from azimg.errors import CorruptImage, InvalidArgument, ToolMissing

VHD_FOOTER_SIZE = 512
VHD_COOKIE = b"conectix"


def guest_size(source: Path) -> int:
    """Bytes the guest sees: a fixed VHD without its footer, or a raw image as is."""
    try:
        size = source.stat().st_size
        with source.open("rb") as fh:
            if size >= VHD_FOOTER_SIZE:
                fh.seek(size - VHD_FOOTER_SIZE)
                if fh.read(len(VHD_COOKIE)) == VHD_COOKIE:
                    return size - VHD_FOOTER_SIZE
    except FileNotFoundError:
        raise InvalidArgument(f"clone source {source} does not exist") from None
    if size == 0 or size % 512:
        raise CorruptImage(
            f"{source} is neither a fixed VHD nor a raw disk (size {size} is not whole sectors)",
            field="size",
        )
    return size


def backing_spec(source: Path) -> str:
    """The ``json:`` backing file name that pins the raw driver and the size."""
    spec = {
        "driver": "raw",
        "size": guest_size(source),
        "file": {"driver": "file", "filename": str(source.resolve())},
    }
    return "json:" + json.dumps(spec, separators=(",", ":"))


def create_clone(source: Path, target: Path) -> None:
    """Create ``target`` as a qcow2 overlay over ``source``; never touches ``source``.

    Written under a temporary name and renamed, so a failure leaves no half-made clone.
    """
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise ToolMissing("qemu-img", "qemu-utils")
    size = guest_size(source)
    if target.exists():
        raise InvalidArgument(f"clone target {target} already exists")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    result = subprocess.run(
        [
            qemu_img,
            "create",
            "-q",
            "-u",
            "-f",
            "qcow2",
            "-F",
            "raw",
            "-b",
            backing_spec(source),
            str(partial),
            str(size),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise InvalidArgument(f"qemu-img could not create a clone: {result.stderr.strip()}")
    os.replace(partial, target)
