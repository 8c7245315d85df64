"""ext2/3/4, read-only and lazy: only the blocks a lookup needs.

Layout from the kernel's Documentation/filesystems/ext4 (superblock, group descriptors, inode,
extent tree, directory entries, inline data). Supported: extents and classic block maps,
64bit descriptors, META_BG, inline data (files, directories, symlinks), fast symlinks, htree
directories read linearly (their index blocks look like empty entries on purpose). Checksums
(metadata_csum) are not verified: we only read, and every structure is bounds-checked instead.

Untrusted input: extent trees are depth-checked (each child exactly one level lower) with a
visited set and a node budget; block maps are bounded by the file size; directories are capped
in size; inode numbers are range-checked. Anything else wrong raises ``CorruptImage``.
"""

from __future__ import annotations

import stat as statmod
import struct
from dataclasses import dataclass
from typing import BinaryIO

from azimg.disk.guestfs import GuestStat
from azimg.disk.treefs import LRU, TreeFS
from azimg.errors import CorruptImage, UnsupportedFormat

SUPERBLOCK_OFFSET = 1024
EXT4_MAGIC = 0xEF53
ROOT_INO = 2
MAX_DIR_BYTES = 16 * 1024 * 1024
MAX_EXTENT_DEPTH = 5
MAX_EXTENT_NODES = 4096
MAX_EXTENTS = 200_000  # ~20 MB of tuples; a real file this fragmented is not one we read

# incompat feature bits
INCOMPAT_COMPRESSION = 0x1
INCOMPAT_FILETYPE = 0x2
INCOMPAT_JOURNAL_DEV = 0x8
INCOMPAT_META_BG = 0x10
INCOMPAT_EXTENTS = 0x40
INCOMPAT_64BIT = 0x80
INCOMPAT_DIRDATA = 0x1000
INCOMPAT_INLINE_DATA = 0x8000
RO_COMPAT_SPARSE_SUPER = 0x1
COMPAT_SPARSE_SUPER2 = 0x200

# inode flags
FL_ENCRYPT = 0x800
FL_EXTENTS = 0x80000
FL_INLINE_DATA = 0x10000000

# Superblock fields we use (offset, format), Documentation/filesystems/ext4/super.rst.
_SB_FIELDS = {
    "inodes_count": (0x0, "<I"),
    "blocks_count_lo": (0x4, "<I"),
    "first_data_block": (0x14, "<I"),
    "log_block_size": (0x18, "<I"),
    "blocks_per_group": (0x20, "<I"),
    "inodes_per_group": (0x28, "<I"),
    "magic": (0x38, "<H"),
    "rev_level": (0x4C, "<I"),
    "inode_size": (0x58, "<H"),
    "feature_compat": (0x5C, "<I"),
    "feature_incompat": (0x60, "<I"),
    "feature_ro_compat": (0x64, "<I"),
    "uuid": (0x68, "16s"),
    "volume_name": (0x78, "16s"),
    "first_meta_bg": (0x104, "<I"),
    "desc_size": (0xFE, "<H"),
    "blocks_count_hi": (0x150, "<I"),
    "backup_bgs": (0x24C, "<II"),
}
# Extent header / index / leaf (12 bytes each), Documentation/filesystems/ext4/ifork.rst.
_EXTENT_HEADER = struct.Struct("<HHHHI")
_EXTENT_INDEX = struct.Struct("<IIHH")
_EXTENT_LEAF = struct.Struct("<IHHI")
_EXTENT_MAGIC = 0xF30A
# Directory entry head: inode, rec_len, name_len, file_type (filetype feature).
_DIRENT = struct.Struct("<IHBB")
# In-inode extended attribute entry: name_len, name_index, value_offs, value_inum, size, hash.
_XATTR_ENTRY = struct.Struct("<BBHIII")
_XATTR_MAGIC = 0xEA020000
_XATTR_INDEX_SYSTEM = 7


@dataclass(frozen=True)
class Superblock:
    inodes_count: int
    blocks_count: int
    first_data_block: int
    block_size: int
    blocks_per_group: int
    inodes_per_group: int
    rev_level: int
    inode_size: int
    feature_compat: int
    feature_incompat: int
    feature_ro_compat: int
    uuid: bytes
    volume_name: str
    first_meta_bg: int
    desc_size: int
    backup_bgs: tuple[int, int]

    @classmethod
    def unpack(cls, raw: bytes, *, at: int = SUPERBLOCK_OFFSET) -> Superblock:
        if len(raw) < 1024:
            raise CorruptImage("ext4 superblock is truncated", offset=at, field="superblock")
        v = {k: struct.unpack_from(f, raw, off) for k, (off, f) in _SB_FIELDS.items()}
        if v["magic"][0] != EXT4_MAGIC:
            raise CorruptImage("no ext2/3/4 magic 0xEF53", offset=at + 0x38, field="s_magic")
        log = v["log_block_size"][0]
        if log > 6:  # 1 KiB << 6 = 64 KiB, the largest ext4 block
            raise CorruptImage(
                f"block size 2^{10 + log}", offset=at + 0x18, field="s_log_block_size"
            )
        incompat = v["feature_incompat"][0]
        rev = v["rev_level"][0]
        inode_size = v["inode_size"][0] if rev >= 1 else 128
        desc_size = v["desc_size"][0] if incompat & INCOMPAT_64BIT else 32
        block_size = 1024 << log
        sb = cls(
            inodes_count=v["inodes_count"][0],
            blocks_count=v["blocks_count_lo"][0]
            | ((v["blocks_count_hi"][0] << 32) if incompat & INCOMPAT_64BIT else 0),
            first_data_block=v["first_data_block"][0],
            block_size=block_size,
            blocks_per_group=v["blocks_per_group"][0],
            inodes_per_group=v["inodes_per_group"][0],
            rev_level=rev,
            inode_size=inode_size,
            feature_compat=v["feature_compat"][0],
            feature_incompat=incompat,
            feature_ro_compat=v["feature_ro_compat"][0],
            uuid=v["uuid"][0],
            volume_name=v["volume_name"][0].split(b"\0", 1)[0].decode("utf-8", "replace"),
            first_meta_bg=v["first_meta_bg"][0],
            desc_size=desc_size,
            backup_bgs=v["backup_bgs"],
        )
        checks = (
            (
                sb.inode_size < 128
                or sb.inode_size > block_size
                or sb.inode_size & (sb.inode_size - 1),
                0x58,
                "s_inode_size",
            ),
            (
                sb.blocks_per_group == 0 or sb.blocks_per_group > 8 * block_size,
                0x20,
                "s_blocks_per_group",
            ),
            (
                sb.inodes_per_group == 0 or sb.inodes_per_group > 8 * block_size,
                0x28,
                "s_inodes_per_group",
            ),
            (
                sb.desc_size < 32 or sb.desc_size > 1024 or sb.desc_size & (sb.desc_size - 1),
                0xFE,
                "s_desc_size",
            ),
            (sb.blocks_count == 0, 0x4, "s_blocks_count"),
        )
        for bad, off, name in checks:
            if bad:
                raise CorruptImage(
                    f"ext4 superblock field {name} is invalid", offset=at + off, field=name
                )
        return sb

    @property
    def group_count(self) -> int:
        return -(-(self.blocks_count - self.first_data_block) // self.blocks_per_group)

    @property
    def uuid_str(self) -> str:
        h = self.uuid.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class Inode:
    ino: int
    mode: int
    uid: int
    gid: int
    size: int
    flags: int
    block: bytes  # i_block: 60 bytes (extent root, block map or inline data)
    extra: bytes  # the in-inode area after the 128-byte core (extra fields + xattrs)

    _CORE = struct.Struct("<HHIIIIIHHII4x60sIIII12x")

    @classmethod
    def unpack(cls, ino: int, raw: bytes) -> Inode:
        f = cls._CORE.unpack_from(raw)
        mode, uid_lo, size_lo, _a, _c, _m, _d, gid_lo, _links, _blocks, flags = f[:11]
        block, _gen, _acl, size_hi = f[11], f[12], f[13], f[14]
        uid_hi, gid_hi = struct.unpack_from("<HH", raw, 0x78)
        return cls(
            ino=ino,
            mode=mode,
            uid=uid_lo | (uid_hi << 16),
            gid=gid_lo | (gid_hi << 16),
            size=size_lo | (size_hi << 32),
            flags=flags,
            block=block,
            extra=raw[128:],
        )


def _has_super(sb: Superblock, group: int) -> bool:
    """Whether ``group`` holds a superblock backup (and so a descriptor copy) — sparse_super."""
    if group == 0:
        return True
    if sb.feature_compat & COMPAT_SPARSE_SUPER2:
        return group in sb.backup_bgs
    if not sb.feature_ro_compat & RO_COMPAT_SPARSE_SUPER:
        return True
    if group == 1:
        return True
    for base in (3, 5, 7):
        n = base
        while n < group:
            n *= base
        if n == group:
            return True
    return False


class Ext4FS(TreeFS):
    """An ext2/3/4 volume behind a binary file object (a partition view)."""

    def __init__(self, fh: BinaryIO, label: str = "ext4") -> None:
        super().__init__(fh, label)
        self.sb = Superblock.unpack(self._pread(SUPERBLOCK_OFFSET, 1024, "superblock"))
        incompat = self.sb.feature_incompat
        for bit, name in (
            (INCOMPAT_COMPRESSION, "compression"),
            (INCOMPAT_JOURNAL_DEV, "an external journal device"),
            (INCOMPAT_DIRDATA, "dirdata"),
        ):
            if incompat & bit:
                raise UnsupportedFormat(f"{label}: ext4 with {name} is not supported")
        self.block_size = self.sb.block_size
        self._blocks: LRU[int, bytes] = LRU(256)
        self._inodes: LRU[int, Inode] = LRU(1024)
        self._filetype = bool(incompat & INCOMPAT_FILETYPE)

    @property
    def uuid(self) -> str:
        return self.sb.uuid_str

    @property
    def volume_label(self) -> str:
        return self.sb.volume_name

    # -- blocks, descriptors, inodes ----------------------------------------------------------

    def _block(self, n: int) -> bytes:
        """A metadata block, cached."""
        if n <= 0 or n >= self.sb.blocks_count:
            raise CorruptImage(f"{self.label}: block {n} is outside the filesystem", field="block")
        data = self._blocks.get(n)
        if data is None:
            data = self._pread(n * self.block_size, self.block_size, "metadata block")
            self._blocks.put(n, data)
        return data

    def _desc_block(self, index: int) -> int:
        """Disk block of the index-th group descriptor block (classic or META_BG layout)."""
        sb = self.sb
        per_block = self.block_size // sb.desc_size
        if not sb.feature_incompat & INCOMPAT_META_BG or index < sb.first_meta_bg:
            return sb.first_data_block + 1 + index
        group = index * per_block
        first = sb.first_data_block + group * sb.blocks_per_group
        return first + (1 if _has_super(sb, group) else 0)

    def _inode_table(self, group: int) -> int:
        sb = self.sb
        if group >= sb.group_count:
            raise CorruptImage(f"{self.label}: block group {group} does not exist", field="group")
        per_block = self.block_size // sb.desc_size
        blk = self._block(self._desc_block(group // per_block))
        off = (group % per_block) * sb.desc_size
        (lo,) = struct.unpack_from("<I", blk, off + 0x8)
        hi = struct.unpack_from("<I", blk, off + 0x28)[0] if sb.desc_size >= 64 else 0
        return lo | (hi << 32)

    def _inode(self, ino: int) -> Inode:
        cached = self._inodes.get(ino)
        if cached is not None:
            return cached
        sb = self.sb
        if ino < 1 or ino > sb.inodes_count:
            raise CorruptImage(f"{self.label}: inode {ino} is out of range", field="inode")
        group, index = divmod(ino - 1, sb.inodes_per_group)
        byte = self._inode_table(group) * self.block_size + index * sb.inode_size
        blk_no, off = divmod(byte, self.block_size)
        raw = self._block(blk_no)[off : off + sb.inode_size]
        inode = Inode.unpack(ino, raw)
        self._inodes.put(ino, inode)
        return inode

    # -- file data ----------------------------------------------------------------------------

    def _extents(self, inode: Inode, nblocks: int) -> list[tuple[int, int, int, bool]]:
        """Leaf extents below logical block ``nblocks``: (logical, physical, length, uninit)."""
        out: list[tuple[int, int, int, bool]] = []
        seen: set[int] = set()

        def node(raw: bytes, depth_expected: int | None, where: str) -> None:
            if len(seen) > MAX_EXTENT_NODES:
                raise CorruptImage(f"{self.label}: inode {inode.ino} extent tree is too large")
            magic, entries, maximum, depth, _gen = _EXTENT_HEADER.unpack_from(raw)
            if magic != _EXTENT_MAGIC:
                raise CorruptImage(f"{self.label}: bad extent header in {where}", field="eh_magic")
            if depth > MAX_EXTENT_DEPTH or (depth_expected is not None and depth != depth_expected):
                raise CorruptImage(
                    f"{self.label}: bad extent tree depth in {where}", field="eh_depth"
                )
            if entries > maximum or 12 + 12 * entries > len(raw):
                raise CorruptImage(
                    f"{self.label}: extent count overflows {where}", field="eh_entries"
                )
            for i in range(entries):
                at = 12 + 12 * i
                if struct.unpack_from("<I", raw, at)[0] >= nblocks:
                    break  # entries are sorted by logical block: the rest lies past the limit
                if depth == 0:
                    lblk, length, hi, lo = _EXTENT_LEAF.unpack_from(raw, at)
                    uninit = length > 32768
                    out.append(
                        (lblk, lo | (hi << 32), length - 32768 if uninit else length, uninit)
                    )
                    if len(out) > MAX_EXTENTS:
                        raise CorruptImage(f"{self.label}: inode {inode.ino} has too many extents")
                else:
                    _lblk, lo, hi, _unused = _EXTENT_INDEX.unpack_from(raw, at)
                    child = lo | (hi << 32)
                    if child in seen:
                        raise CorruptImage(
                            f"{self.label}: loop in the extent tree of inode {inode.ino}"
                        )
                    seen.add(child)
                    node(self._block(child), depth - 1, f"block {child}")

        node(inode.block, None, f"inode {inode.ino}")
        return out

    def _blockmap_runs(self, inode: Inode, nblocks: int) -> list[tuple[int, int, int, bool]]:
        """Classic ext2/3 direct + indirect block maps, as (logical, physical, 1, False) runs."""
        per = self.block_size // 4
        ptrs = struct.unpack("<15I", inode.block)
        out: list[tuple[int, int, int, bool]] = []

        def walk(blk: int, level: int, base: int) -> None:
            span = per**level
            if base >= nblocks:
                return
            if blk == 0:
                return  # hole
            if level == 0:
                out.append((base, blk, 1, False))
                return
            entries = struct.unpack(f"<{per}I", self._block(blk))
            for i, child in enumerate(entries):
                child_base = base + i * (span // per)
                if child_base >= nblocks:
                    break
                walk(child, level - 1, child_base)

        for i in range(12):
            walk(ptrs[i], 0, i)
        walk(ptrs[12], 1, 12)
        walk(ptrs[13], 2, 12 + per)
        walk(ptrs[14], 3, 12 + per + per * per)
        merged: list[tuple[int, int, int, bool]] = []
        for lblk, pblk, n, _u in out:  # coalesce physically contiguous blocks into one read
            if (
                merged
                and merged[-1][0] + merged[-1][2] == lblk
                and merged[-1][1] + merged[-1][2] == pblk
            ):
                merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + n, False)
            else:
                merged.append((lblk, pblk, n, False))
        return merged

    def _inline_data(self, inode: Inode) -> bytes:
        """Inline data: i_block (60 bytes) then the ``system.data`` xattr value in the inode."""
        extra = inode.extra
        if len(extra) < 4:
            return inode.block
        (extra_isize,) = struct.unpack_from("<H", extra, 0)
        at = extra_isize
        if at + 4 > len(extra) or struct.unpack_from("<I", extra, at)[0] != _XATTR_MAGIC:
            return inode.block
        base = at + 4
        pos = base
        while pos + _XATTR_ENTRY.size <= len(extra):
            name_len, index, value_offs, value_inum, size, _hash = _XATTR_ENTRY.unpack_from(
                extra, pos
            )
            if name_len == 0 and index == 0 and value_offs == 0:
                break
            name = extra[pos + 16 : pos + 16 + name_len]
            if index == _XATTR_INDEX_SYSTEM and name == b"data" and value_inum == 0:
                if base + value_offs + size > len(extra):
                    raise CorruptImage(f"{self.label}: inline data of inode {inode.ino} overflows")
                return inode.block + extra[base + value_offs : base + value_offs + size]
            pos += (16 + name_len + 3) & ~3
        return inode.block

    def _read_inode_data(self, inode: Inode, limit: int) -> bytes:
        length = min(limit, inode.size)
        if length <= 0:
            return b""
        if inode.flags & FL_INLINE_DATA:
            return self._inline_data(inode)[:length]
        bs = self.block_size
        nblocks = -(-length // bs)
        if inode.flags & FL_EXTENTS:
            runs = self._extents(inode, nblocks)
        else:
            runs = self._blockmap_runs(inode, nblocks)
        out = bytearray(length)
        for lblk, pblk, count, uninit in runs:
            if uninit or lblk >= nblocks:
                continue
            count = min(count, nblocks - lblk)
            if pblk <= 0 or pblk + count > self.sb.blocks_count:
                raise CorruptImage(
                    f"{self.label}: inode {inode.ino} points outside the volume", field="extent"
                )
            start = lblk * bs
            n = min(count * bs, length - start)
            out[start : start + n] = self._pread(pblk * bs, n)
        return bytes(out)

    # -- TreeFS primitives --------------------------------------------------------------------

    def _root(self) -> int:
        return ROOT_INO

    def _node_stat(self, node: int) -> GuestStat:
        i = self._inode(node)
        return GuestStat(mode=i.mode, size=i.size, uid=i.uid, gid=i.gid)

    def _node_link(self, node: int) -> bytes:
        i = self._inode(node)
        if i.size < 60 and not i.flags & (FL_EXTENTS | FL_INLINE_DATA):
            return i.block[: i.size]  # fast symlink: the target lives in i_block
        return self._read_inode_data(i, min(i.size, 4097))

    def _node_data(self, node: int, limit: int) -> bytes:
        i = self._inode(node)
        if i.flags & FL_ENCRYPT:
            raise CorruptImage(f"{self.label}: inode {node} is encrypted; its data is unreadable")
        return self._read_inode_data(i, limit)

    def _node_entries(self, node: int) -> dict[str, int]:
        i = self._inode(node)
        if not statmod.S_ISDIR(i.mode):
            raise NotADirectoryError(node)
        if i.size > MAX_DIR_BYTES:
            raise CorruptImage(f"{self.label}: directory inode {node} claims {i.size} bytes")
        entries: dict[str, int] = {}
        if i.flags & FL_INLINE_DATA:
            data = self._inline_data(i)
            # 4 bytes of parent inode, then entries; the xattr part is its own entry block.
            self._parse_dirents(data[4:60], entries, node, whole=True)
            self._parse_dirents(data[60:], entries, node, whole=True)
            return entries
        data = self._read_inode_data(i, i.size)
        bs = self.block_size
        for at in range(0, len(data), bs):
            self._parse_dirents(data[at : at + bs], entries, node, whole=False)
        return entries

    def _parse_dirents(
        self, blk: bytes, into: dict[str, int], dir_ino: int, *, whole: bool
    ) -> None:
        pos = 0
        while pos + 8 <= len(blk):
            ino, rec_len, name_len, ftype = _DIRENT.unpack_from(blk, pos)
            if not self._filetype:
                name_len |= ftype << 8
            if rec_len < 8 or rec_len % 4 or pos + rec_len > len(blk) or 8 + name_len > rec_len:
                if whole and ino == 0 and rec_len == 0:
                    return  # inline-data padding
                raise CorruptImage(
                    f"{self.label}: bad directory entry in inode {dir_ino}",
                    offset=pos,
                    field="rec_len",
                )
            if ino != 0 and name_len:
                name = blk[pos + 8 : pos + 8 + name_len].decode("utf-8", "surrogateescape")
                if name not in (".", "..") and "/" not in name:
                    into[name] = ino
            pos += rec_len


def probe_ext4(fh: BinaryIO) -> bool:
    """Whether the volume starts like ext2/3/4 (superblock magic)."""
    fh.seek(SUPERBLOCK_OFFSET + 0x38)
    return fh.read(2) == struct.pack("<H", EXT4_MAGIC)
