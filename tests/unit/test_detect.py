"""Formats are told apart by their bytes; file names mean nothing."""

from __future__ import annotations

import io
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azimg.disk.detect import ImageFormat, detect_format
from azimg.disk.vhd import MIB, Footer

CASES = [
    ("raw", None, ImageFormat.raw),
    ("vpc", "subformat=fixed,force_size=on", ImageFormat.vhd_fixed),
    ("vpc", "subformat=dynamic", ImageFormat.vhd_dynamic),
    ("qcow2", None, ImageFormat.qcow2),
    ("vmdk", None, ImageFormat.vmdk),
    ("vmdk", "subformat=monolithicFlat", ImageFormat.vmdk),  # text descriptor
    ("vhdx", None, ImageFormat.vhdx),
]


@pytest.mark.parametrize(("fmt", "opts", "expected"), CASES)
def test_detects_what_qemu_img_wrote(
    tmp_path: Path, fmt: str, opts: str | None, expected: ImageFormat
) -> None:
    # misleading name on purpose: the extension says vhd whatever the content
    path = tmp_path / "image.vhd"
    args = ["qemu-img", "create", "-q", "-f", fmt, *(["-o", opts] if opts else [])]
    subprocess.run([*args, str(path), "24M"], check=True)
    with open(path, "rb") as f:
        assert detect_format(f) is expected


def test_footer_with_damaged_cookie_is_still_a_vhd() -> None:
    footer = Footer.for_fixed_disk(MIB).pack()
    damaged = b"CONECTIX" + footer[8:]
    # same byte sum would be a coincidence: recompute as a writer with a bad cookie would
    blob = bytes(MIB) + damaged
    raw = bytearray(blob)
    total = sum(raw[-512:]) - sum(raw[-512 + 64 : -512 + 68])
    raw[-512 + 64 : -512 + 68] = (~total & 0xFFFFFFFF).to_bytes(4, "big")
    assert detect_format(io.BytesIO(bytes(raw))) is ImageFormat.vhd_fixed


def test_footer_copy_at_offset_zero_marks_a_dynamic_disk_with_a_lost_tail() -> None:
    footer = Footer.for_fixed_disk(MIB)
    dyn = replace(footer, disk_type=3, data_offset=512).pack()
    assert detect_format(io.BytesIO(dyn + bytes(4096))) is ImageFormat.vhd_dynamic


def test_short_and_empty_files_are_raw() -> None:
    assert detect_format(io.BytesIO(b"")) is ImageFormat.raw
    assert detect_format(io.BytesIO(b"conectix")) is ImageFormat.raw


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_are_raw(blob: bytes) -> None:
    """Random data never passes for a container (no magic, no checksummed footer)."""
    fmt = detect_format(io.BytesIO(blob))
    if fmt is not ImageFormat.raw:
        magics = (b"QFI\xfb", b"KDMV", b"vhdxfile", b"conectix", b"# Disk DescriptorFile")
        assert blob.startswith(magics)


def test_a_raw_disk_of_random_data_is_raw() -> None:
    assert detect_format(io.BytesIO(os.urandom(MIB))) is ImageFormat.raw
