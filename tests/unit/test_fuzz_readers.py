"""Fuzz every reader with hypothesis: corrupt the bytes a clean read touches, then read it all.

Each target starts from a REAL image (mkfs, sfdisk, cpio + compressors). A clean traversal
records which byte ranges the reader parses; hypothesis then overwrites bytes inside those
ranges (through an in-memory patch layer, the image file is never copied) and the reader must
answer with a result or a clear error: AzimgError (CorruptImage, UnsupportedFormat) or the
os-style errors of the GuestFS contract, never another exception, never a hang. The hang
guard is a generous per-test timeout, not a per-example deadline: a deadline is a timing
assert, and it failed a loaded 2-core CI machine on a slow but finite example.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azimg.disk.ext4 import Ext4FS
from azimg.disk.fat import FatFS
from azimg.disk.guestfs import GuestFS
from azimg.disk.partitions import read_partition_table
from azimg.disk.xfs import XfsFS
from azimg.errors import AzimgError
from azimg.image.initramfs import read_initramfs

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
pytestmark = pytest.mark.timeout(600)
ALLOWED = (AzimgError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


class Patched(io.RawIOBase):
    """A read-only view of ``base`` bytes with some bytes replaced; records what is read."""

    def __init__(self, base: bytes, patches: dict[int, int] | None = None) -> None:
        super().__init__()
        self.base = base
        self.patches = patches or {}
        self.pos = 0
        self.reads: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: 0, 1: self.pos, 2: len(self.base)}[whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = bytearray(self.base[self.pos : self.pos + len(buffer)])
        for off, value in self.patches.items():
            if self.pos <= off < self.pos + len(data):
                data[off - self.pos] = value
        self.reads.append((self.pos, len(data)))
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def traverse(fs: GuestFS, budget: int = 3000, *, read_limit: int = 256 * 1024) -> int:
    """Walk the whole tree: lstat, readlink, listdir, read_file; errors per item are allowed."""
    todo = ["/"]
    seen = 0
    while todo and seen < budget:
        path = todo.pop()
        try:
            names = fs.listdir(path)
        except ALLOWED:
            continue
        for name in names:
            seen += 1
            child = path.rstrip("/") + "/" + name
            try:
                st = fs.lstat(child)
                if st.is_symlink:
                    fs.readlink(child)
                elif st.is_dir:
                    todo.append(child)
                else:
                    fs.read_file(child, limit=read_limit)
            except ALLOWED:
                pass
            except OSError as exc:
                assert exc.errno == 22, exc  # readlink on a non-link (FAT, changed type)
    return seen


def touched_offsets(
    base: bytes, run: Callable[[Patched], object], granularity: int = 1
) -> list[int]:
    """Byte offsets a clean run reads (deduplicated per ``granularity``), to aim mutations."""
    fh = Patched(base)
    run(fh)
    offsets: set[int] = set()
    for off, n in fh.reads:
        offsets.update(range(off, off + min(n, 4096), granularity))
    return sorted(offsets)


def mutations(offsets: list[int]) -> st.SearchStrategy[dict[int, int]]:
    return st.dictionaries(st.sampled_from(offsets), st.integers(0, 255), min_size=1, max_size=12)


def check(run: Callable[[Patched], object], base: bytes, patches: dict[int, int]) -> None:
    with contextlib.suppress(ALLOWED):
        run(Patched(base, patches))


# -- images -------------------------------------------------------------------------------


def _tree(root: Path) -> Path:
    (root / "etc/default").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "etc/default/grub").write_text('GRUB_CMDLINE_LINUX="console=ttyS0"\n')
    for i in range(60):
        (root / "etc" / f"conf-{i:03d}.d").write_text("x" * (i * 97))
    (root / "boot").mkdir()
    (root / "boot/vmlinuz").write_bytes(os.urandom(70_000))
    (root / "bin").symlink_to("usr/bin")
    (root / "etc/long").symlink_to("/usr/share/" + "very-long-component/" * 5)
    return root


@pytest.fixture(scope="session")
def fuzz_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tree(tmp_path_factory.mktemp("fuzz") / "root")


@pytest.fixture(scope="session")
def ext4_bytes(fuzz_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    image = tmp_path_factory.mktemp("fuzz-ext4") / "fs.img"
    subprocess.run(
        ["mkfs.ext4", "-q", "-b", "1024", "-d", str(fuzz_tree), str(image), "2M"], check=True
    )
    return image.read_bytes()


@pytest.fixture(scope="session")
def ext2_bytes(fuzz_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    image = tmp_path_factory.mktemp("fuzz-ext2") / "fs.img"
    subprocess.run(
        ["mkfs.ext4", "-q", "-t", "ext2", "-b", "1024", "-d", str(fuzz_tree), str(image), "2M"],
        check=True,
    )
    return image.read_bytes()


@pytest.fixture(scope="session")
def xfs_bytes(fuzz_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from tests.unit.test_xfs import protofile

    work = tmp_path_factory.mktemp("fuzz-xfs")
    (work / "proto").write_text(protofile(fuzz_tree))
    image = work / "fs.img"
    with open(image, "wb") as fh:
        fh.truncate(300 * 1024 * 1024)
    subprocess.run(["mkfs.xfs", "-q", "-f", "-p", str(work / "proto"), str(image)], check=True)
    # 300 MiB, nearly all holes: map it instead of holding it in memory.
    with open(image, "rb") as fh:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def fat_bytes(fuzz_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    work = tmp_path_factory.mktemp("fuzz-fat")
    image = work / "esp.img"
    subprocess.run(["mkfs.vfat", "-C", str(image), "2048"], check=True, capture_output=True)
    src = work / "EFI"
    src.mkdir()
    for path in (fuzz_tree / "etc").iterdir():  # FAT has no symlinks: regular files only
        if path.is_file() and not path.is_symlink():
            (src / path.name).write_bytes(path.read_bytes())
    subprocess.run(
        ["mcopy", "-s", "-i", str(image), str(src), str(fuzz_tree / "boot"), "::/"], check=True
    )
    return image.read_bytes()


@pytest.fixture(scope="session")
def gpt_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    image = tmp_path_factory.mktemp("fuzz-gpt") / "disk.raw"
    with open(image, "wb") as fh:
        fh.truncate(8 * 1024 * 1024)
    script = (
        "label: gpt\nsize=1M, type=21686148-6449-6E6F-744E-656564454649\nsize=2M, type=U\ntype=L\n"
    )
    subprocess.run(["sfdisk", "-q", str(image)], input=script, text=True, check=True)
    return image.read_bytes()


@pytest.fixture(scope="session")
def mbr_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    image = tmp_path_factory.mktemp("fuzz-mbr") / "disk.raw"
    with open(image, "wb") as fh:
        fh.truncate(8 * 1024 * 1024)
    script = "label: dos\nsize=1M, type=83\ntype=5\nsize=1M, type=83\nsize=1M, type=82\n"
    subprocess.run(["sfdisk", "-q", str(image)], input=script, text=True, check=True)
    return image.read_bytes()


@pytest.fixture(scope="session")
def initramfs_bytes(fuzz_tree: Path) -> bytes:
    names = subprocess.run(
        "find . | sort", shell=True, cwd=fuzz_tree, capture_output=True, check=True
    ).stdout
    archive = subprocess.run(
        ["cpio", "--quiet", "-o", "-H", "newc"],
        cwd=fuzz_tree,
        input=names,
        capture_output=True,
        check=True,
    ).stdout
    ucode = (
        archive[:0]
        + subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc"],
            cwd=fuzz_tree,
            input=b"etc/os-release\n",
            capture_output=True,
            check=True,
        ).stdout
    )
    return (
        ucode
        + subprocess.run(["gzip", "-n"], input=archive, capture_output=True, check=True).stdout
    )


# -- properties ---------------------------------------------------------------------------


def _ext4(fh: Patched, read_limit: int = 256 * 1024) -> int:
    return traverse(Ext4FS(fh), read_limit=read_limit)


def _xfs(fh: Patched, read_limit: int = 256 * 1024) -> int:
    return traverse(XfsFS(fh), read_limit=read_limit)


def _fat(fh: Patched, read_limit: int = 256 * 1024) -> int:
    return traverse(FatFS(fh), read_limit=read_limit)


def metadata_offsets(base: bytes, run: Callable[..., int]) -> list[int]:
    """Aim at structures, not file contents: record a walk that reads no file data."""
    return touched_offsets(base, lambda fh: run(fh, read_limit=0))


def _table(fh: Patched) -> object:
    return read_partition_table(fh, len(fh.base))


@pytest.mark.parametrize("image", ["ext4_bytes", "ext2_bytes"])
def test_fuzz_ext(image: str, request: pytest.FixtureRequest) -> None:
    base = request.getfixturevalue(image)
    assert _ext4(Patched(base)) > 60  # the clean image reads completely
    offsets = metadata_offsets(base, _ext4)

    @FUZZ
    @given(mutations(offsets))
    def prop(patches: dict[int, int]) -> None:
        check(_ext4, base, patches)

    prop()


def test_fuzz_xfs(xfs_bytes: bytes) -> None:
    assert _xfs(Patched(xfs_bytes)) > 60
    offsets = metadata_offsets(xfs_bytes, _xfs)

    @FUZZ
    @given(mutations(offsets))
    def prop(patches: dict[int, int]) -> None:
        check(_xfs, xfs_bytes, patches)

    prop()


def test_fuzz_fat(fat_bytes: bytes) -> None:
    assert _fat(Patched(fat_bytes)) > 60
    offsets = metadata_offsets(fat_bytes, _fat)

    @FUZZ
    @given(mutations(offsets))
    def prop(patches: dict[int, int]) -> None:
        check(_fat, fat_bytes, patches)

    prop()


@pytest.mark.parametrize("image", ["gpt_bytes", "mbr_bytes"])
def test_fuzz_partition_tables(image: str, request: pytest.FixtureRequest) -> None:
    base = request.getfixturevalue(image)
    assert _table(Patched(base)).partitions  # type: ignore[attr-defined]
    offsets = touched_offsets(base, _table)

    @FUZZ
    @given(mutations(offsets))
    def prop(patches: dict[int, int]) -> None:
        check(_table, base, patches)

    prop()


def test_fuzz_initramfs(initramfs_bytes: bytes) -> None:
    assert read_initramfs(initramfs_bytes).segments[-1].compression == "gzip"

    def run(fh: Patched) -> object:
        return read_initramfs(fh.read())

    @FUZZ
    @given(mutations(list(range(len(initramfs_bytes)))))
    def prop(patches: dict[int, int]) -> None:
        check(run, initramfs_bytes, patches)

    prop()


@FUZZ
@given(st.binary(min_size=0, max_size=4096))
def test_fuzz_initramfs_random_bytes(data: bytes) -> None:
    with contextlib.suppress(AzimgError):
        read_initramfs(data)
