"""ext2/3/4 reader against real filesystems made by mkfs.ext4 -d from trees built here."""

from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from azimg.disk.ext4 import Ext4FS, probe_ext4
from azimg.disk.guestfs import GuestFS, read_text, resolve
from azimg.errors import CorruptImage

LONG_TARGET = "/usr/share/" + "a-rather-long-directory-name/" * 4 + "target.txt"


def make_tree(root: Path) -> Path:
    """A small guest root exercising every storage form the reader handles."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "etc/fstab").write_text("UUID=x / ext4 defaults 0 1\n")
    (root / "usr/bin").mkdir(parents=True)
    for i in range(400):  # several directory blocks (htree with dir_index)
        (root / "usr/bin" / f"tool-{i:04d}").write_text(f"#!/bin/sh\necho {i}\n")
    (root / "bin").symlink_to("usr/bin")  # fast symlink
    (root / "etc/abs-link").symlink_to("/etc/os-release")
    target = root / LONG_TARGET.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_text("found me\n")
    (root / "etc/long-link").symlink_to(LONG_TARGET)  # > 60 bytes: stored in a block
    (root / "loop-a").symlink_to("loop-b")
    (root / "loop-b").symlink_to("loop-a")
    (root / "boot").mkdir()
    (root / "boot/big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 123))
    (root / "empty").write_bytes(b"")
    (root / "home/user").mkdir(parents=True)
    (root / "home/user/.bash_history").write_text("ls\n")
    os.chmod(root / "home/user/.bash_history", 0o600)
    return root


def mkfs(image: Path, root: Path, *options: str, size: str = "48M") -> Path:
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", *options, "-d", str(root), str(image), size],
        check=True,
        capture_output=True,
    )
    return image


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("ext4tree") / "root")


VARIANTS = {
    "ext4": ("-t", "ext4"),
    "ext4-32bit-1k": ("-t", "ext4", "-O", "^64bit", "-b", "1024"),
    "ext4-inline": ("-t", "ext4", "-O", "inline_data"),
    "ext3": ("-t", "ext3"),
    "ext2-1k": ("-t", "ext2", "-b", "1024"),
    "ext4-meta_bg-1k": ("-t", "ext4", "-O", "meta_bg,^resize_inode", "-b", "1024"),
}


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def volume(request: pytest.FixtureRequest, tree: Path, tmp_path_factory: pytest.TempPathFactory):
    image = mkfs(tmp_path_factory.mktemp("ext4img") / "fs.img", tree, *VARIANTS[request.param])
    with open(image, "rb") as fh:
        yield request.param, fh


def test_probe_and_protocol(volume) -> None:
    _name, fh = volume
    assert probe_ext4(fh)
    fs = Ext4FS(fh, label="root")
    assert isinstance(fs, GuestFS)
    assert fs.sb.block_size in (1024, 4096)


def test_reads_files_and_directories_like_the_source_tree(volume, tree: Path) -> None:
    _name, fh = volume
    fs = Ext4FS(fh)
    assert set(fs.listdir("/")) == set(os.listdir(tree)) | {"lost+found"}
    assert fs.listdir("/usr/bin") == sorted(os.listdir(tree / "usr/bin"))
    assert fs.read_file("/etc/os-release") == (tree / "etc/os-release").read_bytes()
    assert fs.read_file("/usr/bin/tool-0399") == b"#!/bin/sh\necho 399\n"
    big = fs.read_file("/boot/big.bin")
    assert (
        hashlib.sha256(big).digest()
        == hashlib.sha256((tree / "boot/big.bin").read_bytes()).digest()
    )
    assert fs.read_file("/empty") == b""


def test_stat_reports_mode_size_and_owner(volume, tree: Path) -> None:
    _name, fh = volume
    fs = Ext4FS(fh)
    st = fs.lstat("/home/user/.bash_history")
    host = os.lstat(tree / "home/user/.bash_history")
    assert (st.mode, st.size, st.uid, st.gid) == (
        host.st_mode,
        host.st_size,
        host.st_uid,
        host.st_gid,
    )
    assert fs.lstat("/usr").is_dir
    assert fs.lstat("/bin").is_symlink


def test_symlinks_fast_slow_absolute_and_through_directories(volume) -> None:
    _name, fh = volume
    fs = Ext4FS(fh)
    assert fs.readlink("/bin") == "usr/bin"
    assert fs.readlink("/etc/long-link") == LONG_TARGET
    assert read_text(fs, "/etc/long-link") == "found me\n"
    assert read_text(fs, "/etc/abs-link") == 'ID=debian\nVERSION_ID="12"\n'
    assert fs.read_file("/bin/tool-0001") == b"#!/bin/sh\necho 1\n"  # intermediate link
    assert resolve(fs, "/bin/tool-0001") == "/usr/bin/tool-0001"
    assert len(fs.listdir("/bin")) == 400


def test_errors_follow_os_conventions(volume) -> None:
    _name, fh = volume
    fs = Ext4FS(fh)
    with pytest.raises(FileNotFoundError):
        fs.lstat("/etc/missing")
    with pytest.raises(NotADirectoryError):
        fs.listdir("/etc/os-release")
    with pytest.raises(NotADirectoryError):
        fs.lstat("/etc/os-release/x")
    with pytest.raises(IsADirectoryError):
        fs.read_file("/etc")
    with pytest.raises(FileNotFoundError):  # symlink loop
        fs.read_file("/loop-a")


def test_read_limit_and_bytes_read_stay_small(volume) -> None:
    _name, fh = volume
    fs = Ext4FS(fh)
    assert len(fs.read_file("/boot/big.bin", limit=5000)) == 5000
    before = fs.bytes_read
    fs.read_file("/etc/os-release")
    # A lookup touches a handful of metadata blocks, never the 3 MiB file next door.
    assert fs.bytes_read - before < 64 * 1024
    assert fs.bytes_read < 200 * 1024


def test_not_ext4_is_corrupt_image(tmp_path: Path) -> None:
    blob = tmp_path / "zero.img"
    blob.write_bytes(bytes(8192))
    with open(blob, "rb") as fh, pytest.raises(CorruptImage, match="0xEF53"):
        Ext4FS(fh)


def test_truncated_volume_is_corrupt_image(tree: Path, tmp_path: Path) -> None:
    image = mkfs(tmp_path / "fs.img", tree)
    data = image.read_bytes()
    # Keep the metadata at the front, lose the data blocks at the back.
    cut = tmp_path / "cut.img"
    cut.write_bytes(data[: 2 * 1024 * 1024])
    with open(cut, "rb") as fh:
        fs = Ext4FS(fh)
        with pytest.raises(CorruptImage):
            for name in fs.listdir("/usr/bin"):
                fs.read_file("/usr/bin/" + name)
            fs.read_file("/boot/big.bin")


def test_htree_directories_read_linearly(tree: Path, tmp_path: Path) -> None:
    image = mkfs(tmp_path / "fs.img", tree)
    # e2fsck -D rebuilds directories as hash-indexed (htree) ones, as the kernel makes them.
    subprocess.run(["e2fsck", "-fyD", str(image)], capture_output=True)
    dump = subprocess.run(
        ["debugfs", "-R", "htree /usr/bin", str(image)], capture_output=True, text=True
    )
    assert "Root node dump" in dump.stdout  # the fixture really is indexed
    with open(image, "rb") as fh:
        fs = Ext4FS(fh)
        assert fs.listdir("/usr/bin") == sorted(os.listdir(tree / "usr/bin"))
        assert fs.read_file("/usr/bin/tool-0123") == b"#!/bin/sh\necho 123\n"


def _inode_offset(image: Path, path: str, block_size: int) -> int:
    out = subprocess.run(
        ["debugfs", "-R", f"imap {path}", str(image)], capture_output=True, text=True
    ).stdout
    found = re.search(r"located at block (\d+), offset 0x([0-9a-f]+)", out)
    assert found, out
    return int(found[1]) * block_size + int(found[2], 16)


def _first_data_block(image: Path, path: str) -> int:
    out = subprocess.run(
        ["debugfs", "-R", f"ex {path}", str(image)], capture_output=True, text=True
    ).stdout
    return int(out.splitlines()[1].split()[7])  # "0/ 0  1/  1  0 - 0  PHYS - PHYS  LEN"


def test_extent_tree_visiting_a_node_twice_is_corrupt(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "victim").write_text("hello\n")
    image = mkfs(tmp_path / "fs.img", root, "-b", "4096", size="8M")
    ino_at = _inode_offset(image, "/victim", 4096)
    leaf_block = _first_data_block(image, "/victim")
    header = struct.pack("<HHHHI", 0xF30A, 2, 4, 1, 0)  # depth 1, two index entries
    index = struct.pack("<IIHH", 0, leaf_block, 0, 0) * 2  # both children: the same block
    leaf = struct.pack("<HHHHI", 0xF30A, 1, 340, 0, 0) + struct.pack("<IHHI", 0, 1, 0, leaf_block)
    with open(image, "r+b") as fh:
        fh.seek(ino_at + 0x28)  # i_block
        fh.write(header + index)
        fh.seek(leaf_block * 4096)
        fh.write(leaf)
    with open(image, "rb") as fh, pytest.raises(CorruptImage, match="loop in the extent tree"):
        Ext4FS(fh).read_file("/victim")


def test_huge_size_reads_only_up_to_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "victim").write_text("hello\n")
    image = mkfs(tmp_path / "fs.img", root, size="8M")
    subprocess.run(
        ["debugfs", "-w", "-R", "sif /victim size 0x10000000000", str(image)], capture_output=True
    )
    with open(image, "rb") as fh:
        fs = Ext4FS(fh)
        assert fs.lstat("/victim").size == 1 << 40
        data = fs.read_file("/victim", limit=1024 * 1024)
        assert len(data) == 1024 * 1024 and data.startswith(b"hello\n")
        assert fs.bytes_read < 256 * 1024  # the hole past the one block is zeros, not reads
