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

A clone may hold its own hard link of its source (``base``): the overlay then names the link,
so deleting the source's name (a gallery version deleted while VMs still run from it) leaves
the clone whole, in constant time and without copying. ``flatten`` turns a clone back into a
plain fixed VHD, the bytes every disk consumer (snapshot, SAS, image) expects.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from azimg.disk import qemu_img
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


def create_clone(source: Path, target: Path, *, base: Path | None = None) -> None:
    """Create ``target`` as a qcow2 overlay over ``source``; never touches ``source``.

    With ``base``, ``source`` is first hard-linked there and the overlay is backed by the link
    (same filesystem required). Written under a temporary name and renamed, so a failure leaves
    no half-made clone.
    """
    exe = shutil.which("qemu-img")
    if exe is None:
        raise ToolMissing("qemu-img", "qemu-utils")
    size = guest_size(source)
    if target.exists():
        raise InvalidArgument(f"clone target {target} already exists")
    if base is not None:
        _link(source, base)
        source = base
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    result = subprocess.run(
        [
            exe,
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


def _link(source: Path, base: Path) -> None:
    """``base`` as a hard link of ``source``; an existing link of the same file is kept (a
    create retried after a crash), anything else there is refused."""
    try:
        os.link(source, base)
    except FileExistsError:
        if not os.path.samefile(source, base):
            raise InvalidArgument(f"clone base {base} already exists") from None
    except FileNotFoundError:
        raise InvalidArgument(f"clone source {source} does not exist") from None
    except OSError as err:
        raise InvalidArgument(f"cannot link the clone base {base}: {err.strerror}") from None


def flatten(clone: Path, target: Path, *, in_use: bool = False) -> None:
    """Write the disk a qcow2 ``clone`` shows (its base and its own writes) as a fixed VHD at
    ``target``. ``in_use``: a running QEMU holds the clone (a crash-consistent read). Written
    under a temporary name and renamed; a failure raises ``AzimgError`` and leaves nothing."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        qemu_img.convert_to_fixed_vhd(clone, "qcow2", partial, force_share=in_use)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
