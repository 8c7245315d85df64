"""The VHD format: footer, dynamic disk header, block allocation table, sector bitmaps.

Layout first (one ``struct.Struct`` per structure, named after the section of Microsoft's
"Virtual Hard Disk Image Format Specification" v1.0 it comes from), behaviour after it. Every
structure is a frozen dataclass with ``unpack`` (verifies cookie and checksum, raises
``CorruptImage`` naming the byte offset and field) and ``pack`` (recomputes the checksum).

Readers take binary file objects. ``open_vhd`` reads fixed and dynamic disks; differencing
disks and VHDX are recognised and refused by name (``UnsupportedFormat``).

Design notes:
- The creator application we write is ``win `` (Hyper-V's), not a name of our own. QEMU's vpc
  driver (block/vpc.c) sizes a disk from its CHS geometry unless the creator is one of
  ``win ``/``qem2``/``d2v ``/``CTXS``/``tap\\0`` or the geometry is the 65535/16/255 sentinel.
  We keep the geometry the spec computes (so VHD-09 holds and old CHS readers see a
  consistent, never larger, disk) and need every reader -- Azure, Hyper-V and QEMU alike -- to
  take the exact current size. ``Footer.for_fixed_disk`` takes another creator if asked.
- Sector bitmaps are honoured on read, as the spec says (a clear bit reads as zeros in a
  dynamic disk); QEMU ignores them. For every disk QEMU writes (all-ones bitmaps) the two agree.
- The footer of a fixed disk is the last 512 bytes. Old Virtual PC wrote a 511-byte footer;
  we do not accept it (Azure does not either).
"""

from __future__ import annotations

import enum
import os
import struct
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from azimg.errors import CorruptImage, InvalidArgument, UnsupportedFormat

SECTOR = 512
MIB = 1024 * 1024
FOOTER_SIZE = 512
DYNAMIC_HEADER_SIZE = 1024
FOOTER_COOKIE = b"conectix"
DYNAMIC_COOKIE = b"cxsparse"
VHDX_SIGNATURE = b"vhdxfile"
FORMAT_VERSION = 0x0001_0000
HEADER_VERSION = 0x0001_0000
FEATURES_RESERVED = 0x0000_0002  # "reserved, always set"
FEATURES_TEMPORARY = 0x0000_0001
FIXED_DATA_OFFSET = 0xFFFF_FFFF_FFFF_FFFF  # data offset of a fixed disk: all ones
BAT_UNUSED = 0xFFFF_FFFF
DEFAULT_BLOCK_SIZE = 2 * MIB
BITMAP_CACHE_BLOCKS = 4096  # 2 MiB of bitmaps at most; covers 8 GiB of 2 MiB blocks
VHD_EPOCH = 946_684_800  # 2000-01-01 00:00:00 UTC as a Unix time
HOST_WINDOWS = b"Wi2k"
HOST_MAC = b"Mac "
CREATOR_APP = b"win "
CREATOR_VERSION = 0x000A_0000  # Hyper-V writes 10.0
MAX_CHS_SECTORS = 65535 * 16 * 255  # the geometry sentinel: "use current size"

# Azure's limits for an uploaded VHD (prerequisites.md SZ-01): current size + 512 bytes must lie
# in [20 MiB + 512, 32 TiB + 512], and the current size must be a whole number of MiB (VHD-04).
AZURE_MIN_SIZE = 20 * MIB
AZURE_MAX_SIZE = 32 * 1024 * 1024 * MIB
# Past this we call a size absurd rather than big: the VHD format's own BAT of u32 sector numbers
# cannot address more than 2 TiB x 1024 anyway, and no reader should allocate for it.
ABSURD_SIZE = 2**50

# Spec "Hard Disk Footer Format": 512 bytes, big-endian.
_FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427s")
_FOOTER_CHECKSUM_AT = 64
# Spec "Dynamic Disk Header Format": 1024 bytes, big-endian.
_DYNAMIC_HEADER = struct.Struct(">8sQQIIII16sI4s512s192s256s")
_DYNAMIC_CHECKSUM_AT = 36
# Spec "Dynamic Disk Header Format", Parent Locator Entry: 24 bytes, eight of them.
_PARENT_LOCATOR = struct.Struct(">4sIIIQ")
PARENT_LOCATOR_COUNT = 8
assert _FOOTER.size == FOOTER_SIZE
assert _DYNAMIC_HEADER.size == DYNAMIC_HEADER_SIZE
assert _PARENT_LOCATOR.size * PARENT_LOCATOR_COUNT == 192


class DiskType(enum.IntEnum):
    none = 0
    fixed = 2
    dynamic = 3
    differencing = 4


def vhd_checksum(raw: bytes, checksum_at: int) -> int:
    """One's complement of the byte sum, with the 4-byte checksum field counted as zeros."""
    total = sum(raw) - sum(raw[checksum_at : checksum_at + 4])
    return ~total & 0xFFFF_FFFF


def _verify_sealed(
    raw: bytes, at: int, what: str, cookie_is: str, cookie: bytes, checksum_at: int
) -> None:
    """The cookie (first 8 bytes) and the big-endian checksum at ``checksum_at`` of a footer or
    dynamic header found at file offset ``at``; ``CorruptImage`` names the field that is wrong."""
    if raw[:8] != cookie:
        raise CorruptImage(
            f"{cookie_is} is {raw[:8]!r}, expected {cookie!r}", offset=at, field="cookie"
        )
    (stored,) = struct.unpack_from(">I", raw, checksum_at)
    expected = vhd_checksum(raw, checksum_at)
    if stored != expected:
        raise CorruptImage(
            f"{what} checksum is {stored:#010x}, the bytes sum to {expected:#010x}",
            offset=at + checksum_at,
            field="checksum",
        )


def chs_geometry(size: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) as the spec's appendix computes them."""
    sectors = min(size // SECTOR, MAX_CHS_SECTORS)
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cyl_x_heads = sectors // spt
    else:
        spt = 17
        cyl_x_heads = sectors // spt
        heads = max((cyl_x_heads + 1023) // 1024, 4)
        if cyl_x_heads >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cyl_x_heads = sectors // spt
        if cyl_x_heads >= heads * 1024:
            spt, heads = 63, 16
            cyl_x_heads = sectors // spt
    return cyl_x_heads // heads, heads, spt


def round_up_mib(size: int) -> int:
    return -(-size // MIB) * MIB


def _now_vhd_timestamp() -> int:
    return max(0, int(time.time()) - VHD_EPOCH) & 0xFFFF_FFFF


@dataclass(frozen=True)
class Footer:
    """The 512-byte hard disk footer (at the end of every VHD; copied at offset 0 if dynamic)."""

    cookie: bytes
    features: int
    file_format_version: int
    data_offset: int  # all ones for a fixed disk; the dynamic header's offset otherwise
    timestamp: int  # seconds since 2000-01-01 00:00:00 UTC
    creator_application: bytes
    creator_version: int
    creator_host_os: bytes
    original_size: int
    current_size: int  # the size the guest sees; the value Azure validates
    cylinders: int
    heads: int
    sectors_per_track: int
    disk_type: int  # a DiskType value, kept as int: unknown values must survive a round trip
    checksum: int
    unique_id: uuid.UUID
    saved_state: int
    reserved: bytes = field(default=bytes(427), repr=False)

    @classmethod
    def unpack(cls, raw: bytes, *, at: int, verify: bool = True) -> Footer:
        """Parse 512 bytes found at file offset ``at``; ``verify=False`` only for reporting."""
        if len(raw) != FOOTER_SIZE:
            raise CorruptImage(
                f"VHD footer is {len(raw)} bytes, expected {FOOTER_SIZE} (truncated file?)",
                offset=at,
                field="footer",
            )
        (
            cookie,
            features,
            version,
            data_offset,
            timestamp,
            creator_app,
            creator_version,
            creator_host,
            original_size,
            current_size,
            cylinders,
            heads,
            spt,
            disk_type,
            checksum,
            unique_id,
            saved_state,
            reserved,
        ) = _FOOTER.unpack(raw)
        if verify:
            _verify_sealed(
                raw, at, "VHD footer", "no VHD footer: cookie", FOOTER_COOKIE, _FOOTER_CHECKSUM_AT
            )
        return cls(
            cookie=cookie,
            features=features,
            file_format_version=version,
            data_offset=data_offset,
            timestamp=timestamp,
            creator_application=creator_app,
            creator_version=creator_version,
            creator_host_os=creator_host,
            original_size=original_size,
            current_size=current_size,
            cylinders=cylinders,
            heads=heads,
            sectors_per_track=spt,
            disk_type=disk_type,
            checksum=checksum,
            unique_id=uuid.UUID(bytes=unique_id),
            saved_state=saved_state,
            reserved=reserved,
        )

    def _pack_fields(self, checksum: int) -> bytes:
        return _FOOTER.pack(
            self.cookie,
            self.features,
            self.file_format_version,
            self.data_offset,
            self.timestamp,
            self.creator_application,
            self.creator_version,
            self.creator_host_os,
            self.original_size,
            self.current_size,
            self.cylinders,
            self.heads,
            self.sectors_per_track,
            self.disk_type,
            checksum,
            self.unique_id.bytes,
            self.saved_state,
            self.reserved,
        )

    @property
    def computed_checksum(self) -> int:
        return vhd_checksum(self._pack_fields(0), _FOOTER_CHECKSUM_AT)

    @property
    def checksum_ok(self) -> bool:
        return self.checksum == self.computed_checksum

    def pack(self) -> bytes:
        """The 512 bytes, with the checksum recomputed (the ``checksum`` field is ignored)."""
        return self._pack_fields(self.computed_checksum)

    def sealed(self) -> Footer:
        """This footer with its ``checksum`` field set to the computed value."""
        return replace(self, checksum=self.computed_checksum)

    @property
    def kind(self) -> str:
        try:
            return DiskType(self.disk_type).name
        except ValueError:
            return f"unknown ({self.disk_type})"

    @property
    def created_unix(self) -> int:
        return VHD_EPOCH + self.timestamp

    @property
    def chs_size(self) -> int:
        return self.cylinders * self.heads * self.sectors_per_track * SECTOR

    @classmethod
    def for_fixed_disk(
        cls,
        size: int,
        *,
        unique_id: uuid.UUID | None = None,
        timestamp: int | None = None,
        creator_application: bytes = CREATOR_APP,
        creator_version: int = CREATOR_VERSION,
    ) -> Footer:
        """A fixed-disk footer for ``size`` bytes of data, CHS as the spec computes it."""
        if size <= 0 or size % SECTOR:
            raise InvalidArgument(f"a VHD size must be a positive multiple of 512, not {size}")
        if size > ABSURD_SIZE:
            raise InvalidArgument(f"a VHD of {size} bytes is absurdly large")
        if len(creator_application) != 4:
            raise InvalidArgument("the creator application is exactly 4 bytes")
        cylinders, heads, spt = chs_geometry(size)
        return cls(
            cookie=FOOTER_COOKIE,
            features=FEATURES_RESERVED,
            file_format_version=FORMAT_VERSION,
            data_offset=FIXED_DATA_OFFSET,
            timestamp=_now_vhd_timestamp() if timestamp is None else timestamp,
            creator_application=creator_application,
            creator_version=creator_version,
            creator_host_os=HOST_WINDOWS,
            original_size=size,
            current_size=size,
            cylinders=cylinders,
            heads=heads,
            sectors_per_track=spt,
            disk_type=DiskType.fixed,
            checksum=0,
            unique_id=uuid.uuid4() if unique_id is None else unique_id,
            saved_state=0,
        ).sealed()

    def to_json(self) -> dict[str, object]:
        return {
            "cookie": self.cookie.decode("latin-1"),
            "features": f"{self.features:#010x}",
            "file_format_version": f"{self.file_format_version:#010x}",
            "data_offset": f"{self.data_offset:#018x}",
            "timestamp": self.timestamp,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_unix)),
            "creator_application": self.creator_application.decode("latin-1"),
            "creator_version": f"{self.creator_version >> 16}.{self.creator_version & 0xFFFF}",
            "creator_host_os": self.creator_host_os.decode("latin-1"),
            "original_size": self.original_size,
            "current_size": self.current_size,
            "geometry": {
                "cylinders": self.cylinders,
                "heads": self.heads,
                "sectors_per_track": self.sectors_per_track,
            },
            "disk_type": self.kind,
            "checksum": f"{self.checksum:#010x}",
            "checksum_ok": self.checksum_ok,
            "unique_id": str(self.unique_id),
            "saved_state": self.saved_state,
        }


@dataclass(frozen=True)
class ParentLocator:
    """One of the eight parent locator entries of a differencing disk's header."""

    platform_code: bytes
    platform_data_space: int
    platform_data_length: int
    reserved: int
    platform_data_offset: int

    @classmethod
    def unpack(cls, raw: bytes) -> ParentLocator:
        return cls(*_PARENT_LOCATOR.unpack(raw))

    def pack(self) -> bytes:
        return _PARENT_LOCATOR.pack(
            self.platform_code,
            self.platform_data_space,
            self.platform_data_length,
            self.reserved,
            self.platform_data_offset,
        )


_EMPTY_LOCATOR = ParentLocator(bytes(4), 0, 0, 0, 0)


@dataclass(frozen=True)
class DynamicHeader:
    """The 1024-byte dynamic disk header of dynamic and differencing disks."""

    cookie: bytes
    data_offset: int  # unused: all ones
    table_offset: int  # absolute file offset of the BAT
    header_version: int
    max_table_entries: int
    block_size: int
    checksum: int
    parent_unique_id: uuid.UUID
    parent_timestamp: int
    reserved1: bytes
    parent_unicode_name: bytes  # UTF-16 big-endian, NUL padded
    parent_locators: tuple[ParentLocator, ...]
    reserved2: bytes = field(default=bytes(256), repr=False)

    @classmethod
    def unpack(cls, raw: bytes, *, at: int, verify: bool = True) -> DynamicHeader:
        if len(raw) != DYNAMIC_HEADER_SIZE:
            raise CorruptImage(
                f"dynamic header is {len(raw)} bytes, expected {DYNAMIC_HEADER_SIZE}",
                offset=at,
                field="dynamic header",
            )
        (
            cookie,
            data_offset,
            table_offset,
            header_version,
            max_table_entries,
            block_size,
            checksum,
            parent_uuid,
            parent_timestamp,
            reserved1,
            parent_name,
            locators,
            reserved2,
        ) = _DYNAMIC_HEADER.unpack(raw)
        if verify:
            _verify_sealed(
                raw,
                at,
                "dynamic header",
                "dynamic header cookie",
                DYNAMIC_COOKIE,
                _DYNAMIC_CHECKSUM_AT,
            )
        step = _PARENT_LOCATOR.size
        return cls(
            cookie=cookie,
            data_offset=data_offset,
            table_offset=table_offset,
            header_version=header_version,
            max_table_entries=max_table_entries,
            block_size=block_size,
            checksum=checksum,
            parent_unique_id=uuid.UUID(bytes=parent_uuid),
            parent_timestamp=parent_timestamp,
            reserved1=reserved1,
            parent_unicode_name=parent_name,
            parent_locators=tuple(
                ParentLocator.unpack(locators[i : i + step]) for i in range(0, len(locators), step)
            ),
            reserved2=reserved2,
        )

    def _pack_fields(self, checksum: int) -> bytes:
        locators = list(self.parent_locators)[:PARENT_LOCATOR_COUNT]
        locators += [_EMPTY_LOCATOR] * (PARENT_LOCATOR_COUNT - len(locators))
        return _DYNAMIC_HEADER.pack(
            self.cookie,
            self.data_offset,
            self.table_offset,
            self.header_version,
            self.max_table_entries,
            self.block_size,
            checksum,
            self.parent_unique_id.bytes,
            self.parent_timestamp,
            self.reserved1,
            self.parent_unicode_name,
            b"".join(loc.pack() for loc in locators),
            self.reserved2,
        )

    @property
    def computed_checksum(self) -> int:
        return vhd_checksum(self._pack_fields(0), _DYNAMIC_CHECKSUM_AT)

    def pack(self) -> bytes:
        return self._pack_fields(self.computed_checksum)

    def sealed(self) -> DynamicHeader:
        return replace(self, checksum=self.computed_checksum)

    @property
    def parent_name(self) -> str:
        return self.parent_unicode_name.decode("utf-16-be", errors="replace").rstrip("\0")

    @property
    def bitmap_size(self) -> int:
        return sector_bitmap_size(self.block_size)

    @classmethod
    def for_dynamic_disk(
        cls, size: int, *, table_offset: int, block_size: int = DEFAULT_BLOCK_SIZE
    ) -> DynamicHeader:
        """A header for a dynamic disk of ``size`` bytes (BAT entries: size / block, rounded up)."""
        return cls(
            cookie=DYNAMIC_COOKIE,
            data_offset=FIXED_DATA_OFFSET,
            table_offset=table_offset,
            header_version=HEADER_VERSION,
            max_table_entries=-(-size // block_size),
            block_size=block_size,
            checksum=0,
            parent_unique_id=uuid.UUID(int=0),
            parent_timestamp=0,
            reserved1=bytes(4),
            parent_unicode_name=bytes(512),
            parent_locators=(_EMPTY_LOCATOR,) * PARENT_LOCATOR_COUNT,
        ).sealed()


def sector_bitmap_size(block_size: int) -> int:
    """Bytes before each block's data: one bit per sector, padded to a whole sector."""
    bitmap_bytes = -(-(block_size // SECTOR) // 8)
    return max(SECTOR, -(-bitmap_bytes // SECTOR) * SECTOR)


def bitmap_runs(bitmap: bytes, sectors: int) -> Iterator[tuple[int, int]]:
    """(first sector, count) of each run of set bits; bit 7 of byte 0 is sector 0 (spec)."""
    for start, end in _set_bit_runs(bitmap[: -(-sectors // 8)]):
        end = min(end, sectors)
        if start < end:
            yield start, end - start


def _set_bit_runs(bitmap: bytes) -> Iterator[tuple[int, int]]:
    start: int | None = None
    sector = 0
    for byte in bitmap:
        if byte in (0x00, 0xFF):  # whole bytes: the common case, one step for 8 sectors
            bits: tuple[bool, ...] = (byte == 0xFF,)
            step = 8
        else:
            bits = tuple(bool((byte >> bit) & 1) for bit in range(7, -1, -1))
            step = 1
        for on in bits:
            if on and start is None:
                start = sector
            elif not on and start is not None:
                yield start, sector
                start = None
            sector += step
    if start is not None:
        yield start, sector


@dataclass(frozen=True)
class BlockAllocationTable:
    """Big-endian u32 sector numbers, one per block; ``BAT_UNUSED`` means "reads as zeros"."""

    entries: tuple[int, ...]

    @classmethod
    def unpack(cls, raw: bytes, *, at: int, count: int) -> BlockAllocationTable:
        if len(raw) < 4 * count:
            raise CorruptImage(
                f"block allocation table holds {len(raw) // 4} of {count} entries "
                "(truncated file?)",
                offset=at,
                field="BAT",
            )
        return cls(struct.unpack(f">{count}I", raw[: 4 * count]))

    def pack(self) -> bytes:
        """Entries padded with unused markers to a whole sector, as the spec lays it out."""
        raw = struct.pack(f">{len(self.entries)}I", *self.entries)
        pad = -len(raw) % SECTOR
        return raw + b"\xff" * pad

    def __len__(self) -> int:
        return len(self.entries)

    def sector_of(self, block: int) -> int | None:
        entry = self.entries[block]
        return None if entry == BAT_UNUSED else entry


@dataclass(frozen=True)
class Extent:
    """A run of guest bytes backed by file bytes (``file_offset``) or reading as zeros (None)."""

    offset: int
    length: int
    file_offset: int | None


def _file_size(fh: BinaryIO) -> int:
    return fh.seek(0, os.SEEK_END)


def _read_at(fh: BinaryIO, offset: int, length: int, what: str) -> bytes:
    fh.seek(offset)
    raw = fh.read(length)
    if len(raw) != length:
        raise CorruptImage(
            f"file ends inside the {what} ({len(raw)} of {length} bytes)", offset=offset, field=what
        )
    return raw


def read_trailing_footer(fh: BinaryIO, *, verify: bool = True) -> Footer:
    """The footer in the last 512 bytes; names VHDX and too-short files in its errors."""
    size = _file_size(fh)
    if size >= 8:
        fh.seek(0)
        if fh.read(8) == VHDX_SIGNATURE:
            raise UnsupportedFormat(
                "this is a VHDX image, not a VHD; convert it with azimg convert"
            )
    if size < FOOTER_SIZE:
        raise CorruptImage(
            f"file is {size} bytes, too short to hold a 512-byte VHD footer",
            offset=0,
            field="footer",
        )
    return Footer.unpack(
        _read_at(fh, size - FOOTER_SIZE, FOOTER_SIZE, "footer"),
        at=size - FOOTER_SIZE,
        verify=verify,
    )


class VhdDisk:
    """A readable fixed or dynamic VHD: ``.size`` guest bytes, ``read`` returns them."""

    def __init__(
        self,
        fh: BinaryIO,
        footer: Footer,
        file_size: int,
        header: DynamicHeader | None = None,
        bat: BlockAllocationTable | None = None,
    ) -> None:
        self.fh = fh
        self.footer = footer
        self.file_size = file_size
        self.header = header
        self.bat = bat
        self._bitmaps: dict[int, bytes] = {}  # block -> sector bitmap, read once per block

    @property
    def size(self) -> int:
        return self.footer.current_size

    @property
    def kind(self) -> str:
        return "dynamic" if self.header is not None else "fixed"

    def read(self, offset: int, length: int) -> bytes:
        """Guest bytes [offset, offset+length); unallocated ranges read as zeros."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise InvalidArgument(
                f"read of {length} bytes at {offset} is outside the {self.size}-byte disk"
            )
        parts = []
        for ext in self.extents(offset, length):
            if ext.file_offset is None:
                parts.append(bytes(ext.length))
            else:
                parts.append(_read_at(self.fh, ext.file_offset, ext.length, "data"))
        return b"".join(parts)

    def extents(self, offset: int = 0, length: int | None = None) -> Iterator[Extent]:
        """The guest range as runs of file-backed bytes and zeros, in order, adjacent merged."""
        end = self.size if length is None else offset + length
        pending: Extent | None = None
        for ext in self._raw_extents(offset, end):
            if pending is None:
                pending = ext
            elif (pending.file_offset is None and ext.file_offset is None) or (
                pending.file_offset is not None
                and ext.file_offset == pending.file_offset + pending.length
            ):
                pending = Extent(pending.offset, pending.length + ext.length, pending.file_offset)
            else:
                yield pending
                pending = ext
        if pending is not None:
            yield pending

    def _raw_extents(self, start: int, end: int) -> Iterator[Extent]:
        if start >= end:
            return
        if self.header is None or self.bat is None:
            yield Extent(start, end - start, start)
            return
        block_size = self.header.block_size
        bitmap_size = self.header.bitmap_size
        pos = start
        while pos < end:
            block = pos // block_size
            stop = min(end, (block + 1) * block_size)
            sector = self.bat.sector_of(block)
            if sector is None:
                yield Extent(pos, stop - pos, None)
            else:
                data_at = sector * SECTOR + bitmap_size
                bitmap = self._bitmap(block, sector * SECTOR, bitmap_size)
                block_start = block * block_size
                cursor = block_start
                for first, count in bitmap_runs(bitmap, block_size // SECTOR):
                    run_start = block_start + first * SECTOR
                    run_end = run_start + count * SECTOR
                    if run_start > cursor:
                        yield from _clip(Extent(cursor, run_start - cursor, None), pos, stop)
                    yield from _clip(
                        Extent(run_start, run_end - run_start, data_at + first * SECTOR), pos, stop
                    )
                    cursor = run_end
                if cursor < block_start + block_size:
                    yield from _clip(
                        Extent(cursor, block_start + block_size - cursor, None), pos, stop
                    )
            pos = stop

    def _bitmap(self, block: int, at: int, size: int) -> bytes:
        bitmap = self._bitmaps.get(block)
        if bitmap is None:
            if len(self._bitmaps) >= BITMAP_CACHE_BLOCKS:
                self._bitmaps.clear()
            bitmap = self._bitmaps[block] = _read_at(self.fh, at, size, "sector bitmap")
        return bitmap


def _clip(ext: Extent, start: int, end: int) -> Iterator[Extent]:
    lo = max(ext.offset, start)
    hi = min(ext.offset + ext.length, end)
    if lo >= hi:
        return
    file_offset = None if ext.file_offset is None else ext.file_offset + (lo - ext.offset)
    yield Extent(lo, hi - lo, file_offset)


def open_vhd(fh: BinaryIO) -> VhdDisk:
    """Open a fixed or dynamic VHD; ``CorruptImage`` or ``UnsupportedFormat`` otherwise."""
    file_size = _file_size(fh)
    footer = read_trailing_footer(fh)
    if footer.current_size > ABSURD_SIZE or footer.current_size % SECTOR:
        raise CorruptImage(
            f"footer current size {footer.current_size} is absurd for a VHD",
            offset=file_size - FOOTER_SIZE + 48,
            field="current_size",
        )
    if footer.disk_type == DiskType.fixed:
        if footer.current_size > file_size - FOOTER_SIZE:
            raise CorruptImage(
                f"fixed VHD footer says {footer.current_size} bytes but the file holds only "
                f"{file_size - FOOTER_SIZE} before the footer (truncated file?)",
                offset=file_size - FOOTER_SIZE + 48,
                field="current_size",
            )
        return VhdDisk(fh, footer, file_size)
    if footer.disk_type == DiskType.differencing:
        raise UnsupportedFormat(
            "this is a differencing VHD (it needs its parent); merge it into its parent and "
            "convert the result"
        )
    if footer.disk_type != DiskType.dynamic:
        raise CorruptImage(
            f"footer disk type {footer.disk_type} is not fixed (2), dynamic (3) or "
            "differencing (4)",
            offset=file_size - FOOTER_SIZE + 60,
            field="disk_type",
        )
    header, bat = _read_dynamic_metadata(fh, footer, file_size)
    return VhdDisk(fh, footer, file_size, header, bat)


def _read_dynamic_metadata(
    fh: BinaryIO, footer: Footer, file_size: int
) -> tuple[DynamicHeader, BlockAllocationTable]:
    where = footer.data_offset
    if where > file_size - FOOTER_SIZE - DYNAMIC_HEADER_SIZE:
        raise CorruptImage(
            f"dynamic header offset {where} is beyond the end of the {file_size}-byte file",
            offset=file_size - FOOTER_SIZE + 16,
            field="data_offset",
        )
    header = DynamicHeader.unpack(
        _read_at(fh, where, DYNAMIC_HEADER_SIZE, "dynamic header"), at=where
    )
    bs = header.block_size
    if bs < SECTOR or bs & (bs - 1) or bs > 256 * MIB:
        raise CorruptImage(
            f"block size {bs} is not a power of two between 512 and 256 MiB",
            offset=where + 32,
            field="block_size",
        )
    if header.max_table_entries * bs < footer.current_size:
        raise CorruptImage(
            f"{header.max_table_entries} blocks of {bs} bytes cannot hold the "
            f"{footer.current_size}-byte disk",
            offset=where + 28,
            field="max_table_entries",
        )
    bat_bytes = 4 * header.max_table_entries
    if header.table_offset + bat_bytes > file_size - FOOTER_SIZE:
        raise CorruptImage(
            f"block allocation table ({header.max_table_entries} entries at "
            f"{header.table_offset}) runs past the end of the {file_size}-byte file",
            offset=where + 16,
            field="table_offset",
        )
    bat = BlockAllocationTable.unpack(
        _read_at(fh, header.table_offset, bat_bytes, "BAT"),
        at=header.table_offset,
        count=header.max_table_entries,
    )
    limit = file_size - FOOTER_SIZE - header.bitmap_size - bs
    for index, entry in enumerate(bat.entries):
        if entry != BAT_UNUSED and entry * SECTOR > limit:
            raise CorruptImage(
                f"BAT entry {index} points at byte {entry * SECTOR}, beyond the end of the "
                f"{file_size}-byte file",
                offset=header.table_offset + 4 * index,
                field=f"BAT[{index}]",
            )
    return header, bat


def azure_footer_problems(footer: Footer, file_size: int) -> list[str]:
    """Why Azure would refuse this footer as an uploaded page blob (empty list: it would not).

    Pure, so the ARM server can answer ``InvalidVhd`` at upload end from the blob's last page.
    """
    problems = []
    if footer.cookie != FOOTER_COOKIE:
        problems.append(f"footer cookie is {footer.cookie!r}, expected 'conectix'")
    if not footer.checksum_ok:
        problems.append(
            f"footer checksum {footer.checksum:#010x} should be {footer.computed_checksum:#010x}"
        )
    if footer.disk_type != DiskType.fixed:
        problems.append(f"disk type is {footer.kind}, Azure accepts only fixed VHDs")
    size = footer.current_size
    if size % MIB:
        problems.append(
            f"virtual size {size} is not a whole number of MiB (round up to {round_up_mib(size)})"
        )
    if not AZURE_MIN_SIZE <= size <= AZURE_MAX_SIZE:
        problems.append(
            f"virtual size {size} is outside Azure's {AZURE_MIN_SIZE}..{AZURE_MAX_SIZE} bytes"
        )
    if file_size != size + FOOTER_SIZE:
        problems.append(
            f"file is {file_size} bytes, expected virtual size + 512 = {size + FOOTER_SIZE}"
        )
    return problems
