"""Every container read as the same virtual disk: raw, fixed VHD, qcow2, VMDK (real qemu-img)."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from azimg.disk.detect import detect_format
from azimg.disk.view import open_view
from azimg.errors import CorruptImage, UnsupportedFormat

MiB = 1024 * 1024


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def raw_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32 MiB raw disk with scattered data and holes (qcow2 clusters are 64 KiB)."""
    path = tmp_path_factory.mktemp("view") / "disk.raw"
    rng = random.Random(7)
    with open(path, "wb") as fh:
        fh.truncate(32 * MiB)
        for _ in range(40):
            fh.seek(rng.randrange(0, 32 * MiB - 200_000))
            fh.write(rng.randbytes(rng.randrange(1, 200_000)))
    return path


def converted(raw: Path, fmt: str, *opts: str) -> Path:
    out = raw.with_name(f"disk-{fmt}-{'-'.join(o.replace('=', '') for o in opts) or 'plain'}.img")
    if not out.exists():
        qemu_img("convert", "-f", "raw", "-O", fmt, *opts, str(raw), str(out))
    return out


CASES = [
    ("raw", (), "raw", "direct"),
    ("vpc", ("-o", "subformat=fixed,force_size=on"), "vhd-fixed", "direct"),
    ("vpc", ("-o", "subformat=dynamic,force_size=on"), "vhd-dynamic", "vhd"),
    ("qcow2", (), "qcow2", "qemu-img-map"),
    ("qcow2", ("-c",), "qcow2", "qemu-img-convert"),
    ("vmdk", (), "vmdk", "qemu-img-map"),
    ("vmdk", ("-o", "subformat=streamOptimized"), "vmdk", "qemu-img-convert"),
]


@pytest.mark.parametrize(("fmt", "opts", "want_format", "want_method"), CASES)
def test_every_container_reads_the_same_bytes(
    raw_disk: Path, fmt, opts, want_format, want_method
) -> None:
    image = raw_disk if fmt == "raw" else converted(raw_disk, fmt, *opts)
    expected = raw_disk.read_bytes()
    with open_view(image) as view:
        assert (view.format, view.method) == (want_format, want_method)
        assert view.size == len(expected)
        rng = random.Random(fmt + str(opts))
        for _ in range(200):
            off = rng.randrange(0, view.size)
            n = rng.randrange(1, 300_000)
            assert view.reader.pread(off, n) == expected[off : off + n]
        # The file-object face: seek + read, short at the end.
        view.reader.seek(view.size - 10)
        assert view.reader.read(100) == expected[-10:]
        assert view.reader.bytes_read > 0


def test_convert_fallback_removes_its_temporary_copy(raw_disk: Path) -> None:
    image = converted(raw_disk, "qcow2", "-c")
    view = open_view(image)
    tmpdir = view.reader._tmpdir  # the one place a test looks inside: cleanup is the behaviour
    assert os.path.isdir(tmpdir)
    view.close()
    assert not os.path.exists(tmpdir)


def test_vhdx_is_refused_with_the_fix(raw_disk: Path) -> None:
    image = converted(raw_disk, "vhdx")
    with open(image, "rb") as fh:
        assert detect_format(fh) == "vhdx"
    with pytest.raises(UnsupportedFormat, match=r"VHDX.*qemu-img convert"):
        open_view(image)


def test_truncated_qcow2_is_corrupt(raw_disk: Path, tmp_path: Path) -> None:
    image = converted(raw_disk, "qcow2")
    cut = tmp_path / "cut.qcow2"
    cut.write_bytes(image.read_bytes()[:100])
    with pytest.raises(CorruptImage):
        open_view(cut)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat, match="no such file"):
        open_view(tmp_path / "nope.vhd")
