"""Conversion into an Azure-ready fixed VHD, checked with qemu-img (the field's own reader)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from azimg.disk.convert import convert, make_fixed_in_place
from azimg.disk.vhd import MIB, Footer, azure_footer_problems, open_vhd
from azimg.errors import AzimgError, CorruptImage, InvalidArgument, UnsupportedFormat

# Not a whole MiB on purpose: the output must round up (to 41 MiB).
SOURCE_SIZE = 40 * MIB + 3 * 512
DATA_AT = (0, 5 * MIB + 4096, 40 * MIB - 4096)


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def source_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "disk.img"
    with open(path, "wb") as f:
        f.truncate(SOURCE_SIZE)
        for at in DATA_AT:
            f.seek(at)
            f.write(os.urandom(8192) if at + 8192 <= SOURCE_SIZE else os.urandom(4096))
        f.seek(SOURCE_SIZE - 1536)
        f.write(b"last sectors" * 128)
    return path


# (qemu-img output format, creation options); names deliberately say nothing about the format.
INPUTS = {
    "raw": None,
    "vhd-fixed": ("vpc", "subformat=fixed,force_size=on"),
    "vhd-fixed-chs": ("vpc", "subformat=fixed"),
    "vhd-dynamic": ("vpc", "subformat=dynamic"),
    "qcow2": ("qcow2", None),
    "vmdk": ("vmdk", None),
    "vhdx": ("vhdx", None),
}


def make_input(source_raw: Path, kind: str, where: Path) -> Path:
    spec = INPUTS[kind]
    path = where / f"input-{kind}.bin"
    if spec is None:
        subprocess.run(["cp", "--sparse=always", str(source_raw), str(path)], check=True)
        return path
    fmt, opts = spec
    qemu_img(
        "convert",
        "-f",
        "raw",
        "-O",
        fmt,
        *(["-o", opts] if opts else []),
        str(source_raw),
        str(path),
    )
    return path


@pytest.mark.parametrize("kind", list(INPUTS))
def test_every_input_becomes_an_azure_ready_fixed_vhd(
    source_raw: Path, tmp_path: Path, kind: str
) -> None:
    src = make_input(source_raw, kind, tmp_path)
    dst = tmp_path / "out.vhd"
    result = convert(src, dst)
    expected = 41 * MIB
    assert result.input_format == kind.removesuffix("-chs")
    assert result.virtual_size == expected and result.rounded_up
    assert dst.stat().st_size == expected + 512
    info = json.loads(qemu_img("info", "-f", "vpc", "--output=json", str(dst)))
    assert info["virtual-size"] == expected
    # the data is the input's; the extra tail (rounding) reads as zeros
    qemu_img("compare", "-f", "raw", "-F", "vpc", str(source_raw), str(dst))
    with open(dst, "rb") as f:
        disk = open_vhd(f)
        assert disk.kind == "fixed"
        assert azure_footer_problems(disk.footer, dst.stat().st_size) == []
    assert result.azure_problems == []
    # holes kept: far less allocated than the virtual size
    assert dst.stat().st_blocks * 512 < 4 * MIB
    assert json.loads(json.dumps(result.to_json()))["destination"] == str(dst)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_whole_mib_input_is_not_rounded(tmp_path: Path) -> None:
    src = tmp_path / "exact"
    with open(src, "wb") as f:
        f.truncate(32 * MIB)
    result = convert(src, tmp_path / "out.vhd")
    assert result.virtual_size == 32 * MIB and not result.rounded_up


def test_progress_reports_every_copied_byte(source_raw: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    totals: list[int | None] = []

    def start(total: int | None):  # type: ignore[no-untyped-def]
        totals.append(total)
        return seen.append

    result = convert(source_raw, tmp_path / "out.vhd", progress=start)
    assert totals == [result.bytes_copied]
    assert sum(seen) == result.bytes_copied > 0


def test_refuses_same_file_directory_and_unreadable(source_raw: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="same file"):
        convert(source_raw, source_raw)
    with pytest.raises(InvalidArgument, match="directory"):
        convert(source_raw, tmp_path)
    with pytest.raises(InvalidArgument, match="cannot open"):
        convert(tmp_path / "missing.img", tmp_path / "out.vhd")
    with pytest.raises(InvalidArgument, match="cannot write"):
        convert(source_raw, tmp_path / "no-such-dir" / "out.vhd")
    empty = tmp_path / "empty"
    empty.touch()
    with pytest.raises(InvalidArgument, match="empty"):
        convert(empty, tmp_path / "out.vhd")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_corrupt_input_leaves_no_output(source_raw: Path, tmp_path: Path) -> None:
    src = make_input(source_raw, "vhd-dynamic", tmp_path)
    raw = bytearray(src.read_bytes())
    raw[512 + 40] ^= 0xFF  # dynamic header: parent UUID byte, checksum now wrong
    src.write_bytes(bytes(raw))
    dst = tmp_path / "out.vhd"
    with pytest.raises(CorruptImage, match="dynamic header checksum"):
        convert(src, dst)
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(("kind", "keep"), [("qcow2", 1024), ("vmdk", 70000), ("vhdx", 3 * MIB)])
def test_truncated_qemu_formats_are_one_line_errors(
    source_raw: Path, tmp_path: Path, kind: str, keep: int
) -> None:
    src = make_input(source_raw, kind, tmp_path)
    with open(src, "r+b") as f:
        f.truncate(keep)
    dst = tmp_path / "out.vhd"
    with pytest.raises(AzimgError, match=kind) as err:
        convert(src, dst)
    assert "\n" not in str(err.value)
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_differencing_vhd_is_refused_by_name(source_raw: Path, tmp_path: Path) -> None:
    src = make_input(source_raw, "vhd-dynamic", tmp_path)
    raw = bytearray(src.read_bytes())
    for at in (0, len(raw) - 512):  # both footer copies
        footer = Footer.unpack(bytes(raw[at : at + 512]), at=at)
        raw[at : at + 512] = replace(footer, disk_type=4).pack()
    src.write_bytes(bytes(raw))
    with pytest.raises(UnsupportedFormat, match="differencing"):
        convert(src, tmp_path / "out.vhd")


# --- in place ---------------------------------------------------------------------------------


def test_in_place_on_a_32_gib_sparse_raw_is_instant(tmp_path: Path) -> None:
    path = tmp_path / "big.raw"
    size = 32 * 1024 * MIB
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(size - 4096)
        f.write(b"tail" * 1024)
    before = path.stat().st_blocks
    started = time.monotonic()
    result = make_fixed_in_place(path)
    elapsed = time.monotonic() - started
    assert result.virtual_size == size and not result.rounded_up and result.bytes_copied == 0
    assert path.stat().st_size == size + 512
    assert path.stat().st_blocks - before <= 64  # the footer's block, nothing copied
    info = json.loads(qemu_img("info", "-f", "vpc", "--output=json", str(path)))
    assert info["virtual-size"] == size
    print(f"in-place on 32 GiB sparse raw: {elapsed * 1000:.1f} ms")


def test_in_place_rounds_up_and_keeps_data(source_raw: Path, tmp_path: Path) -> None:
    path = tmp_path / "disk"
    path.write_bytes(source_raw.read_bytes())
    result = make_fixed_in_place(path)
    assert result.virtual_size == 41 * MIB and result.rounded_up
    qemu_img("compare", "-f", "raw", "-F", "vpc", str(source_raw), str(path))
    again = make_fixed_in_place(path)  # idempotent: now already Azure-ready
    assert again.method == "already Azure-ready"
    assert path.stat().st_size == 41 * MIB + 512


def test_in_place_fixes_qemus_chs_sized_vhd(source_raw: Path, tmp_path: Path) -> None:
    path = make_input(source_raw, "vhd-fixed-chs", tmp_path)
    with open(path, "rb") as f:
        old = open_vhd(f).footer
    assert old.current_size % MIB  # qemu without force_size: CHS-sized
    result = make_fixed_in_place(path)
    assert result.virtual_size == -(-old.current_size // MIB) * MIB
    assert result.virtual_size >= old.current_size  # never shrinks
    with open(path, "rb") as f:
        new = open_vhd(f).footer
    assert new.unique_id == old.unique_id
    assert azure_footer_problems(new, path.stat().st_size) == []
    # the old footer's bytes are guest data now, and read as zeros
    qemu_img("compare", "-f", "raw", "-F", "vpc", str(source_raw), str(path))


def test_in_place_refuses_formats_it_cannot_fix_without_copying(
    source_raw: Path, tmp_path: Path
) -> None:
    for kind in ("vhd-dynamic", "qcow2"):
        path = make_input(source_raw, kind, tmp_path)
        before = path.read_bytes()
        with pytest.raises(InvalidArgument, match="azimg convert"):
            make_fixed_in_place(path)
        assert path.read_bytes() == before


def test_qcow2_paths_all_give_the_same_disk(source_raw: Path, tmp_path: Path) -> None:
    """Plain qcow2 is copied from qemu-img's map; compressed or layered goes through convert."""
    plain = make_input(source_raw, "qcow2", tmp_path)
    packed = tmp_path / "packed.qcow2"
    qemu_img("convert", "-c", "-f", "raw", "-O", "qcow2", str(source_raw), str(packed))
    base = tmp_path / "base.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(source_raw), str(base))
    layered = tmp_path / "layered.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(layered))
    expected = {
        plain: "qemu-img map + copy_file_range",
        packed: "qemu-img + footer",
        layered: "qemu-img + footer",  # flattened: the output holds the backing file's data
    }
    for src, method in expected.items():
        dst = tmp_path / f"{src.stem}.vhd"
        result = convert(src, dst)
        assert result.method == method
        assert result.virtual_size == 41 * MIB
        qemu_img("compare", "-f", "raw", "-F", "vpc", str(source_raw), str(dst))


def test_qcow2_pointing_past_its_end_is_refused(source_raw: Path, tmp_path: Path) -> None:
    src = make_input(source_raw, "qcow2", tmp_path)
    size = src.stat().st_size
    with open(src, "r+b") as f:
        f.truncate(size - 65536)  # the last data cluster is gone
    with pytest.raises(CorruptImage):
        convert(src, tmp_path / "out.vhd")
    assert not (tmp_path / "out.vhd").exists()


def test_a_full_disk_is_one_line_and_leaves_nothing(source_raw: Path, tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse writes past 1 MiB, as a full disk would."""
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
        "from azimg.cli.main import main\n"
        "sys.argv = ['azimg', *sys.argv[1:]]\n"
        "main()\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", script, "convert", str(source_raw), str(out / "x.vhd")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("azimg: error: converting ") and proc.stderr.count("\n") == 1
    assert "too large" in proc.stderr
    assert list(out.iterdir()) == []
