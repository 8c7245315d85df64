"""XFS reader against real filesystems made by mkfs.xfs -p PROTOFILE from trees built here."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from azimg.disk.guestfs import GuestFS, read_text, resolve
from azimg.disk.xfs import XfsFS, probe_xfs
from azimg.errors import CorruptImage

# Directory sizes chosen to land in each on-disk form (checked with xfs_db below).
DIRS = {"sf": 5, "block": 40, "leaf": 400, "node": 3000}
LONG_TARGET = "/usr/share" + "/deeper-and-deeper" * 30 + "/end"


def protofile(root: Path) -> str:
    """The mkfs.xfs protofile (xfsprogs mkfs/proto.c) describing a host tree, owners kept."""

    def spec(path: Path) -> str:
        st = path.lstat()
        perm = f"{stat.S_IMODE(st.st_mode) & 0o777:03o}"
        suid = "u" if st.st_mode & stat.S_ISUID else "-"
        sgid = "g" if st.st_mode & stat.S_ISGID else "-"
        if path.is_symlink():
            return f"l{suid}{sgid}{perm} {st.st_uid} {st.st_gid} {os.readlink(path)}"
        if path.is_dir():
            return f"d{suid}{sgid}{perm} {st.st_uid} {st.st_gid}"
        return f"-{suid}{sgid}{perm} {st.st_uid} {st.st_gid} {path}"

    lines = ["/dev/null", "0 0", spec(root)]

    def walk(directory: Path) -> None:
        for child in sorted(directory.iterdir()):
            lines.append(f"{child.name} {spec(child)}")
            if child.is_dir() and not child.is_symlink():
                walk(child)
                lines.append("$")

    walk(root)
    lines.append("$")
    return "\n".join(lines) + "\n"


def make_tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID="rhel"\nVERSION_ID="9.4"\n')
    (root / "etc/shadow").write_text("root:!!:19000::::::\n")
    os.chmod(root / "etc/shadow", 0o000)
    for name, count in DIRS.items():
        d = root / "dirs" / name
        d.mkdir(parents=True)
        for i in range(count):
            (d / f"entry-with-a-longish-name-{i:05d}").write_text(f"{name} {i}\n")
    (root / "boot").mkdir()
    (root / "boot/initramfs.img").write_bytes(os.urandom(2 * 1024 * 1024 + 77))
    (root / "home/azureuser").mkdir(parents=True)
    (root / "home/azureuser/.bash_history").write_text("sudo waagent -deprovision\n")
    os.chown(root / "home/azureuser/.bash_history", 1000, 1000)
    (root / "usr/share").mkdir(parents=True)
    (root / "etc/release-link").symlink_to("os-release")  # inline (local) symlink
    (root / "etc/long-link").symlink_to(LONG_TARGET)  # remote symlink block
    (root / "lib").symlink_to("usr/lib")
    (root / "usr/lib").mkdir()
    (root / "usr/lib/os-release").write_text("ID=from-usr-lib\n")
    (root / "empty").write_bytes(b"")
    return root


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("xfstree") / "root")


def mkfs(image: Path, root: Path, *options: str) -> Path:
    proto = image.with_suffix(".proto")
    proto.write_text(protofile(root))
    with open(image, "wb") as fh:
        fh.truncate(320 * 1024 * 1024)  # mkfs.xfs 6.1 wants at least 300 MiB
    subprocess.run(
        ["mkfs.xfs", "-q", "-f", *options, "-p", str(proto), str(image)],
        check=True,
        capture_output=True,
    )
    return image


@pytest.fixture(scope="session", params=["v5", "v4"])
def volume(request: pytest.FixtureRequest, tree: Path, tmp_path_factory: pytest.TempPathFactory):
    options = ("-L", "root") if request.param == "v5" else ("-L", "root", "-m", "crc=0")
    image = mkfs(tmp_path_factory.mktemp("xfsimg") / "fs.img", tree, *options)
    with open(image, "rb") as fh:
        yield request.param, image, fh


def xfs_db(image: Path, *commands: str) -> str:
    args = [a for c in commands for a in ("-c", c)]
    return subprocess.run(
        ["xfs_db", "-r", *args, str(image)], capture_output=True, text=True, check=True
    ).stdout


def test_the_fixture_covers_every_directory_form(volume) -> None:
    version, image, _fh = volume
    formats = {
        name: xfs_db(image, f"path /dirs/{name}", "print core.format").strip() for name in DIRS
    }
    assert formats["node"].endswith("(btree)")  # interleaved with file data: a B+tree map
    if version == "v4":
        return  # 256-byte v4 inodes: the small directories are block-form too
    assert formats["sf"].endswith("(local)")
    assert formats["block"].endswith("(extents)") and formats["leaf"].endswith("(extents)")


def test_directories_in_every_form_list_completely(volume, tree: Path) -> None:
    version, _image, fh = volume
    assert probe_xfs(fh)
    fs = XfsFS(fh, label="root")
    assert isinstance(fs, GuestFS)
    assert fs.sb.version == int(version[1])
    assert fs.listdir("/") == sorted(os.listdir(tree))
    for name, count in DIRS.items():
        names = fs.listdir(f"/dirs/{name}")
        assert names == sorted(os.listdir(tree / "dirs" / name)) and len(names) == count
        last = f"/dirs/{name}/entry-with-a-longish-name-{count - 1:05d}"
        assert fs.read_file(last) == f"{name} {count - 1}\n".encode()


def test_file_contents_modes_and_owners(volume, tree: Path) -> None:
    _v, _image, fh = volume
    fs = XfsFS(fh)
    data = fs.read_file("/boot/initramfs.img")
    assert (
        hashlib.sha256(data).digest()
        == hashlib.sha256((tree / "boot/initramfs.img").read_bytes()).digest()
    )
    assert fs.read_file("/boot/initramfs.img", limit=10) == data[:10]
    st = fs.lstat("/home/azureuser/.bash_history")
    assert (st.uid, st.gid, st.is_file) == (1000, 1000, True)
    assert stat.S_IMODE(fs.lstat("/etc/shadow").mode) == 0
    assert fs.read_file("/empty") == b""


def test_symlinks_inline_remote_and_through_directories(volume) -> None:
    _v, _image, fh = volume
    fs = XfsFS(fh)
    assert fs.readlink("/etc/release-link") == "os-release"
    assert read_text(fs, "/etc/release-link") == 'ID="rhel"\nVERSION_ID="9.4"\n'
    assert fs.readlink("/etc/long-link") == LONG_TARGET
    assert fs.read_file("/lib/os-release") == b"ID=from-usr-lib\n"
    assert resolve(fs, "/lib/os-release") == "/usr/lib/os-release"


def test_errors_and_bounded_reads(volume) -> None:
    _v, _image, fh = volume
    fs = XfsFS(fh)
    with pytest.raises(FileNotFoundError):
        fs.lstat("/dirs/node/nope")
    with pytest.raises(NotADirectoryError):
        fs.listdir("/etc/os-release")
    with pytest.raises(IsADirectoryError):
        fs.read_file("/dirs")
    before = fs.bytes_read
    fs.read_file("/etc/os-release")
    assert fs.bytes_read - before < 64 * 1024


def test_not_xfs_is_corrupt(tmp_path: Path) -> None:
    blob = tmp_path / "zero.img"
    blob.write_bytes(bytes(8192))
    with open(blob, "rb") as fh, pytest.raises(CorruptImage, match="XFSB"):
        XfsFS(fh)


def test_broken_block_map_is_corrupt(tree: Path, tmp_path: Path) -> None:
    image = mkfs(tmp_path / "fs.img", tree)
    out = xfs_db(image, "path /dirs/node", "print u3.bmbt.ptrs[1]")
    ptr = int(out.split("=")[1].split()[0])
    with open(image, "rb") as fh:
        sb = XfsFS(fh).sb
    agno, agbno = ptr >> sb.agblklog, ptr & ((1 << sb.agblklog) - 1)
    with open(image, "r+b") as fh:
        fh.seek((agno * sb.agblocks + agbno) * sb.block_size)
        fh.write(b"JUNK")  # the B+tree leaf's magic
    with open(image, "rb") as fh, pytest.raises(CorruptImage, match="block map"):
        XfsFS(fh).listdir("/dirs/node")
