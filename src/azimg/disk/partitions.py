"""MBR and GPT partition tables, read from a disk's first and last sectors.

Layout first (UEFI 2.10 §5.2 "Legacy MBR", §5.3 "GUID Partition Table"), behaviour after.
The GPT header CRC32 and the entry-array CRC32 are verified; a bad primary GPT falls back to
the backup header at the last LBA (noted in ``problems``), and only when both are bad do we
raise ``CorruptImage``. Sectors are 512 bytes (Azure disks); 4 KiB-sector GPTs are tried
when nothing is found at 512. Extended MBR partitions are followed through their EBR chain,
bounded and loop-checked, and numbered from 5 as Linux does.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from azimg.errors import CorruptImage

SECTOR = 512
MBR_SIGNATURE = b"\x55\xaa"
GPT_SIGNATURE = b"EFI PART"
MAX_GPT_ENTRIES = 1024  # 128 is the norm; more only bloats reads of hostile images
MAX_GPT_ARRAY_BYTES = 1024 * 1024
MAX_LOGICAL_PARTITIONS = 128

# MBR partition entry (16 bytes, little-endian): status, CHS first, type, CHS last, LBA, count.
_MBR_ENTRY = struct.Struct("<B3sB3sII")
# GPT header (92 bytes, little-endian): UEFI 2.10 table 5-5.
_GPT_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")
# GPT partition entry (128 bytes): type GUID, unique GUID, first/last LBA, attributes, name.
_GPT_ENTRY = struct.Struct("<16s16sQQQ72s")

MBR_EXTENDED = frozenset({0x05, 0x0F, 0x85})
MBR_PROTECTIVE = 0xEE

MBR_KINDS = {
    0x00: "empty",
    0x01: "fat",
    0x04: "fat",
    0x06: "fat",
    0x0B: "fat",
    0x0C: "fat",
    0x0E: "fat",
    0x07: "ntfs",
    0x05: "extended",
    0x0F: "extended",
    0x85: "extended",
    0x82: "linux-swap",
    0x83: "linux",
    0x8E: "linux-lvm",
    0xFD: "linux-raid",
    0xA5: "freebsd",
    0xA6: "openbsd",
    0xA9: "netbsd",
    0xEE: "gpt-protective",
    0xEF: "esp",
}

# GPT partition type GUIDs (UEFI 2.10 §5.3.3; the others from their owners' registries), in the
# lower case ``str(uuid.UUID)`` gives. Declared here only: the build, the inspector and the
# rules name them through these constants.
GPT_ESP = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
GPT_BIOS_BOOT = "21686148-6449-6e6f-744e-656564454649"
GPT_LINUX = "0fc63daf-8483-4772-8e79-3d69d8477de4"
GPT_LINUX_SWAP = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"
GPT_LINUX_LVM = "e6d6d379-f507-44c2-a23c-238f2a3df928"
GPT_FREEBSD_BOOT = "83bd6b9d-7f41-11dc-be0b-001560b84f0f"
GPT_FREEBSD_UFS = "516e7cb6-6ecf-11d6-8ff8-00022d09712b"
GPT_FREEBSD_SWAP = "516e7cb5-6ecf-11d6-8ff8-00022d09712b"
GPT_OPENBSD_DATA = "824cc7a0-36a8-11e3-890a-952519ad3f61"
GPT_KINDS = {
    GPT_ESP: "esp",
    GPT_BIOS_BOOT: "bios-boot",
    GPT_LINUX: "linux",
    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "linux-root-x86-64",
    "b921b045-1df0-41c3-af44-4c6f280d3fae": "linux-root-arm64",
    "8484680c-9521-48c6-9c11-b0720656f69e": "linux-usr-x86-64",
    "bc13c2ff-59e6-4262-a352-b275fd6f7172": "linux-xbootldr",
    "933ac7e1-2eb4-4f13-b844-0e14e2aef915": "linux-home",
    GPT_LINUX_SWAP: "linux-swap",
    GPT_LINUX_LVM: "linux-lvm",
    "a19d880f-05fc-4d3b-a006-743f0f84911e": "linux-raid",
    "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "microsoft-basic-data",
    GPT_FREEBSD_BOOT: "freebsd-boot",
    GPT_FREEBSD_UFS: "freebsd-ufs",
    GPT_FREEBSD_SWAP: "freebsd-swap",
    "516e7cba-6ecf-11d6-8ff8-00022d09712b": "freebsd-zfs",
    GPT_OPENBSD_DATA: "openbsd",
    "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6": "flatcar-usr",
    "3884dd41-8582-4404-b9a8-e9b84f2df50e": "flatcar-root",
}


def _read_at(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    return fh.read(length)


@dataclass(frozen=True)
class MbrEntry:
    status: int  # 0x80 = active (bootable)
    type: int
    first_lba: int
    sectors: int
    chs_first: bytes = b"\x00\x00\x00"
    chs_last: bytes = b"\x00\x00\x00"

    @classmethod
    def unpack(cls, raw: bytes) -> MbrEntry:
        status, chs_first, ptype, chs_last, lba, count = _MBR_ENTRY.unpack(raw)
        return cls(status, ptype, lba, count, chs_first, chs_last)

    def pack(self) -> bytes:
        return _MBR_ENTRY.pack(
            self.status, self.chs_first, self.type, self.chs_last, self.first_lba, self.sectors
        )

    @property
    def empty(self) -> bool:
        return self.type == 0 or self.sectors == 0


@dataclass(frozen=True)
class Mbr:
    boot_code: bytes  # bytes 0..439 (GRUB's boot.img lives here)
    disk_signature: int
    entries: tuple[MbrEntry, MbrEntry, MbrEntry, MbrEntry]

    @classmethod
    def unpack(cls, raw: bytes, *, at: int = 0) -> Mbr:
        if len(raw) < SECTOR:
            raise CorruptImage("MBR sector is truncated", offset=at, field="mbr")
        if raw[510:512] != MBR_SIGNATURE:
            raise CorruptImage("no MBR signature 55 AA", offset=at + 510, field="signature")
        (sig,) = struct.unpack_from("<I", raw, 440)
        entries = tuple(MbrEntry.unpack(raw[446 + 16 * i : 462 + 16 * i]) for i in range(4))
        return cls(raw[:440], sig, entries)  # type: ignore[arg-type]

    def pack(self) -> bytes:
        body = self.boot_code.ljust(440, b"\0")[:440] + struct.pack("<I", self.disk_signature)
        body += b"\0\0" + b"".join(e.pack() for e in self.entries)
        return body + MBR_SIGNATURE

    @property
    def has_boot_code(self) -> bool:
        return any(self.boot_code)

    @property
    def protective(self) -> bool:
        """One 0xEE entry: the disk is GPT (a hybrid MBR also lists others; still GPT)."""
        return any(e.type == MBR_PROTECTIVE for e in self.entries if not e.empty)


@dataclass(frozen=True)
class GptHeader:
    revision: int
    header_size: int
    header_crc32: int
    my_lba: int
    alternate_lba: int
    first_usable_lba: int
    last_usable_lba: int
    disk_guid: uuid.UUID
    entries_lba: int
    num_entries: int
    entry_size: int
    entries_crc32: int

    @classmethod
    def unpack(cls, raw: bytes, *, at: int) -> GptHeader:
        """Parse and verify the header CRC32 (over ``header_size`` bytes, CRC field zeroed)."""
        if len(raw) < _GPT_HEADER.size:
            raise CorruptImage("GPT header is truncated", offset=at, field="header")
        f = _GPT_HEADER.unpack_from(raw)
        if f[0] != GPT_SIGNATURE:
            raise CorruptImage("no GPT signature 'EFI PART'", offset=at, field="signature")
        header_size = f[2]
        if not _GPT_HEADER.size <= header_size <= len(raw):
            raise CorruptImage(
                f"GPT header size {header_size} is invalid", offset=at + 12, field="header_size"
            )
        body = bytearray(raw[:header_size])
        body[16:20] = b"\0\0\0\0"
        if zlib.crc32(body) != f[3]:
            raise CorruptImage("GPT header CRC32 mismatch", offset=at + 16, field="header_crc32")
        hdr = cls(
            revision=f[1],
            header_size=header_size,
            header_crc32=f[3],
            my_lba=f[5],
            alternate_lba=f[6],
            first_usable_lba=f[7],
            last_usable_lba=f[8],
            disk_guid=uuid.UUID(bytes_le=f[9]),
            entries_lba=f[10],
            num_entries=f[11],
            entry_size=f[12],
            entries_crc32=f[13],
        )
        if hdr.entry_size < _GPT_ENTRY.size or hdr.entry_size % 8:
            raise CorruptImage(
                f"GPT entry size {hdr.entry_size} is invalid", offset=at + 84, field="entry_size"
            )
        if (
            hdr.num_entries > MAX_GPT_ENTRIES
            or hdr.num_entries * hdr.entry_size > MAX_GPT_ARRAY_BYTES
        ):
            raise CorruptImage(
                f"GPT claims {hdr.num_entries} entries", offset=at + 80, field="num_entries"
            )
        return hdr

    def pack(self) -> bytes:
        """The 92-byte header with its CRC32 recomputed."""

        def build(crc: int) -> bytes:
            return _GPT_HEADER.pack(
                GPT_SIGNATURE,
                self.revision,
                _GPT_HEADER.size,
                crc,
                0,
                self.my_lba,
                self.alternate_lba,
                self.first_usable_lba,
                self.last_usable_lba,
                self.disk_guid.bytes_le,
                self.entries_lba,
                self.num_entries,
                self.entry_size,
                self.entries_crc32,
            )

        return build(zlib.crc32(build(0)))


@dataclass(frozen=True)
class GptEntry:
    type_guid: uuid.UUID
    unique_guid: uuid.UUID
    first_lba: int
    last_lba: int
    attributes: int
    name: str

    @classmethod
    def unpack(cls, raw: bytes) -> GptEntry:
        tg, ug, first, last, attrs, name = _GPT_ENTRY.unpack_from(raw)
        text = name.decode("utf-16-le", "replace").split("\0", 1)[0]
        return cls(uuid.UUID(bytes_le=tg), uuid.UUID(bytes_le=ug), first, last, attrs, text)

    def pack(self) -> bytes:
        name = self.name.encode("utf-16-le")[:72].ljust(72, b"\0")
        return _GPT_ENTRY.pack(
            self.type_guid.bytes_le,
            self.unique_guid.bytes_le,
            self.first_lba,
            self.last_lba,
            self.attributes,
            name,
        )

    @property
    def empty(self) -> bool:
        return self.type_guid.int == 0


@dataclass(frozen=True)
class Partition:
    """One partition as Linux numbers it (sda1 → 1; MBR logical partitions from 5)."""

    number: int
    start: int  # bytes from the start of the disk
    size: int  # bytes
    type: str  # "0x83" (MBR) or a lower-case GUID (GPT)
    kind: str  # esp, bios-boot, linux, linux-swap, … or "unknown"
    bootable: bool  # MBR active flag, or GPT attribute bit 2 (legacy BIOS bootable)
    name: str = ""  # GPT partition name
    uuid: str | None = None  # GPT unique partition GUID (PARTUUID)

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class PartitionTable:
    scheme: str  # "gpt", "mbr" or "none" (no table: a bare filesystem or an empty disk)
    sector_size: int
    mbr: Mbr | None
    gpt: GptHeader | None  # the header in use (primary, or backup when the primary is bad)
    partitions: tuple[Partition, ...]
    problems: tuple[str, ...] = ()  # non-fatal: backup GPT missing/misplaced, entries past the end

    @property
    def esp(self) -> Partition | None:
        return next((p for p in self.partitions if p.kind == "esp"), None)

    @property
    def bios_boot(self) -> Partition | None:
        return next((p for p in self.partitions if p.kind == "bios-boot"), None)


def _read_gpt_at(fh: BinaryIO, lba: int, sector: int, disk_size: int) -> tuple[GptHeader, bytes]:
    at = lba * sector
    hdr = GptHeader.unpack(_read_at(fh, at, sector), at=at)
    length = hdr.num_entries * hdr.entry_size
    array_at = hdr.entries_lba * sector
    if array_at + length > disk_size:
        raise CorruptImage(
            "GPT entry array lies past the disk end", offset=at + 72, field="entries_lba"
        )
    array = _read_at(fh, array_at, length)
    if len(array) < length:
        raise CorruptImage("GPT entry array is truncated", offset=array_at, field="entries")
    if zlib.crc32(array) != hdr.entries_crc32:
        raise CorruptImage("GPT entry array CRC32 mismatch", offset=at + 88, field="entries_crc32")
    return hdr, array


def _gpt_partitions(
    hdr: GptHeader, array: bytes, sector: int, disk_size: int, problems: list[str]
) -> list[Partition]:
    parts: list[Partition] = []
    for i in range(hdr.num_entries):
        entry = GptEntry.unpack(array[i * hdr.entry_size : i * hdr.entry_size + _GPT_ENTRY.size])
        if entry.empty:
            continue
        if entry.last_lba < entry.first_lba:
            raise CorruptImage(
                f"GPT entry {i + 1} ends before it starts",
                offset=hdr.entries_lba * sector + i * hdr.entry_size + 32,
                field="last_lba",
            )
        start = entry.first_lba * sector
        size = (entry.last_lba - entry.first_lba + 1) * sector
        if start + size > disk_size:
            problems.append(f"partition {i + 1} extends past the end of the disk")
        guid = str(entry.type_guid)
        parts.append(
            Partition(
                number=i + 1,
                start=start,
                size=size,
                type=guid,
                kind=GPT_KINDS.get(guid, "unknown"),
                bootable=bool(entry.attributes & (1 << 2)),
                name=entry.name,
                uuid=str(entry.unique_guid),
            )
        )
    return parts


def _read_gpt(
    fh: BinaryIO, sector: int, disk_size: int, problems: list[str]
) -> tuple[GptHeader, list[Partition]] | None:
    last_lba = disk_size // sector - 1
    primary_error: CorruptImage | None = None
    try:
        hdr, array = _read_gpt_at(fh, 1, sector, disk_size)
    except CorruptImage as exc:
        primary_error = exc
    else:
        if hdr.alternate_lba != last_lba:
            problems.append(
                f"backup GPT header is at LBA {hdr.alternate_lba}, not at the last LBA {last_lba}"
            )
        if hdr.alternate_lba * sector < disk_size:
            try:
                _read_gpt_at(fh, hdr.alternate_lba, sector, disk_size)
            except CorruptImage as exc:
                problems.append(f"backup GPT header is unusable: {exc}")
        else:
            problems.append("backup GPT header lies past the end of the disk")
        return hdr, _gpt_partitions(hdr, array, sector, disk_size, problems)
    if _read_at(fh, sector, 8) != GPT_SIGNATURE:
        return None  # no GPT at this sector size at all
    try:
        hdr, array = _read_gpt_at(fh, last_lba, sector, disk_size)
    except CorruptImage:
        raise primary_error from None
    problems.append(f"primary GPT is bad ({primary_error}); read the backup at LBA {last_lba}")
    return hdr, _gpt_partitions(hdr, array, sector, disk_size, problems)


def _mbr_partitions(fh: BinaryIO, mbr: Mbr, disk_size: int, problems: list[str]) -> list[Partition]:
    parts: list[Partition] = []
    for i, e in enumerate(mbr.entries):
        if e.empty:
            continue
        parts.append(_mbr_partition(i + 1, e, 0, disk_size, problems))
        if e.type in MBR_EXTENDED:
            parts.extend(_logical_partitions(fh, e.first_lba, disk_size, problems))
    return parts


def _mbr_partition(
    number: int, e: MbrEntry, base_lba: int, disk_size: int, problems: list[str]
) -> Partition:
    start = (base_lba + e.first_lba) * SECTOR
    size = e.sectors * SECTOR
    if start + size > disk_size:
        problems.append(f"partition {number} extends past the end of the disk")
    return Partition(
        number=number,
        start=start,
        size=size,
        type=f"0x{e.type:02x}",
        kind=MBR_KINDS.get(e.type, "unknown"),
        bootable=e.status == 0x80,
    )


def _logical_partitions(
    fh: BinaryIO, ext_lba: int, disk_size: int, problems: list[str]
) -> list[Partition]:
    """Walk the EBR chain: each EBR holds one logical partition and a link to the next."""
    parts: list[Partition] = []
    seen: set[int] = set()
    ebr_lba = ext_lba
    while len(parts) < MAX_LOGICAL_PARTITIONS:
        if ebr_lba in seen:
            raise CorruptImage("loop in the extended partition chain", offset=ebr_lba * SECTOR)
        seen.add(ebr_lba)
        if (ebr_lba + 1) * SECTOR > disk_size:
            raise CorruptImage("extended boot record past the disk end", offset=ebr_lba * SECTOR)
        ebr = Mbr.unpack(_read_at(fh, ebr_lba * SECTOR, SECTOR), at=ebr_lba * SECTOR)
        first, link = ebr.entries[0], ebr.entries[1]
        if not first.empty:
            parts.append(_mbr_partition(5 + len(parts), first, ebr_lba, disk_size, problems))
        if link.empty:
            return parts
        ebr_lba = ext_lba + link.first_lba
    problems.append(f"more than {MAX_LOGICAL_PARTITIONS} logical partitions; stopped reading")
    return parts


def read_partition_table(fh: BinaryIO, disk_size: int | None = None) -> PartitionTable:
    """Read the partition table of a disk (a binary file object over the virtual disk)."""
    if disk_size is None:
        disk_size = fh.seek(0, 2)
    lba0 = _read_at(fh, 0, SECTOR)
    if len(lba0) < SECTOR or lba0[510:512] != MBR_SIGNATURE:
        # No MBR: maybe a GPT without a protective MBR (invalid, but readable), else nothing.
        for sector in (SECTOR, 4096):
            problems: list[str] = []
            found = _read_gpt(fh, sector, disk_size, problems)
            if found:
                problems.insert(0, "GPT without a protective MBR")
                return PartitionTable(
                    "gpt", sector, None, found[0], tuple(found[1]), tuple(problems)
                )
        return PartitionTable("none", SECTOR, None, None, ())
    mbr = Mbr.unpack(lba0)
    if any(e.status not in (0, 0x80) for e in mbr.entries if not e.empty):
        # A boot sector (FAT volume, bootloader) rather than a partition table: the kernel
        # applies the same test before trusting the entries.
        return PartitionTable("none", SECTOR, mbr, None, ())
    problems = []
    if mbr.protective:
        for sector in (SECTOR, 4096):
            found = _read_gpt(fh, sector, disk_size, problems)
            if found:
                return PartitionTable(
                    "gpt", sector, mbr, found[0], tuple(found[1]), tuple(problems)
                )
        raise CorruptImage("protective MBR but no GPT header", offset=SECTOR, field="signature")
    parts = _mbr_partitions(fh, mbr, disk_size, problems)
    if not parts and _read_at(fh, SECTOR, 8) == GPT_SIGNATURE:
        found = _read_gpt(fh, SECTOR, disk_size, problems)
        if found:
            problems.insert(0, "GPT behind an MBR without a protective entry")
            return PartitionTable("gpt", SECTOR, mbr, found[0], tuple(found[1]), tuple(problems))
    if not parts:
        # An MBR signature with no entries: a bare FAT volume's boot sector, or an empty disk.
        return PartitionTable("none", SECTOR, mbr, None, ())
    return PartitionTable("mbr", SECTOR, mbr, None, tuple(parts), tuple(problems))
