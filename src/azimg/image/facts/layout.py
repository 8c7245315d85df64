"""What the partition table and the ESP say (filled by ``image/check.py`` from the disk readers).

Partition types are kept as the inspector reports them: a GPT type GUID in upper case or an MBR
type byte as ``0x83``. The GUIDs themselves are declared once, in ``azimg.disk.partitions``.
"""

from __future__ import annotations

from dataclasses import dataclass

from azimg.disk.partitions import GPT_BIOS_BOOT, GPT_ESP, GPT_FREEBSD_SWAP, GPT_LINUX_SWAP


@dataclass(frozen=True)
class PartitionInfo:
    index: int  # 1-based, as Linux names them
    scheme: str  # "mbr" | "gpt"
    start: int  # bytes
    size: int  # bytes
    type: str  # GPT type GUID (upper case) or MBR type byte as "0x83"
    bootable: bool = False  # MBR active flag or GPT legacy-BIOS-bootable attribute
    filesystem: str | None = None  # "ext4", "xfs", "vfat", "swap", "ufs", ... or None
    fs_uuid: str | None = None
    fs_label: str | None = None
    part_uuid: str | None = None  # GPT unique partition GUID or MBR "<disk-id>-<nn>"
    error: str | None = None  # why the filesystem could not be read

    def has_type(self, *types: str) -> bool:
        """The type is one of ``types`` (GPT GUIDs compare in any case, MBR bytes as ``0x83``)."""
        return self.type.upper() in {t.upper() for t in types}

    @property
    def is_esp(self) -> bool:
        return self.has_type(GPT_ESP, "0xEF")

    @property
    def is_bios_boot(self) -> bool:
        return self.has_type(GPT_BIOS_BOOT)

    @property
    def is_swap(self) -> bool:
        return self.has_type(GPT_LINUX_SWAP, GPT_FREEBSD_SWAP, "0x82") or (
            self.filesystem == "swap"
        )


BSD_MBR_TYPES = ("0xA5", "0xA6", "0xA9")  # FreeBSD, OpenBSD, NetBSD slices


@dataclass(frozen=True)
class DiskLayout:
    """The partition table, the MBR boot code and what the ESP holds."""

    size: int  # virtual disk size in bytes
    scheme: str  # "gpt" | "mbr" | "none"
    partitions: tuple[PartitionInfo, ...] = ()
    mbr_boot_code: bool = False  # bytes 0..439 of LBA0 are not all zero
    mbr_boot_code_grub: bool = False  # ... and contain GRUB's boot.img text "GRUB"
    esp_files: tuple[str, ...] = ()  # upper-cased paths under \EFI\BOOT on the ESP(s)
    esp_error: str | None = None
    table_error: str | None = None  # why no valid table was found (PT-01)
    table_problems: tuple[str, ...] = ()  # non-fatal: backup GPT missing or misplaced, ...

    @property
    def esps(self) -> tuple[PartitionInfo, ...]:
        return tuple(p for p in self.partitions if p.is_esp)
