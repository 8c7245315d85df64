"""cpio reader against archives written by GNU cpio (newc, crc, odc)."""

from __future__ import annotations

import io
import stat
import subprocess
from pathlib import Path

import pytest

from azimg.disk.cpio import CpioHeader, iter_cpio
from azimg.errors import CorruptImage


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cpio") / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text("guest\n")
    (root / "odd-size").write_bytes(b"x" * 4097)
    (root / "link").symlink_to("etc/hostname")
    return root


def archive(root: Path, fmt: str) -> bytes:
    names = b"\n".join([b".", b"etc", b"etc/hostname", b"odd-size", b"link"]) + b"\n"
    return subprocess.run(
        ["cpio", "--quiet", "-o", "-H", fmt], cwd=root, input=names, capture_output=True, check=True
    ).stdout


@pytest.mark.parametrize("fmt", ["newc", "crc", "odc"])
def test_entries_modes_sizes_and_kept_data(tree: Path, fmt: str) -> None:
    data = archive(tree, fmt)
    stream = io.BytesIO(data + b"after")
    entries = list(iter_cpio(stream, keep=lambda n: n == "etc/hostname"))
    assert [e.name for e in entries] == [".", "etc", "etc/hostname", "odd-size", "link"]
    by = {e.name: e for e in entries}
    assert stat.S_ISDIR(by["etc"].mode) and stat.S_ISLNK(by["link"].mode)
    assert by["odd-size"].size == 4097 and by["odd-size"].data is None
    assert by["etc/hostname"].data == b"guest\n"
    # The stream stops right after the trailer's padding (GNU cpio then pads to 512).
    rest = stream.read()
    assert rest.endswith(b"after") and not rest[:-5].strip(b"\0")


def test_newc_header_round_trip(tree: Path) -> None:
    raw = archive(tree, "newc")[:110]
    hdr = CpioHeader.unpack_newc(raw, at=0)
    assert hdr.pack_newc() == raw


def test_truncated_and_bad_magic_are_corrupt(tree: Path) -> None:
    data = archive(tree, "newc")
    with pytest.raises(CorruptImage, match="truncated"):
        list(iter_cpio(io.BytesIO(data[:300])))
    with pytest.raises(CorruptImage, match="magic"):
        list(iter_cpio(io.BytesIO(b"123456" + data[6:])))
    bad = bytearray(data)
    bad[94:102] = b"FFFFFFFF"  # namesize of the first entry
    with pytest.raises(CorruptImage, match="name size"):
        list(iter_cpio(io.BytesIO(bytes(bad))))
