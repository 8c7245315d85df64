"""The VHD format module against the spec's rules and against qemu-img's own VHDs."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azimg.disk.vhd import (
    BAT_UNUSED,
    FIXED_DATA_OFFSET,
    FOOTER_SIZE,
    MIB,
    BlockAllocationTable,
    DiskType,
    DynamicHeader,
    Footer,
    azure_footer_problems,
    bitmap_runs,
    chs_geometry,
    open_vhd,
    sector_bitmap_size,
)
from azimg.errors import CorruptImage, InvalidArgument, UnsupportedFormat

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def write_fixed(path: Path, data: bytes, size: int) -> Footer:
    footer = Footer.for_fixed_disk(size)
    with open(path, "wb") as f:
        f.write(data)
        f.truncate(size)
        f.seek(size)
        f.write(footer.pack())
    return footer


# --- footer -----------------------------------------------------------------------------------


def test_fixed_footer_fields_follow_the_spec() -> None:
    footer = Footer.for_fixed_disk(30 * 1024 * MIB, unique_id=uuid.UUID(int=7), timestamp=5)
    raw = footer.pack()
    assert len(raw) == FOOTER_SIZE
    assert raw[:8] == b"conectix"
    assert struct.unpack_from(">I", raw, 8)[0] == 2  # features: reserved bit
    assert struct.unpack_from(">I", raw, 12)[0] == 0x00010000
    assert struct.unpack_from(">Q", raw, 16)[0] == FIXED_DATA_OFFSET
    assert struct.unpack_from(">I", raw, 24)[0] == 5
    assert struct.unpack_from(">QQ", raw, 40) == (30 * 1024 * MIB, 30 * 1024 * MIB)
    assert struct.unpack_from(">I", raw, 60)[0] == DiskType.fixed
    assert raw[68:84] == uuid.UUID(int=7).bytes
    assert raw[84:] == bytes(428)
    # checksum: one's complement of the byte sum with the field itself zeroed
    zeroed = raw[:64] + bytes(4) + raw[68:]
    assert struct.unpack_from(">I", raw, 64)[0] == ~sum(zeroed) & 0xFFFFFFFF


def test_footer_round_trips_and_detects_damage() -> None:
    footer = Footer.for_fixed_disk(64 * MIB)
    raw = footer.pack()
    assert Footer.unpack(raw, at=0) == footer
    bad_cookie = b"conectiX" + raw[8:]
    with pytest.raises(CorruptImage, match="cookie"):
        Footer.unpack(bad_cookie, at=100)
    flipped = bytearray(raw)
    flipped[48] ^= 0x01
    with pytest.raises(CorruptImage, match=r"checksum.*at byte 164"):
        Footer.unpack(bytes(flipped), at=100)
    # verify=False still parses, for reporting
    assert not Footer.unpack(bytes(flipped), at=0, verify=False).checksum_ok
    with pytest.raises(CorruptImage, match="truncated"):
        Footer.unpack(raw[:300], at=0)


@pytest.mark.parametrize(
    ("size", "chs"),
    [
        (20 * MIB, (602, 4, 17)),  # small disks: 17 sectors per track
        (1025 * MIB, (2082, 16, 63)),
        (100 * 1024 * MIB, (51400, 16, 255)),  # past 65535*16*63 sectors: 255 per track
        (4 * 1024 * 1024 * MIB, (65535, 16, 255)),  # capped
    ],
)
def test_chs_geometry_follows_the_spec_appendix(size: int, chs: tuple[int, int, int]) -> None:
    assert chs_geometry(size) == chs


@FAST
@given(st.integers(min_value=1, max_value=2**45).map(lambda n: n * 512))
def test_chs_never_exceeds_the_disk(size: int) -> None:
    cylinders, heads, spt = chs_geometry(size)
    assert cylinders <= 65535 and heads <= 16 and spt <= 255
    if size <= 65535 * 16 * 255 * 512:
        assert cylinders * heads * spt * 512 <= size


@FAST
@given(st.binary(min_size=512, max_size=512))
def test_footer_parser_never_crashes(raw: bytes) -> None:
    try:
        footer = Footer.unpack(raw, at=0)
    except CorruptImage:
        return
    assert footer.pack() == raw


@FAST
@given(
    size=st.integers(min_value=1, max_value=2**41).map(lambda n: n * 512),
    stamp=st.integers(min_value=0, max_value=2**32 - 1),
    uid=st.uuids(),
)
def test_footer_pack_unpack_round_trip(size: int, stamp: int, uid: uuid.UUID) -> None:
    footer = Footer.for_fixed_disk(size, unique_id=uid, timestamp=stamp)
    assert Footer.unpack(footer.pack(), at=0) == footer


def test_qemu_reads_our_fixed_vhd_at_the_exact_size(tmp_path: Path) -> None:
    # 67 MiB: CHS would give qemu a smaller disk unless it takes the footer's current size.
    size = 67 * MIB
    data = os.urandom(4096)
    write_fixed(tmp_path / "d.vhd", data, size)
    info = json.loads(qemu_img("info", "-f", "vpc", "--output=json", str(tmp_path / "d.vhd")))
    assert info["virtual-size"] == size
    with open(tmp_path / "d.raw", "wb") as f:
        f.write(data)
        f.truncate(size)
    qemu_img("compare", "-f", "raw", "-F", "vpc", str(tmp_path / "d.raw"), str(tmp_path / "d.vhd"))


def test_we_read_qemus_fixed_footer(tmp_path: Path) -> None:
    raw = tmp_path / "in.raw"
    with open(raw, "wb") as f:
        f.truncate(30 * MIB)
    qemu_img(
        "convert",
        "-f",
        "raw",
        "-O",
        "vpc",
        "-o",
        "subformat=fixed,force_size=on",
        str(raw),
        str(tmp_path / "q.vhd"),
    )
    with open(tmp_path / "q.vhd", "rb") as f:
        disk = open_vhd(f)
        assert disk.kind == "fixed"
        assert disk.size == 30 * MIB
        assert disk.footer.creator_application == b"qem2"
        assert (disk.footer.cylinders, disk.footer.heads, disk.footer.sectors_per_track) == (
            65535,
            16,
            255,
        )


# --- dynamic disks ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamic_vhd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """qemu-img's dynamic VHD of a 40 MiB raw with data in blocks 0, 3 (partly) and the last."""
    d = tmp_path_factory.mktemp("dyn")
    raw = d / "src.raw"
    size = 40 * MIB
    with open(raw, "wb") as f:
        f.truncate(size)
        for at in (0, 7 * MIB - 4096, size - 8192):
            f.seek(at)
            f.write(os.urandom(8192))
    qemu_img(
        "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(raw), str(d / "d.vhd")
    )
    return d / "d.vhd", raw.read_bytes()


def test_dynamic_reader_matches_the_source(dynamic_vhd: tuple[Path, bytes]) -> None:
    path, data = dynamic_vhd
    with open(path, "rb") as f:
        disk = open_vhd(f)
        assert disk.kind == "dynamic"
        assert disk.header is not None and disk.header.block_size == 2 * MIB
        assert disk.size >= len(data)  # qemu rounds a dynamic disk up to its CHS size
        assert disk.read(0, len(data)) == data
        assert disk.read(7 * MIB - 4096 - 10, 8200) == data[7 * MIB - 4096 - 10 : 7 * MIB + 4094]
        allocated = [e for e in disk.extents() if e.file_offset is not None]
        assert sum(e.length for e in allocated) == 3 * 2 * MIB  # blocks 0, 3 and 19


def test_dynamic_header_and_bat_round_trip(dynamic_vhd: tuple[Path, bytes]) -> None:
    path, _ = dynamic_vhd
    raw = path.read_bytes()
    header = DynamicHeader.unpack(raw[512:1536], at=512)
    assert header.pack() == raw[512:1536]
    bat_raw = raw[header.table_offset : header.table_offset + 4 * header.max_table_entries]
    bat = BlockAllocationTable.unpack(
        bat_raw, at=header.table_offset, count=header.max_table_entries
    )
    assert bat.pack()[: len(bat_raw)] == bat_raw
    assert bat.sector_of(1) is None and bat.sector_of(0) is not None


def _patch(path: Path, out: Path, at: int, new: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[at : at + len(new)] = new
    out.write_bytes(bytes(raw))


def test_bat_entry_beyond_the_file_is_named(
    dynamic_vhd: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, _ = dynamic_vhd
    header = DynamicHeader.unpack(path.read_bytes()[512:1536], at=512)
    bad = tmp_path / "bad.vhd"
    _patch(path, bad, header.table_offset + 4, struct.pack(">I", 0x00FFFFF0))
    with open(bad, "rb") as f, pytest.raises(CorruptImage, match=r"BAT entry 1 .*beyond the end"):
        open_vhd(f)


def test_dynamic_header_checksum_is_checked(
    dynamic_vhd: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, _ = dynamic_vhd
    bad = tmp_path / "bad.vhd"
    _patch(path, bad, 512 + 32, struct.pack(">I", 4 * MIB))  # block size, checksum not updated
    with open(bad, "rb") as f, pytest.raises(CorruptImage, match="dynamic header checksum"):
        open_vhd(f)


def test_differencing_and_vhdx_are_named(tmp_path: Path, dynamic_vhd: tuple[Path, bytes]) -> None:
    path, _ = dynamic_vhd
    qemu_img("create", "-f", "vhdx", str(tmp_path / "x.vhdx"), "64M")
    with open(tmp_path / "x.vhdx", "rb") as f, pytest.raises(UnsupportedFormat, match="VHDX"):
        open_vhd(f)
    raw = path.read_bytes()
    footer = Footer.unpack(raw[-512:], at=0)
    diff = replace(footer, disk_type=DiskType.differencing).pack()
    (tmp_path / "diff.vhd").write_bytes(raw[:-512] + diff)
    with (
        open(tmp_path / "diff.vhd", "rb") as f,
        pytest.raises(UnsupportedFormat, match="differencing"),
    ):
        open_vhd(f)


def test_truncated_and_tiny_files_fail_clearly(tmp_path: Path) -> None:
    write_fixed(tmp_path / "d.vhd", b"x", 32 * MIB)
    raw = (tmp_path / "d.vhd").read_bytes()
    for blob, message in [
        (b"", "too short"),
        (raw[:100], "too short"),
        (raw[: 16 * MIB] + raw[-512:], "truncated"),
        (raw[:-1], "cookie"),
    ]:
        with pytest.raises(CorruptImage, match=message):
            open_vhd(io.BytesIO(blob))


@FAST
@given(st.binary(min_size=1024, max_size=1024))
def test_dynamic_header_parser_never_crashes(raw: bytes) -> None:
    try:
        header = DynamicHeader.unpack(raw, at=512)
    except CorruptImage:
        return
    assert header.pack() == raw


@FAST
@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=300))
def test_bat_round_trip(entries: list[int]) -> None:
    bat = BlockAllocationTable(tuple(entries))
    raw = bat.pack()
    assert len(raw) % 512 == 0
    assert BlockAllocationTable.unpack(raw, at=0, count=len(entries)) == bat
    assert all((bat.sector_of(i) is None) == (e == BAT_UNUSED) for i, e in enumerate(entries))


@FAST
@given(
    header=st.binary(min_size=1024, max_size=1024),
    bat=st.binary(min_size=0, max_size=2048),
    tail=st.binary(min_size=0, max_size=4096),
    entries=st.integers(min_value=0, max_value=2**32 - 1),
    block_shift=st.integers(min_value=9, max_value=31),
)
def test_dynamic_reader_on_garbage_raises_only_corrupt_image(
    header: bytes, bat: bytes, tail: bytes, entries: int, block_shift: int
) -> None:
    """A footer that passes, over a hostile header and BAT: only CorruptImage, never a crash."""
    dyn = bytearray(header)
    dyn[0:8] = b"cxsparse"
    struct.pack_into(">QQIII", dyn, 8, FIXED_DATA_OFFSET, 1536, 0x10000, entries, 1 << block_shift)
    sealed = DynamicHeader.unpack(bytes(dyn), at=512, verify=False).pack()
    size = 4 * MIB
    footer = replace(Footer.for_fixed_disk(size), disk_type=DiskType.dynamic, data_offset=512)
    blob = footer.pack() + sealed + bat + tail + footer.pack()
    try:
        disk = open_vhd(io.BytesIO(blob))
    except CorruptImage:
        return
    assert len(disk.read(0, min(disk.size, 65536))) == min(disk.size, 65536)


def test_sector_bitmaps() -> None:
    assert sector_bitmap_size(2 * MIB) == 512
    assert sector_bitmap_size(512) == 512
    assert sector_bitmap_size(32 * MIB) == 8192
    assert list(bitmap_runs(b"\xff" * 512, 4096)) == [(0, 4096)]
    assert list(bitmap_runs(b"\x00" * 512, 4096)) == []
    assert list(bitmap_runs(b"\x0f\x80" + bytes(510), 4096)) == [(4, 5)]


# --- Azure's view of a footer -----------------------------------------------------------------


def test_azure_footer_problems() -> None:
    good = Footer.for_fixed_disk(30 * MIB)
    assert azure_footer_problems(good, 30 * MIB + 512) == []
    odd = Footer.for_fixed_disk(30 * MIB + 512)
    assert any("whole number of MiB" in p for p in azure_footer_problems(odd, 30 * MIB + 1024))
    tiny = Footer.for_fixed_disk(MIB)
    assert any("outside Azure" in p for p in azure_footer_problems(tiny, MIB + 512))
    assert any("expected virtual size + 512" in p for p in azure_footer_problems(good, 30 * MIB))
    dynamic = replace(good, disk_type=DiskType.dynamic)
    problems = azure_footer_problems(dynamic, 30 * MIB + 512)
    assert any("only fixed" in p for p in problems)
    assert any("checksum" in p for p in problems)  # changed field, stale checksum


def _hand_built_dynamic(bitmap: bytes, data: bytes, size: int = 4 * MIB) -> bytes:
    """A dynamic VHD written from our own structures: block 1 allocated, the rest unused."""
    footer = replace(Footer.for_fixed_disk(size), disk_type=DiskType.dynamic, data_offset=512)
    header = DynamicHeader.for_dynamic_disk(size, table_offset=1536)
    entries = [BAT_UNUSED] * header.max_table_entries
    bat_raw = BlockAllocationTable(tuple(entries)).pack()
    block_at = 1536 + len(bat_raw)
    entries[1] = block_at // 512
    bat_raw = BlockAllocationTable(tuple(entries)).pack()
    return footer.pack() + header.pack() + bat_raw + bitmap + data + footer.pack()


def test_sector_bitmap_clear_bits_read_as_zeros() -> None:
    block = os.urandom(2 * MIB)
    bitmap = bytearray(512)
    bitmap[0] = 0b0110_0000  # sectors 1 and 2 of block 1 hold data; the rest never written
    disk = open_vhd(io.BytesIO(_hand_built_dynamic(bytes(bitmap), block)))
    got = disk.read(2 * MIB, 4 * 512)
    assert got == bytes(512) + block[512:1536] + bytes(512)
    assert disk.read(0, 2 * MIB) == bytes(2 * MIB)  # block 0 unallocated
    backed = [e for e in disk.extents() if e.file_offset is not None]
    assert [(e.offset, e.length) for e in backed] == [(2 * MIB + 512, 1024)]


def test_full_bitmap_block_reads_back_and_qemu_agrees(tmp_path: Path) -> None:
    block = os.urandom(2 * MIB)
    path = tmp_path / "hand.vhd"
    path.write_bytes(_hand_built_dynamic(b"\xff" * 512, block))
    with open(path, "rb") as f:
        assert open_vhd(f).read(2 * MIB, 2 * MIB) == block
    expected = tmp_path / "expected.raw"
    expected.write_bytes(bytes(2 * MIB) + block)
    with open(expected, "r+b") as f:
        f.truncate(4 * MIB)
    qemu_img("compare", "-f", "raw", "-F", "vpc", str(expected), str(path))


def test_absurd_sizes_are_refused() -> None:
    huge = replace(Footer.for_fixed_disk(MIB), current_size=2**62)
    with pytest.raises(CorruptImage, match="absurd"):
        open_vhd(io.BytesIO(bytes(MIB) + huge.pack()))
    blob = bytearray(_hand_built_dynamic(b"\xff" * 512, bytes(2 * MIB)))
    header = DynamicHeader.unpack(bytes(blob[512:1536]), at=512)
    blob[512:1536] = replace(header, max_table_entries=2**31).pack()
    with pytest.raises(CorruptImage, match="runs past the end"):
        open_vhd(io.BytesIO(bytes(blob)))
    with pytest.raises(InvalidArgument):
        Footer.for_fixed_disk(2**62)
    with pytest.raises(InvalidArgument):
        Footer.for_fixed_disk(1000)


@FAST
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=7))
def test_bitmap_runs_match_the_bits(bitmap: bytes, short: int) -> None:
    sectors = len(bitmap) * 8 - short
    bits = [(bitmap[i // 8] >> (7 - i % 8)) & 1 for i in range(sectors)]
    covered = [0] * sectors
    for first, count in bitmap_runs(bitmap, sectors):
        assert count > 0 and first + count <= sectors
        for i in range(first, first + count):
            covered[i] = 1
    assert covered == bits
