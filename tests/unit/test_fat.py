"""FAT12/16/32 reader against volumes made by mkfs.vfat and filled by mcopy."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from azimg.disk.fat import FatFS
from azimg.disk.guestfs import GuestFS, exists
from azimg.errors import CorruptImage

LONG = "a file with a Long Name and spaces.conf"


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def payload(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return {
        "EFI/BOOT/BOOTX64.EFI": os.urandom(900_000),
        "EFI/debian/grub.cfg": b"search.fs_uuid 1234 root\nconfigfile $prefix/grub.cfg\n",
        "EFI/debian/shimx64.efi": os.urandom(5000),
        f"EFI/debian/{LONG}": b"long name content\n",
        "EFI/debian/lower.txt": b"lower case short name\n",
        "startup.nsh": b"",
    }


def build(tmp: Path, bits: int, size_kib: int, payload: dict[str, bytes]) -> Path:
    image = tmp / f"fat{bits}.img"
    run("mkfs.vfat", "-C", "-F", str(bits), "-n", "ESP", str(image), str(size_kib))
    src = tmp / f"src{bits}"
    for rel, data in payload.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    run("mcopy", "-s", "-i", str(image), str(src / "EFI"), str(src / "startup.nsh"), "::/")
    # Many entries in one directory: the directory spans several clusters.
    many = src / "many"
    many.mkdir()
    for i in range(150):
        (many / f"entry-number-{i:03d}.txt").write_text(str(i))
    run("mcopy", "-s", "-i", str(image), str(many), "::/")
    return image


@pytest.fixture(
    scope="session", params=[(12, 4096), (16, 32768), (32, 65536)], ids=["fat12", "fat16", "fat32"]
)
def volume(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, payload):
    bits, size = request.param
    image = build(tmp_path_factory.mktemp(f"fat{bits}"), bits, size, payload)
    with open(image, "rb") as fh:
        yield bits, fh


def test_type_is_detected_from_cluster_count(volume) -> None:
    bits, fh = volume
    fs = FatFS(fh)
    assert isinstance(fs, GuestFS)
    assert fs.fat_bits == bits


def test_files_read_back_exactly(volume, payload: dict[str, bytes]) -> None:
    _bits, fh = volume
    fs = FatFS(fh)
    for rel, data in payload.items():
        assert fs.read_file("/" + rel) == data, rel
    assert fs.lstat("/EFI/BOOT/BOOTX64.EFI").size == 900_000
    assert fs.lstat("/EFI").is_dir


def test_long_names_and_case_insensitive_lookup(volume) -> None:
    _bits, fh = volume
    fs = FatFS(fh)
    assert LONG in fs.listdir("/EFI/debian")
    assert "lower.txt" in fs.listdir("/EFI/debian")
    assert set(fs.listdir("/")) == {"EFI", "startup.nsh", "many"}
    assert (
        fs.read_file("/efi/boot/bootx64.efi", limit=4) == fs.read_file("/EFI/BOOT/BOOTX64.EFI")[:4]
    )
    assert exists(fs, "/EFI/DEBIAN/GRUB.CFG")
    assert len(fs.listdir("/many")) == 150
    assert fs.read_file("/many/entry-number-149.txt") == b"149"


def test_missing_and_wrong_kinds(volume) -> None:
    _bits, fh = volume
    fs = FatFS(fh)
    with pytest.raises(FileNotFoundError):
        fs.read_file("/EFI/BOOT/BOOTAA64.EFI")
    with pytest.raises(IsADirectoryError):
        fs.read_file("/EFI")
    with pytest.raises(NotADirectoryError):
        fs.listdir("/startup.nsh")


def test_cluster_chain_loop_is_corrupt(tmp_path: Path, payload) -> None:
    image = build(tmp_path, 16, 32768, payload)
    with open(image, "rb") as fh:
        fs = FatFS(fh)
        fs.listdir("/EFI/BOOT")
        node = fs._nodes[fs._walk("/EFI/BOOT/BOOTX64.EFI", follow_last=True)]
        fat_at = fs._fat_offset
    # Point the file's second cluster back at its first, in every FAT copy.
    with open(image, "r+b") as fh:
        fh.seek(fat_at + node.cluster * 2)
        (second,) = struct.unpack("<H", fh.read(2))
        fh.seek(fat_at + second * 2)
        fh.write(node.cluster.to_bytes(2, "little"))
    with open(image, "rb") as fh, pytest.raises(CorruptImage, match="loop"):
        FatFS(fh).read_file("/EFI/BOOT/BOOTX64.EFI")


def test_not_fat_is_corrupt(tmp_path: Path) -> None:
    blob = tmp_path / "zero.img"
    blob.write_bytes(bytes(4096))
    with open(blob, "rb") as fh, pytest.raises(CorruptImage, match="BPB_BytsPerSec"):
        FatFS(fh)
