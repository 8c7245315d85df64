"""Open a disk image and hand back its partitions, each with a read-only filesystem if we can.

``open_guest(path)`` = ``open_view`` (any container) + ``read_partition_table`` + a probe of
each partition's first bytes. Readable filesystems (ext2/3/4, XFS, FAT) come back as
``GuestFS`` objects; everything else comes back with ``fs=None`` and a ``why`` that says what
the partition holds (swap, LVM, LUKS, UFS, …) or why reading failed, so a rule can report
"unreadable" rather than "passed". A disk without a partition table is probed as a whole.
Nothing is read until asked for: opening a 4 GiB image costs a few sectors per partition.
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass
from typing import BinaryIO

from azimg.disk.ext4 import Ext4FS
from azimg.disk.fat import FatFS
from azimg.disk.guestfs import GuestFS
from azimg.disk.partitions import Partition, PartitionTable, read_partition_table
from azimg.disk.view import ImageView, SliceReader, open_view
from azimg.disk.xfs import XfsFS
from azimg.errors import AzimgError


@dataclass(frozen=True)
class Probe:
    """What the first bytes of a volume say it holds."""

    fs_type: str | None  # ext4, ext3, ext2, xfs, vfat, swap, LVM2_member, crypto_LUKS, ufs, …
    uuid: str | None = None  # as blkid prints it (what fstab's UUID= names)
    label: str | None = None


def _at(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    return fh.read(length)


def _ext_probe(fh: BinaryIO) -> Probe | None:
    sb = _at(fh, 1024, 1024)
    if len(sb) < 1024 or sb[0x38:0x3A] != b"\x53\xef":
        return None
    compat, incompat, ro_compat = struct.unpack_from("<III", sb, 0x5C)
    if incompat & 0x2C0 or ro_compat & 0x478:  # extents/64bit/flex_bg; huge_file, dir_nlink…
        kind = "ext4"
    elif compat & 0x4:  # has_journal
        kind = "ext3"
    else:
        kind = "ext2"
    label = sb[0x78:0x88].split(b"\0", 1)[0].decode("utf-8", "replace")
    return Probe(kind, str(uuid.UUID(bytes=sb[0x68:0x78])), label or None)


def _xfs_probe(fh: BinaryIO) -> Probe | None:
    sb = _at(fh, 0, 120)
    if len(sb) < 120 or sb[:4] != b"XFSB":
        return None
    label = sb[108:120].split(b"\0", 1)[0].decode("utf-8", "replace")
    return Probe("xfs", str(uuid.UUID(bytes=sb[32:48])), label or None)


def _fat_probe(fh: BinaryIO) -> Probe | None:
    bs = _at(fh, 0, 512)
    if len(bs) < 512 or bs[510:512] != b"\x55\xaa":
        return None
    bytes_per_sector = struct.unpack_from("<H", bs, 11)[0]
    if bytes_per_sector not in (512, 1024, 2048, 4096) or bs[13] == 0:
        return None
    if bs[82:87] == b"FAT32":
        serial, label = struct.unpack_from("<I", bs, 67)[0], bs[71:82]
    elif bs[54:57] == b"FAT":
        serial, label = struct.unpack_from("<I", bs, 39)[0], bs[43:54]
    else:
        return None
    text = label.decode("ascii", "replace").strip()
    return Probe(
        "vfat", f"{serial >> 16:04X}-{serial & 0xFFFF:04X}", None if text == "NO NAME" else text
    )


def _swap_probe(fh: BinaryIO) -> Probe | None:
    for page in (4096, 8192, 16384, 65536):
        if _at(fh, page - 10, 10) in (b"SWAPSPACE2", b"SWAP-SPACE"):
            hdr = _at(fh, 1024, 44)
            if len(hdr) < 44:
                return Probe("swap")
            label = hdr[28:44].split(b"\0", 1)[0].decode("utf-8", "replace")
            return Probe("swap", str(uuid.UUID(bytes=hdr[12:28])), label or None)
    return None


# Signatures of volumes we name but do not read: (offset, magic, type).
_OTHER_SIGNATURES = (
    (512, b"LABELONE", "LVM2_member"),
    (0, b"LUKS\xba\xbe", "crypto_LUKS"),
    (0x10040, b"_BHRfS_M", "btrfs"),
    (65536 + 1372, struct.pack("<I", 0x19540119), "ufs"),  # UFS2 superblock magic
    (8192 + 1372, struct.pack("<I", 0x011954), "ufs"),  # UFS1
    (65536 + 1372, struct.pack(">I", 0x19540119), "ufs"),
    (0x8001, b"CD001", "iso9660"),
    (0x4000 + 0x100, b"ZFS", "zfs_member"),
)

_UNREADABLE_WHY = {
    "swap": "swap space holds no files",
    "LVM2_member": "LVM physical volume: logical volumes are not read",
    "crypto_LUKS": "LUKS-encrypted volume",
    "btrfs": "btrfs is not read by this tool",
    "ufs": "UFS/FFS (BSD) is not read by this tool",
    "iso9660": "ISO 9660 is not read by this tool",
    "zfs_member": "ZFS is not read by this tool",
}


def probe(fh: BinaryIO) -> Probe:
    """Identify the filesystem (or other volume type) from its signature bytes."""
    for fn in (_ext_probe, _xfs_probe, _swap_probe, _fat_probe):
        found = fn(fh)
        if found:
            return found
    for offset, magic, kind in _OTHER_SIGNATURES:
        if _at(fh, offset, len(magic)) == magic:
            return Probe(kind)
    return Probe(None)


def open_filesystem(fh: BinaryIO, fs_type: str | None, label: str) -> GuestFS:
    """A GuestFS for a volume of a readable type (raises AzimgError otherwise)."""
    if fs_type in ("ext2", "ext3", "ext4"):
        return Ext4FS(fh, label=label)
    if fs_type == "vfat":
        return FatFS(fh, label=label)
    if fs_type == "xfs":
        return XfsFS(fh, label=label)
    raise AzimgError(_UNREADABLE_WHY.get(fs_type or "", "no filesystem signature found"))


@dataclass(frozen=True)
class GuestPartition:
    """A partition (or the whole disk, ``partition=None``) and what it holds."""

    partition: Partition | None
    fs_type: str | None
    uuid: str | None  # filesystem/swap UUID (fstab UUID=)
    label: str | None  # filesystem/swap label (fstab LABEL=)
    fs: GuestFS | None
    why: str | None  # why fs is None; None when fs is set

    @property
    def number(self) -> int:
        return self.partition.number if self.partition else 0


class GuestImage:
    """An opened image: container view, partition table, partitions with filesystems."""

    def __init__(self, path: str, view: ImageView, table: PartitionTable) -> None:
        self.path = path
        self.view = view
        self.table = table
        self.partitions = tuple(self._open_partitions())

    @property
    def format(self) -> str:
        return self.view.format

    @property
    def size(self) -> int:
        return self.view.size

    @property
    def bytes_read(self) -> int:
        """Bytes pulled from the image so far (container reads through the view)."""
        return self.view.reader.bytes_read

    def filesystems(self) -> list[GuestPartition]:
        return [p for p in self.partitions if p.fs is not None]

    def partition(self, number: int) -> GuestPartition:
        for p in self.partitions:
            if p.number == number:
                return p
        raise KeyError(number)

    def _open_partitions(self) -> list[GuestPartition]:
        reader = self.view.reader
        if self.table.scheme == "none":
            volumes: list[tuple[Partition | None, SliceReader]] = [
                (None, SliceReader(reader, 0, reader.size))
            ]
        else:
            volumes = [
                (p, SliceReader(reader, p.start, p.size))
                for p in self.table.partitions
                if p.kind not in ("extended", "gpt-protective") and p.start < reader.size
            ]
        out = []
        name = os.path.basename(self.path)
        for part, fh in volumes:
            where = f"partition {part.number}" if part else "whole disk"
            found = probe(fh)
            fs: GuestFS | None = None
            why: str | None = None
            try:
                fs = open_filesystem(fh, found.fs_type, f"{found.fs_type} on {name} {where}")
            except AzimgError as exc:
                why = str(exc)
            out.append(GuestPartition(part, found.fs_type, found.uuid, found.label, fs, why))
        return out

    def close(self) -> None:
        self.view.close()

    def __enter__(self) -> GuestImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_guest(path: str | os.PathLike[str]) -> GuestImage:
    """Open any image (raw, VHD, qcow2, VMDK) and its partitions' filesystems, read-only."""
    view = open_view(path)
    try:
        table = read_partition_table(view.reader, view.size)
        return GuestImage(os.fspath(path), view, table)
    except BaseException:
        view.close()
        raise
