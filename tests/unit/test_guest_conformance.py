"""Differential test: each reader over a real filesystem must agree with DirectoryFS over the
tree the filesystem was made from — names, types, modes, sizes, owners, link targets, bytes."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from azimg.disk.ext4 import Ext4FS
from azimg.disk.fat import FatFS
from azimg.disk.guestfs import DirectoryFS, GuestFS
from azimg.disk.xfs import XfsFS
from tests.unit.test_xfs import protofile

SIZES = (0, 1, 59, 60, 61, 1023, 1024, 1025, 4095, 4096, 4097, 65536, 1_048_577)


def build(root: Path, *, links: bool = True) -> Path:
    rng = random.Random(5)
    for i, size in enumerate(SIZES):
        d = root / f"level{i % 3}" / f"sub{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file-{size}.bin").write_bytes(rng.randbytes(size))
    (root / "ünïcødé-名前").mkdir()
    (root / "ünïcødé-名前" / "ça.txt").write_text("unicode names\n")
    (root / "empty-dir").mkdir()
    if links:
        (root / "rel").symlink_to("level0/sub0")
        (root / "abs").symlink_to("/level1/sub1/file-1.bin")
        (root / "dangling").symlink_to("nowhere/at/all")
        (root / "self").symlink_to("self")
        (root / "long").symlink_to("/" + "x" * 200 + "/" + "y" * 300)
        secret = root / "level2" / "secret"
        secret.write_text("s\n")
        os.chmod(secret, 0o4750)
        os.chown(secret, 1234, 5678)
    return root


def compare(fs: GuestFS, ref: DirectoryFS, *, owners: bool = True, modes: bool = True) -> int:
    checked = 0
    todo = ["/"]
    while todo:
        path = todo.pop()
        want = [n for n in ref.listdir(path) if n != "lost+found"]
        got = [n for n in fs.listdir(path) if n != "lost+found"]
        assert got == want, path
        for name in want:
            child = path.rstrip("/") + "/" + name
            a, b = fs.lstat(child), ref.lstat(child)
            assert (a.is_dir, a.is_file, a.is_symlink) == (b.is_dir, b.is_file, b.is_symlink), child
            if modes:
                assert a.mode == b.mode, child
            if owners:
                assert (a.uid, a.gid) == (b.uid, b.gid), child
            if b.is_symlink:
                assert fs.readlink(child) == ref.readlink(child), child
            elif b.is_dir:
                todo.append(child)
            else:
                assert a.size == b.size, child
                assert fs.read_file(child) == ref.read_file(child), child
            checked += 1
    return checked


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("conform") / "root")


def test_ext4_agrees_with_the_source_tree(tree: Path, tmp_path: Path) -> None:
    image = tmp_path / "fs.img"
    subprocess.run(
        ["mkfs.ext4", "-q", "-d", str(tree), str(image), "32M"], check=True, capture_output=True
    )
    with open(image, "rb") as fh:
        assert compare(Ext4FS(fh), DirectoryFS(tree)) > 20


def test_xfs_agrees_with_the_source_tree(tree: Path, tmp_path: Path) -> None:
    proto = tmp_path / "proto"
    proto.write_text(protofile(tree))
    image = tmp_path / "fs.img"
    with open(image, "wb") as fh:
        fh.truncate(300 * 1024 * 1024)
    subprocess.run(
        ["mkfs.xfs", "-q", "-f", "-p", str(proto), str(image)], check=True, capture_output=True
    )
    with open(image, "rb") as fh:
        assert compare(XfsFS(fh), DirectoryFS(tree)) > 20


def test_fat_agrees_with_the_source_tree(tmp_path: Path) -> None:
    tree = build(tmp_path / "root", links=False)
    image = tmp_path / "esp.img"
    subprocess.run(["mkfs.vfat", "-C", str(image), "16384"], check=True, capture_output=True)
    items = [str(p) for p in sorted(tree.iterdir())]
    subprocess.run(
        ["mcopy", "-s", "-i", str(image), *items, "::/"], check=True, capture_output=True
    )
    with open(image, "rb") as fh:
        # FAT keeps neither owners nor Unix modes; names, sizes and bytes must still agree.
        assert compare(FatFS(fh), DirectoryFS(tree), owners=False, modes=False) > 15
