"""FAT12/16/32, read-only: enough to read an EFI System Partition (long file names included).

Layout from Microsoft's "FAT: General Overview of On-Disk Format" (BPB, FAT entries, 32-byte
directory entries, VFAT long-name entries). The FAT type comes from the cluster count, as the
specification demands, never from the label string. Lookups are case-insensitive, as the
firmware's are (``/EFI/BOOT/BOOTX64.EFI`` finds ``efi/boot/bootx64.efi``). FAT has no inode
numbers, so nodes are numbered here as directories are read.

Untrusted input: cluster chains are bounded by the volume's cluster count and checked for
loops, directories by the specification's 65,536 entries; a bad BPB is ``CorruptImage``.
"""

from __future__ import annotations

import stat as statmod
import struct
from dataclasses import dataclass
from typing import BinaryIO

from azimg.disk.guestfs import GuestStat
from azimg.disk.treefs import LRU, TreeFS
from azimg.errors import CorruptImage

# BPB (offset 11..35, little-endian): bytes/sector, sectors/cluster, reserved sectors,
# FAT count, root entries, total sectors (16), media, FAT size (16), sectors/track, heads,
# hidden sectors, total sectors (32). FAT32 extension at 36: FAT size (32), flags, version,
# root cluster.
_BPB = struct.Struct("<HBHBHHBHHHII")
_BPB32 = struct.Struct("<IHHI")
# Directory entry (32 bytes): name 8.3, attributes, NT case flags, creation tenth, creation
# time, creation date, access date, cluster high, write time, write date, cluster low, size.
_DIRENT = struct.Struct("<11sBBBHHHHHHHI")

ATTR_READ_ONLY = 0x01
ATTR_VOLUME_ID = 0x08
ATTR_DIRECTORY = 0x10
ATTR_LONG_NAME = 0x0F
MAX_DIR_ENTRIES = 65536
ROOT = 0


@dataclass(frozen=True)
class BootSector:
    bytes_per_sector: int
    sectors_per_cluster: int
    reserved_sectors: int
    num_fats: int
    root_entries: int
    total_sectors: int
    fat_size: int  # sectors per FAT
    root_cluster: int  # FAT32 only

    @classmethod
    def unpack(cls, raw: bytes) -> BootSector:
        if len(raw) < 512:
            raise CorruptImage("FAT boot sector is truncated", offset=0, field="bpb")
        (
            bps,
            spc,
            reserved,
            nfats,
            root_entries,
            total16,
            _media,
            fatsz16,
            _spt,
            _heads,
            _hid,
            total32,
        ) = _BPB.unpack_from(raw, 11)
        fatsz32, _flags, _ver, root_cluster = _BPB32.unpack_from(raw, 36)
        checks = (
            (bps not in (512, 1024, 2048, 4096), 11, "BPB_BytsPerSec"),
            (spc == 0 or spc & (spc - 1), 13, "BPB_SecPerClus"),
            (reserved == 0, 14, "BPB_RsvdSecCnt"),
            (nfats == 0, 16, "BPB_NumFATs"),
            ((total16 or total32) == 0, 19, "BPB_TotSec"),
            ((fatsz16 or fatsz32) == 0, 22, "BPB_FATSz"),
        )
        for bad, off, name in checks:
            if bad:
                raise CorruptImage(
                    f"FAT boot sector field {name} is invalid", offset=off, field=name
                )
        return cls(
            bps,
            spc,
            reserved,
            nfats,
            root_entries,
            total16 or total32,
            fatsz16 or fatsz32,
            root_cluster,
        )

    @property
    def root_dir_sectors(self) -> int:
        return (self.root_entries * 32 + self.bytes_per_sector - 1) // self.bytes_per_sector

    @property
    def first_data_sector(self) -> int:
        return self.reserved_sectors + self.num_fats * self.fat_size + self.root_dir_sectors

    @property
    def cluster_count(self) -> int:
        return max(0, self.total_sectors - self.first_data_sector) // self.sectors_per_cluster

    @property
    def fat_bits(self) -> int:
        """12, 16 or 32: by cluster count (the specification's only rule)."""
        if self.cluster_count < 4085:
            return 12
        if self.cluster_count < 65525:
            return 16
        return 32


@dataclass(frozen=True)
class _Node:
    directory: bool
    cluster: int  # first cluster (0: empty file, or the FAT12/16 root)
    size: int
    read_only: bool


def _short_name(raw: bytes, nt_flags: int) -> str:
    base = raw[:8].rstrip(b" ")
    ext = raw[8:11].rstrip(b" ")
    if base[:1] == b"\x05":
        base = b"\xe5" + base[1:]
    b = base.decode("cp437")
    e = ext.decode("cp437")
    if nt_flags & 0x08:
        b = b.lower()
    if nt_flags & 0x10:
        e = e.lower()
    return f"{b}.{e}" if e else b


def _lfn_checksum(short: bytes) -> int:
    s = 0
    for c in short:
        s = (((s & 1) << 7) + (s >> 1) + c) & 0xFF
    return s


class FatFS(TreeFS):
    """A FAT volume behind a binary file object (an ESP partition view)."""

    def __init__(self, fh: BinaryIO, label: str = "vfat") -> None:
        super().__init__(fh, label)
        self.boot = BootSector.unpack(self._pread(0, 512, "boot sector"))
        b = self.boot
        self.fat_bits = b.fat_bits
        if b.cluster_count == 0:
            raise CorruptImage(f"{label}: FAT volume has no data clusters", field="BPB_TotSec")
        self.cluster_size = b.bytes_per_sector * b.sectors_per_cluster
        self._fat_offset = b.reserved_sectors * b.bytes_per_sector
        self._fat_bytes = b.fat_size * b.bytes_per_sector
        self._data_offset = b.first_data_sector * b.bytes_per_sector
        self._fat_chunks: LRU[int, bytes] = LRU(64)
        self._nodes: list[_Node] = [
            _Node(True, b.root_cluster if self.fat_bits == 32 else 0, 0, False)
        ]
        self._node_ids: dict[tuple[bool, int, int], int] = {}
        self._lower: LRU[int, dict[str, str]] = LRU(64)

    # -- the allocation table -----------------------------------------------------------------

    def _fat_read(self, offset: int, length: int) -> bytes:
        chunk = 4096
        out = b""
        while length > 0:
            base = offset - offset % chunk
            data = self._fat_chunks.get(base)
            if data is None:
                n = min(chunk, self._fat_bytes - base)
                if n <= 0:
                    raise CorruptImage(f"{self.label}: FAT entry beyond the table", field="FAT")
                data = self._pread(self._fat_offset + base, n, "allocation table")
                self._fat_chunks.put(base, data)
            piece = data[offset - base : offset - base + length]
            if not piece:
                raise CorruptImage(f"{self.label}: FAT entry beyond the table", field="FAT")
            out += piece
            offset += len(piece)
            length -= len(piece)
        return out

    def _next(self, cluster: int) -> int | None:
        """The next cluster in a chain, or None at its end."""
        if self.fat_bits == 12:
            (v,) = struct.unpack("<H", self._fat_read(cluster * 3 // 2, 2))
            v = v >> 4 if cluster & 1 else v & 0xFFF
            end, bad = 0xFF8, 0xFF7
        elif self.fat_bits == 16:
            (v,) = struct.unpack("<H", self._fat_read(cluster * 2, 2))
            end, bad = 0xFFF8, 0xFFF7
        else:
            (v,) = struct.unpack("<I", self._fat_read(cluster * 4, 4))
            v &= 0x0FFFFFFF
            end, bad = 0x0FFFFFF8, 0x0FFFFFF7
        if v >= end:
            return None
        if v == bad or v < 2 or v >= self.boot.cluster_count + 2:
            raise CorruptImage(
                f"{self.label}: broken cluster chain at cluster {cluster}", field="FAT"
            )
        return v

    def _chain(self, first: int, max_clusters: int) -> list[int]:
        """Up to ``max_clusters`` clusters of a chain; loops and stray links are corruption."""
        if first < 2 or first >= self.boot.cluster_count + 2:
            raise CorruptImage(
                f"{self.label}: first cluster {first} is outside the volume", field="FstClus"
            )
        chain = [first]
        seen = {first}
        while len(chain) < max_clusters:
            nxt = self._next(chain[-1])
            if nxt is None:
                break
            if nxt in seen:
                raise CorruptImage(
                    f"{self.label}: loop in the cluster chain from {first}", field="FAT"
                )
            seen.add(nxt)
            chain.append(nxt)
        return chain

    def _read_chain(self, first: int, length: int) -> bytes:
        cs = self.cluster_size
        chain = self._chain(first, -(-length // cs))
        out = bytearray()
        i = 0
        while i < len(chain) and len(out) < length:
            j = i
            while j + 1 < len(chain) and chain[j + 1] == chain[j] + 1:
                j += 1
            n = min((j - i + 1) * cs, length - len(out))
            out += self._pread(self._data_offset + (chain[i] - 2) * cs, n, "cluster")
            i = j + 1
        return bytes(out)

    # -- directories --------------------------------------------------------------------------

    def _dir_bytes(self, node: _Node) -> bytes:
        b = self.boot
        if node.cluster == 0 and self.fat_bits != 32:
            # FAT12/16 root: a fixed region right after the FATs.
            start = (b.reserved_sectors + b.num_fats * b.fat_size) * b.bytes_per_sector
            return self._pread(start, b.root_entries * 32, "root directory")
        return self._read_chain(node.cluster, MAX_DIR_ENTRIES * 32)

    def _node_id(self, node: _Node) -> int:
        key = (node.directory, node.cluster, node.size)
        if node.cluster == 0 or key not in self._node_ids:
            self._nodes.append(node)
            self._node_ids[key] = len(self._nodes) - 1
        return self._node_ids[key]

    def _node_entries(self, node_id: int) -> dict[str, int]:
        node = self._nodes[node_id]
        if not node.directory:
            raise NotADirectoryError(node_id)
        data = self._dir_bytes(node)
        entries: dict[str, int] = {}
        lfn: dict[int, str] = {}
        lfn_sum = -1
        for pos in range(0, len(data) - 31, 32):
            raw = data[pos : pos + 32]
            name11, attr, nt, _t, _ct, _cd, _ad, hi, _wt, _wd, lo, size = _DIRENT.unpack(raw)
            first = name11[0]
            if first == 0x00:
                break
            if first == 0xE5:
                lfn, lfn_sum = {}, -1
                continue
            if attr & 0x3F == ATTR_LONG_NAME:
                seq = first & 0x1F
                if first & 0x40:
                    lfn = {}
                lfn_sum = raw[13]
                part = raw[1:11] + raw[14:26] + raw[28:32]
                lfn[seq] = part.decode("utf-16-le", "replace")
                continue
            if attr & ATTR_VOLUME_ID:
                lfn, lfn_sum = {}, -1
                continue
            name = _short_name(name11, nt)
            if lfn and lfn_sum == _lfn_checksum(name11) and set(lfn) == set(range(1, len(lfn) + 1)):
                long = "".join(lfn[k] for k in sorted(lfn)).split("\0", 1)[0].rstrip("\uffff")
                if long:
                    name = long
            lfn, lfn_sum = {}, -1
            if name in (".", "..") or "/" in name or not name:
                continue
            cluster = (hi << 16 | lo) if self.fat_bits == 32 else lo
            child = _Node(
                bool(attr & ATTR_DIRECTORY),
                cluster,
                0 if attr & ATTR_DIRECTORY else size,
                bool(attr & ATTR_READ_ONLY),
            )
            if child.directory and cluster == 0:
                continue  # a directory pointing at the root: only ".." may, and it was skipped
            entries[name] = self._node_id(child)
        return entries

    # -- TreeFS primitives --------------------------------------------------------------------

    def _root(self) -> int:
        return ROOT

    def _lookup(self, node: int, name: str) -> int | None:
        entries = self._entries(node)
        found = entries.get(name)
        if found is not None:
            return found
        lower = self._lower.get(node)
        if lower is None:
            lower = {k.casefold(): k for k in entries}
            self._lower.put(node, lower)
        real = lower.get(name.casefold())
        return entries[real] if real is not None else None

    def _node_stat(self, node: int) -> GuestStat:
        n = self._nodes[node]
        if n.directory:
            return GuestStat(mode=statmod.S_IFDIR | 0o755, size=0)
        perm = 0o444 if n.read_only else 0o644
        return GuestStat(mode=statmod.S_IFREG | perm, size=n.size)

    def _node_link(self, node: int) -> bytes:
        raise OSError(22, "FAT has no symlinks")

    def _node_data(self, node: int, limit: int) -> bytes:
        n = self._nodes[node]
        length = min(limit, n.size)
        if length <= 0:
            return b""
        return self._read_chain(n.cluster, length)
