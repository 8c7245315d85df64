"""Copy-on-write clones over a real fixed VHD made by qemu-img."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from azimg.disk.clone import create_clone, flatten, guest_size
from azimg.errors import AzimgError, CorruptImage, InvalidArgument

MiB = 1024 * 1024


def make_vhd(path: Path, size: int, pattern: bytes = b"") -> Path:
    raw = path.with_suffix(".raw")
    with raw.open("wb") as fh:
        fh.truncate(size)
        if pattern:
            fh.write(pattern)
    subprocess.run(
        ["qemu-img", "convert", "-q", "-f", "raw", "-O", "vpc", "-o",
         "subformat=fixed,force_size=on", str(raw), str(path)],
        check=True,
    )  # fmt: skip
    raw.unlink()
    return path


def qemu_io(image: Path, command: str) -> str:
    return subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", command, str(image)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def test_clone_sees_the_disk_without_the_footer(tmp_path: Path) -> None:
    vhd = make_vhd(tmp_path / "v.vhd", 16 * MiB, b"BASE")
    assert guest_size(vhd) == 16 * MiB
    create_clone(vhd, tmp_path / "c.qcow2")
    info = subprocess.run(
        ["qemu-img", "info", "--output", "json", str(tmp_path / "c.qcow2")],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert '"virtual-size": 16777216' in info
    assert "read 1/1 bytes" in qemu_io(tmp_path / "c.qcow2", "read -P 0x42 0 1")  # "B"


def test_writes_to_a_clone_leave_the_source_and_other_clones_alone(tmp_path: Path) -> None:
    vhd = make_vhd(tmp_path / "v.vhd", 16 * MiB)
    before = vhd.read_bytes()
    create_clone(vhd, tmp_path / "a.qcow2")
    create_clone(vhd, tmp_path / "b.qcow2")
    qemu_io(tmp_path / "a.qcow2", "write -P 0xab 1M 64k")
    assert "read 65536/65536" in qemu_io(tmp_path / "a.qcow2", "read -P 0xab 1M 64k")
    assert "read 65536/65536" in qemu_io(tmp_path / "b.qcow2", "read -P 0 1M 64k")
    assert vhd.read_bytes() == before


def test_clone_time_does_not_read_the_source(tmp_path: Path) -> None:
    """A 1 TiB sparse source clones like a small one: nothing is read or copied."""
    big = tmp_path / "big.raw"
    with big.open("wb") as fh:
        fh.truncate(1024 * 1024 * MiB)
    started = time.monotonic()
    create_clone(big, tmp_path / "big.qcow2")
    elapsed = time.monotonic() - started
    assert (tmp_path / "big.qcow2").stat().st_size < 1 * MiB
    print(f"1 TiB clone in {elapsed:.3f} s")  # measured, not asserted


def test_clone_refuses_to_overwrite(tmp_path: Path) -> None:
    vhd = make_vhd(tmp_path / "v.vhd", 4 * MiB)
    (tmp_path / "c.qcow2").write_bytes(b"x")
    with pytest.raises(InvalidArgument):
        create_clone(vhd, tmp_path / "c.qcow2")
    assert (tmp_path / "c.qcow2").read_bytes() == b"x"


@pytest.mark.parametrize("content", [b"", b"x" * 1000])
def test_a_source_that_is_not_a_disk_is_refused(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.vhd"
    bad.write_bytes(content)
    with pytest.raises(CorruptImage):
        create_clone(bad, tmp_path / "c.qcow2")
    assert not list(tmp_path.glob("*c.qcow2*"))


def test_missing_source_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        create_clone(tmp_path / "nope.vhd", tmp_path / "c.qcow2")


def test_a_clone_with_its_own_base_outlives_the_source_name(tmp_path: Path) -> None:
    """The gallery-version-delete case: the source's name goes, the clone still reads it."""
    vhd = make_vhd(tmp_path / "v.vhd", 8 * MiB, b"BASE")
    create_clone(vhd, tmp_path / "c.qcow2", base=tmp_path / "c.base")
    assert (tmp_path / "c.base").stat().st_ino == vhd.stat().st_ino  # a link, not a copy
    vhd.unlink()
    assert "read 1/1 bytes" in qemu_io(tmp_path / "c.qcow2", "read -P 0x42 0 1")
    # Retrying a create over the same link is fine; a different file there is refused.
    create_clone(tmp_path / "c.base", tmp_path / "d.qcow2", base=tmp_path / "c.base")
    other = make_vhd(tmp_path / "o.vhd", 4 * MiB)
    with pytest.raises(InvalidArgument):
        create_clone(other, tmp_path / "e.qcow2", base=tmp_path / "c.base")
    assert not (tmp_path / "e.qcow2").exists()


def test_flatten_gives_a_fixed_vhd_of_what_the_clone_shows(tmp_path: Path) -> None:
    vhd = make_vhd(tmp_path / "v.vhd", 8 * MiB, b"BASE")
    create_clone(vhd, tmp_path / "c.qcow2")
    qemu_io(tmp_path / "c.qcow2", "write -P 0xcd 1M 4k")
    flatten(tmp_path / "c.qcow2", tmp_path / "flat.vhd")
    data = (tmp_path / "flat.vhd").read_bytes()
    assert len(data) == 8 * MiB + 512
    assert data[-512:].startswith(b"conectix")  # a fixed VHD footer, not a qcow2 header
    assert data[:4] == b"BASE"
    assert data[MiB : MiB + 4096] == b"\xcd" * 4096
    assert guest_size(tmp_path / "flat.vhd") == 8 * MiB


def test_flatten_failure_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "c.qcow2").write_bytes(b"not a qcow2 image at all" * 40)
    with pytest.raises(AzimgError):
        flatten(tmp_path / "c.qcow2", tmp_path / "flat.vhd")
    assert [p.name for p in tmp_path.iterdir()] == ["c.qcow2"]
