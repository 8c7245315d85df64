"""Initramfs listing against archives made by the real cpio and compressed by the real tools."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from azimg.errors import CorruptImage
from azimg.image.initramfs import read_initramfs

KVER = "6.1.0-28-cloud-amd64"
COMPRESSORS = {
    "gzip": ["gzip", "-9", "-n"],
    "xz": ["xz", "--check=crc32", "-T1"],
    "zstd": ["zstd", "-q", "-19", "-T1"],
    "lz4": ["lz4", "-q", "-l", "-9"],
    "bzip2": ["bzip2", "-9"],
    "lzma": ["xz", "--format=lzma"],
}


def make_root(root: Path, *, modules: dict[str, str]) -> Path:
    """A miniature initramfs-tools tree: init, busybox-ish files, modules, modules.builtin."""
    (root / "scripts").mkdir(parents=True)
    (root / "init").write_text("#!/bin/sh\nexec run-init\n")
    (root / "bin").mkdir()
    (root / "bin/busybox").write_bytes(os.urandom(200_000))
    mod = root / "usr/lib/modules" / KVER
    for rel, ext in modules.items():
        path = mod / "kernel" / f"{rel}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(3000))
    mod.mkdir(parents=True, exist_ok=True)
    (mod / "modules.builtin").write_text("kernel/drivers/scsi/sd_mod.ko\nkernel/fs/ext4/ext4.ko\n")
    (root / "lib").symlink_to("usr/lib")
    return root


def cpio(root: Path, fmt: str = "newc") -> bytes:
    names = subprocess.run(
        "find . | LC_ALL=C sort", shell=True, cwd=root, capture_output=True, check=True
    ).stdout
    return subprocess.run(
        ["cpio", "--quiet", "-o", "-H", fmt, "--owner=0:0"],
        cwd=root,
        input=names,
        capture_output=True,
        check=True,
    ).stdout


def compress(data: bytes, kind: str) -> bytes:
    return subprocess.run(COMPRESSORS[kind], input=data, capture_output=True, check=True).stdout


HV_ALL = {
    "drivers/hv/hv_vmbus": ".ko",
    "drivers/scsi/hv_storvsc": ".ko.xz",
    "drivers/net/hyperv/hv_netvsc": ".ko.zst",
    "drivers/hid/hid-hyperv": ".ko",
}


@pytest.fixture(scope="session")
def main_cpio(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return cpio(make_root(tmp_path_factory.mktemp("initrd") / "root", modules=HV_ALL))


@pytest.fixture(scope="session")
def microcode_cpio(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("ucode") / "root"
    (root / "kernel/x86/microcode").mkdir(parents=True)
    (root / "kernel/x86/microcode/GenuineIntel.bin").write_bytes(os.urandom(10_001))
    return cpio(root)


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_debian_layout_microcode_then_compressed_main(
    kind: str, main_cpio: bytes, microcode_cpio: bytes
) -> None:
    image = microcode_cpio + compress(main_cpio, kind)
    info = read_initramfs(image)
    assert [(s.compression, s.offset) for s in info.segments] == [
        ("none", 0),
        (kind, len(microcode_cpio)),
    ]
    assert info.compression == kind
    assert info.segments[1].unpacked == len(main_cpio)
    assert "kernel/x86/microcode/GenuineIntel.bin" in info.files
    assert f"usr/lib/modules/{KVER}/kernel/drivers/scsi/hv_storvsc.ko.xz" in info.files
    assert info.hv_drivers == {"hv_vmbus": True, "hv_storvsc": True, "hv_netvsc": True}
    assert info.modules == {"hv_vmbus", "hv_storvsc", "hv_netvsc", "hid_hyperv"}
    assert info.builtin == {"sd_mod", "ext4"}
    assert info.has_module("sd_mod") and info.has_module("hid-hyperv")
    assert info.kernel_versions == (KVER,)


def test_uncompressed_and_odc_archives(main_cpio: bytes, tmp_path: Path) -> None:
    assert read_initramfs(main_cpio).segments[0].compression == "none"
    odc = cpio(make_root(tmp_path / "root", modules=HV_ALL), "odc")
    info = read_initramfs(odc)
    assert info.hv_drivers["hv_vmbus"] and info.builtin == {"sd_mod", "ext4"}


def test_missing_hyperv_drivers_are_reported_absent(tmp_path: Path, microcode_cpio: bytes) -> None:
    root = make_root(tmp_path / "root", modules={"drivers/virtio/virtio_blk": ".ko"})
    info = read_initramfs(microcode_cpio + compress(cpio(root), "zstd"))
    assert info.hv_drivers == {"hv_vmbus": False, "hv_storvsc": False, "hv_netvsc": False}
    assert info.modules == {"virtio_blk"}


def test_padding_and_several_compressed_segments(main_cpio: bytes, microcode_cpio: bytes) -> None:
    padded = microcode_cpio + bytes(-len(microcode_cpio) % 512)
    image = padded + compress(main_cpio, "gzip") + bytes(8) + compress(microcode_cpio, "xz")
    info = read_initramfs(image)
    assert [s.compression for s in info.segments] == ["none", "gzip", "xz"]
    assert info.files.count("kernel/x86/microcode/GenuineIntel.bin") == 2


def test_file_object_input(main_cpio: bytes, tmp_path: Path) -> None:
    path = tmp_path / "initrd.img"
    path.write_bytes(compress(main_cpio, "zstd"))
    with open(path, "rb") as fh:
        assert read_initramfs(fh).hv_drivers["hv_netvsc"]


@pytest.mark.parametrize("kind", ["gzip", "xz", "zstd", "lz4", "bzip2"])
def test_truncated_compressed_segment_is_corrupt(kind: str, main_cpio: bytes) -> None:
    data = compress(main_cpio, kind)
    with pytest.raises(CorruptImage):
        read_initramfs(data[: len(data) // 2])


def test_garbage_is_corrupt(main_cpio: bytes) -> None:
    with pytest.raises(CorruptImage, match="neither cpio nor known compression"):
        read_initramfs(b"\x7fELF" + bytes(100))
    broken = bytearray(main_cpio)
    broken[200:206] = b"zzzzzz"
    with pytest.raises(CorruptImage):
        read_initramfs(bytes(broken))


def test_unpacked_size_is_capped(main_cpio: bytes) -> None:
    bomb = compress(main_cpio * 20, "zstd")
    with pytest.raises(CorruptImage, match="bomb"):
        read_initramfs(bomb, max_unpacked=len(main_cpio))


def test_zstd_frames_back_to_back_are_one_stream(main_cpio: bytes, microcode_cpio: bytes) -> None:
    """A cpio split across two zstd frames (pzstd-style output) still lists completely."""
    cut = len(main_cpio) // 3  # mid-entry
    image = microcode_cpio + compress(main_cpio[:cut], "zstd") + compress(main_cpio[cut:], "zstd")
    info = read_initramfs(image)
    assert [s.compression for s in info.segments] == ["none", "zstd"]
    assert info.hv_drivers == {"hv_vmbus": True, "hv_storvsc": True, "hv_netvsc": True}
    assert info.builtin == {"sd_mod", "ext4"}
