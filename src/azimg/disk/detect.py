"""What kind of disk image a file holds, decided by its bytes, never by its name.

Order (prerequisites.md §2): signatures at offset 0 first (VHDX ``vhdxfile``, qcow2 ``QFI\\xfb``,
VMDK ``KDMV`` or a text descriptor), then the VHD footer cookie in the last 512 bytes (or its
copy at offset 0, which dynamic and differencing disks carry; or a footer whose cookie alone is
damaged), else raw. A fixed VHD has no
header at offset 0, so checking the tail is the only way to tell it from raw -- the mistake
qemu-img's own probing makes (tooling.md §1, pitfall 3).
"""

from __future__ import annotations

import enum
import os
from typing import BinaryIO

from azimg.disk.vhd import (
    FIXED_DATA_OFFSET,
    FOOTER_COOKIE,
    FOOTER_SIZE,
    FORMAT_VERSION,
    VHDX_SIGNATURE,
    DiskType,
    Footer,
)

QCOW2_MAGIC = b"QFI\xfb"
VMDK_SPARSE_MAGIC = b"KDMV"
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"


class ImageFormat(enum.StrEnum):
    raw = "raw"
    vhd_fixed = "vhd-fixed"
    vhd_dynamic = "vhd-dynamic"
    vhd_differencing = "vhd-differencing"
    vhd_other = "vhd-unknown-type"  # cookie present, disk type none of 2/3/4
    vhdx = "vhdx"
    qcow2 = "qcow2"
    vmdk = "vmdk"

    @property
    def is_vhd(self) -> bool:
        return self.value.startswith("vhd-")

    @property
    def qemu_name(self) -> str:
        """The name ``qemu-img -f`` knows it by."""
        return "vpc" if self.is_vhd else self.value


def _vhd_kind(footer: Footer) -> ImageFormat:
    return {
        DiskType.fixed: ImageFormat.vhd_fixed,
        DiskType.dynamic: ImageFormat.vhd_dynamic,
        DiskType.differencing: ImageFormat.vhd_differencing,
    }.get(footer.disk_type, ImageFormat.vhd_other)


def _unverified(raw: bytes, at: int) -> Footer:
    """The footer fields as written (vhd.py owns the layout); cookie and checksum unchecked."""
    return Footer.unpack(raw, at=at, verify=False)


def _is_footer_with_bad_cookie(tail: bytes, footer: Footer) -> bool:
    """A footer whose cookie alone is damaged: it still checksums, or its fields still say VHD.

    Raw data virtually never does either (a 32-bit checksum, or version 1.0 + a known disk type +
    a valid data offset at once). Calling it a VHD lets ``azimg info`` report VHD-01 and
    ``convert`` refuse it, instead of converting a broken VHD as a raw disk with a footer inside.
    """
    if not any(tail):
        return False
    if footer.checksum_ok:
        return True
    return (
        footer.file_format_version == FORMAT_VERSION
        and footer.disk_type in (DiskType.fixed, DiskType.dynamic, DiskType.differencing)
        and footer.data_offset in (FIXED_DATA_OFFSET, FOOTER_SIZE)
    )


def detect_format(fh: BinaryIO) -> ImageFormat:
    """The image format of ``fh`` by content (the file position is not preserved)."""
    size = fh.seek(0, os.SEEK_END)
    fh.seek(0)
    head = fh.read(FOOTER_SIZE)
    if head.startswith(VHDX_SIGNATURE):
        return ImageFormat.vhdx
    if head.startswith(QCOW2_MAGIC):
        return ImageFormat.qcow2
    if head.startswith(VMDK_SPARSE_MAGIC) or head.startswith(VMDK_DESCRIPTOR):
        return ImageFormat.vmdk
    if size >= FOOTER_SIZE:
        fh.seek(size - FOOTER_SIZE)
        tail = fh.read(FOOTER_SIZE)
        footer = _unverified(tail, size - FOOTER_SIZE)
        if tail.startswith(FOOTER_COOKIE) or _is_footer_with_bad_cookie(tail, footer):
            return _vhd_kind(footer)
    # A dynamic disk whose trailing footer is damaged still carries the copy at offset 0.
    if len(head) == FOOTER_SIZE and head.startswith(FOOTER_COOKIE):
        return _vhd_kind(_unverified(head, 0))
    return ImageFormat.raw
