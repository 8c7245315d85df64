"""MBR and GPT reading against tables written by the real sfdisk."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest

from azimg.disk.partitions import (
    GPT_BIOS_BOOT,
    GPT_ESP,
    GptHeader,
    Mbr,
    MbrEntry,
    read_partition_table,
)
from azimg.errors import CorruptImage

MiB = 1024 * 1024


def sfdisk(image: Path, script: str, size: int = 64 * MiB) -> Path:
    with open(image, "wb") as fh:
        fh.truncate(size)
    subprocess.run(
        ["sfdisk", "-q", str(image)], input=script, text=True, check=True, capture_output=True
    )
    return image


def dump(image: Path) -> str:
    return subprocess.run(
        ["sfdisk", "-d", str(image)], capture_output=True, text=True, check=True
    ).stdout


GPT_SCRIPT = (
    "label: gpt\n"
    f"size=1M, type={GPT_BIOS_BOOT.upper()}, name=bios\n"
    f"size=8M, type={GPT_ESP.upper()}, name=EFI\n"
    "size=8M, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F\n"
    "type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\n"
)


def read(image: Path):
    with open(image, "rb") as fh:
        return read_partition_table(fh)


def test_gpt_entries_kinds_and_guids(tmp_path: Path) -> None:
    image = sfdisk(tmp_path / "gpt.raw", GPT_SCRIPT)
    table = read(image)
    assert table.scheme == "gpt"
    assert table.mbr is not None and table.mbr.protective
    assert [p.kind for p in table.partitions] == ["bios-boot", "esp", "linux-swap", "linux"]
    assert [p.name for p in table.partitions] == ["bios", "EFI", "", "root"]
    assert table.esp is table.partitions[1] and table.bios_boot is table.partitions[0]
    assert table.partitions[0].start == 2048 * 512
    assert table.partitions[1].size == 8 * MiB
    text = dump(image)
    for p in table.partitions:
        assert f"uuid={p.uuid.upper()}" in text
    assert f"label-id: {str(table.gpt.disk_guid).upper()}" in text
    assert table.problems == ()


def test_mbr_with_logical_partitions_and_boot_flag(tmp_path: Path) -> None:
    script = (
        "label: dos\nsize=8M, type=83, bootable\nsize=8M, type=82\n"
        "type=5\nsize=4M, type=83\nsize=4M, type=8e\n"
    )
    table = read(sfdisk(tmp_path / "mbr.raw", script))
    assert table.scheme == "mbr"
    assert [(p.number, p.kind) for p in table.partitions] == [
        (1, "linux"),
        (2, "linux-swap"),
        (3, "extended"),
        (5, "linux"),
        (6, "linux-lvm"),
    ]
    assert table.partitions[0].bootable and not table.partitions[1].bootable
    assert table.partitions[3].size == 4 * MiB
    text = dump(tmp_path / "mbr.raw")
    assert re.search(rf"mbr.raw6 : start=\s+{table.partitions[4].start // 512},", text)


def test_bad_primary_gpt_falls_back_to_backup(tmp_path: Path) -> None:
    image = sfdisk(tmp_path / "gpt.raw", GPT_SCRIPT)
    with open(image, "r+b") as fh:
        fh.seek(512 + 40)  # first_usable_lba inside the CRC-covered header
        fh.write(b"\xff")
    table = read(image)
    assert [p.kind for p in table.partitions] == ["bios-boot", "esp", "linux-swap", "linux"]
    assert any("primary GPT is bad" in p and "header_crc32" in p for p in table.problems)


def test_both_gpt_headers_bad_is_corrupt(tmp_path: Path) -> None:
    image = sfdisk(tmp_path / "gpt.raw", GPT_SCRIPT)
    size = image.stat().st_size
    with open(image, "r+b") as fh:
        for at in (512 + 40, size - 512 + 40):
            fh.seek(at)
            fh.write(b"\xff")
    with pytest.raises(CorruptImage, match="header CRC32"):
        read(image)


def test_entry_array_crc_is_verified(tmp_path: Path) -> None:
    image = sfdisk(tmp_path / "gpt.raw", GPT_SCRIPT)
    size = image.stat().st_size
    with open(image, "r+b") as fh:
        fh.seek(1024 + 56)  # the name of entry 1 in the primary array
        fh.write(b"X")
        fh.seek(size - 33 * 512 + 56)  # and in the backup array
        fh.write(b"X")
    with pytest.raises(CorruptImage, match="entry array CRC32"):
        read(image)


def test_grown_disk_reports_misplaced_backup_header(tmp_path: Path) -> None:
    image = sfdisk(tmp_path / "gpt.raw", GPT_SCRIPT)
    with open(image, "r+b") as fh:
        fh.truncate(96 * MiB)  # a raw resize: the backup stays mid-disk
    table = read(image)
    assert any("backup GPT header is at LBA" in p for p in table.problems)


def test_no_table_and_boot_sector_are_scheme_none(tmp_path: Path) -> None:
    blank = tmp_path / "blank.raw"
    blank.write_bytes(bytes(4 * MiB))
    assert read(blank).scheme == "none"
    vfat = tmp_path / "fat.raw"
    vfat.write_bytes(bytes(4 * MiB))
    subprocess.run(["mkfs.vfat", str(vfat)], check=True, capture_output=True)
    assert read(vfat).scheme == "none"


def test_extended_partition_loop_is_corrupt(tmp_path: Path) -> None:
    image = sfdisk(tmp_path / "mbr.raw", "label: dos\ntype=5\nsize=4M, type=83\nsize=4M, type=83\n")
    table = read(image)
    ext_lba = table.partitions[0].start // 512
    with open(image, "r+b") as fh:
        second_ebr = ext_lba + Mbr.unpack(_sector(fh, ext_lba)).entries[1].first_lba
        ebr = Mbr.unpack(_sector(fh, second_ebr))
        link_back = MbrEntry(0, 0x05, 0, 8)  # points at the first EBR again
        fh.seek(second_ebr * 512)
        fh.write(Mbr(ebr.boot_code, 0, (ebr.entries[0], link_back, *ebr.entries[2:])).pack())
    with pytest.raises(CorruptImage, match="loop"):
        read(image)


def _sector(fh, lba: int) -> bytes:
    fh.seek(lba * 512)
    return fh.read(512)


def test_gpt_header_round_trip_recomputes_crc(tmp_path: Path) -> None:
    image = sfdisk(tmp_path / "gpt.raw", GPT_SCRIPT)
    with open(image, "rb") as fh:
        raw = _sector(fh, 1)
    hdr = GptHeader.unpack(raw, at=512)
    assert hdr.pack() == raw[:92]
    changed = GptHeader(**{**hdr.__dict__, "disk_guid": uuid.UUID(int=1)})
    assert GptHeader.unpack(changed.pack().ljust(512, b"\0"), at=0).disk_guid == uuid.UUID(int=1)
