"""`azimg info` and `azimg convert` on the command line, and the container rules behind info."""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from azimg.cli.main import main
from azimg.disk.vhd import MIB, DynamicHeader, Footer
from azimg.image.findings import Status
from azimg.image.rules.container import RULES, check_container


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def azimg(*args: str) -> Run:
    """The real entry point, in this process (a fresh interpreter per call costs ~1 s here)."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        mock.patch.object(sys, "argv", ["azimg", *args]),
    ):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    return Run(
        code if isinstance(code, int) else int(code is not None), out.getvalue(), err.getvalue()
    )


def info_json(path: Path) -> dict[str, Any]:
    proc = azimg("info", str(path), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def statuses(info: dict[str, Any]) -> dict[str, str]:
    return {f["rule"]: f["status"] for f in info["findings"]}


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def raw_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 GiB sparse raw with a little data: CHS rounding makes it odd-sized in qemu's VHD."""
    path = tmp_path_factory.mktemp("info") / "disk.raw"
    with open(path, "wb") as f:
        f.truncate(30 * 1024 * MIB)
        f.write(os.urandom(65536))
    return path


def test_qemu_vhd_without_force_size_fails_the_whole_mib_rule(
    raw_disk: Path, tmp_path: Path
) -> None:
    out = tmp_path / "qemu.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", str(raw_disk), str(out))
    info = info_json(out)
    assert info["format"] == "vhd-fixed"
    assert info["virtual_size"] == 32212647936  # tooling.md: +384 KiB of CHS rounding
    assert statuses(info)["VHD-04"] == "fail"
    vhd04 = next(f for f in info["findings"] if f["rule"] == "VHD-04")
    assert vhd04["fix"] and vhd04["severity"] == "blocker"
    assert vhd04["supporting_data"]["rounded_up"] == 30721 * MIB
    assert info["azure_ready"] is False
    text = azimg("info", str(out)).stdout
    assert "FAIL" in text and "VHD-04" in text and "NOT Azure-ready" in text


def test_our_output_passes_every_container_rule(raw_disk: Path, tmp_path: Path) -> None:
    out = tmp_path / "ours.vhd"
    proc = azimg("convert", str(raw_disk), str(out), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["virtual_size"] == 30 * 1024 * MIB
    info = info_json(out)
    assert set(statuses(info)) == set(RULES)
    assert {s for s in statuses(info).values()} <= {"pass", "n/a"}
    assert info["azure_ready"] is True
    assert info["footer"]["current_size"] == 30 * 1024 * MIB
    assert info["allocated_bytes"] < 4 * MIB


def test_in_place_json_says_what_it_did(raw_disk: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.raw"
    subprocess.run(["cp", "--sparse=always", str(raw_disk), str(path)], check=True)
    proc = azimg("convert", "--in-place", str(path), "-o", "json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["in_place"] and result["method"] == "footer only"
    assert result["bytes_copied"] == 0 and result["file_size"] == 30 * 1024 * MIB + 512
    assert statuses(info_json(path))["VHD-04"] == "pass"


def _vhd_bytes(size: int = 32 * MIB) -> bytes:
    return bytes(size) + Footer.for_fixed_disk(size).pack()


@pytest.mark.parametrize(
    ("damage", "rule"),
    [
        (lambda b: b[:-512] + b"conectiX" + b[-504:], "VHD-01"),  # cookie; checksum now off too
        (lambda b: b[: -512 + 70] + b"\x01" + b[-512 + 71 :], "VHD-02"),  # a UUID byte
        (lambda b: b[: 16 * MIB] + b[-512:], "VHD-03"),  # truncated
    ],
)
def test_damaged_footers_fail_their_rule(damage: Any, rule: str) -> None:
    findings = {f.rule: f for f in check_container(io.BytesIO(damage(_vhd_bytes())))}
    assert findings[rule].status is Status.failed
    assert findings[rule].fix and findings[rule].evidence


def test_small_and_dynamic_disks(tmp_path: Path) -> None:
    small = {f.rule: f.status for f in check_container(io.BytesIO(_vhd_bytes(10 * MIB)))}
    assert small["SZ-01"] is Status.failed and small["VHD-04"] is Status.passed
    dyn = tmp_path / "d.vhd"
    qemu_img("create", "-f", "vpc", "-o", "subformat=dynamic", str(dyn), "64M")
    with open(dyn, "rb") as f:
        found = {x.rule: x.status for x in check_container(f)}
    assert found["FMT-05"] is Status.failed and found["VHD-11"] is Status.passed
    # a BAT entry pointing past the end of the file: VHD-11 fails, naming the entry
    raw = bytearray(dyn.read_bytes())
    header = DynamicHeader.unpack(bytes(raw[512:1536]), at=512)
    struct.pack_into(">I", raw, header.table_offset, 0x7FFFFFF0)
    with io.BytesIO(bytes(raw)) as f:
        vhd11 = next(x for x in check_container(f) if x.rule == "VHD-11")
    assert vhd11.status is Status.failed and "BAT entry 0" in vhd11.evidence[0].detail


def test_foreign_formats(tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-f", "qcow2", str(base), "64M")
    overlay = tmp_path / "overlay.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(overlay))
    with open(overlay, "rb") as f:
        found = {x.rule: x for x in check_container(f)}
    assert found["FMT-02"].status is Status.failed
    assert found["FMT-04"].status is Status.failed
    assert found["FMT-04"].supporting_data["virtual_size"] == 64 * MIB
    assert found["VHD-01"].status is Status.not_applicable
    vhdx = tmp_path / "x.vhdx"
    qemu_img("create", "-f", "vhdx", str(vhdx), "64M")
    info = info_json(vhdx)
    assert info["format"] == "vhdx" and info["virtual_size"] == 64 * MIB
    assert statuses(info)["FMT-01"] == "fail"
    # without a file behind the stream, qemu-img cannot say: unreadable, never pass
    with io.BytesIO(vhdx.read_bytes()) as f:
        found = {x.rule: x.status for x in check_container(f)}
    assert found["SZ-01"] is Status.unreadable


def test_raw_input_must_be_converted(raw_disk: Path) -> None:
    info = info_json(raw_disk)
    assert info["format"] == "raw" and info["virtual_size"] == 30 * 1024 * MIB
    found = statuses(info)
    assert found["FMT-04"] == "fail" and found["FMT-01"] == "pass" and found["SZ-01"] == "pass"


@pytest.mark.parametrize(
    "args",
    [
        ("info", "/nonexistent/disk.vhd"),
        ("info", "/"),
        ("convert", "/nonexistent/disk.raw", "OUT"),
        ("convert", "BAD", "OUT"),  # a fixed VHD whose checksum is wrong
        ("convert", "BAD"),
        ("convert", "--in-place", "BAD", "OUT"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    bad = tmp_path / "bad.vhd"
    blob = bytearray(_vhd_bytes(21 * MIB))
    blob[-1] = 1  # reserved byte: checksum no longer matches
    bad.write_bytes(bytes(blob))
    names = {"BAD": str(bad), "OUT": str(tmp_path / "out.vhd")}
    run = azimg(*(names.get(a, a) for a in args))
    assert run.returncode == 2
    assert run.stderr.startswith("azimg: error: ") and run.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.vhd"]  # no output, no temp


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    truncated = tmp_path / "t.qcow2"
    qemu_img("create", "-f", "qcow2", str(truncated), "64M")
    with open(truncated, "r+b") as f:
        f.truncate(1024)
    proc = subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", "convert", str(truncated), "out.vhd"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("azimg: error: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.qcow2"]


def test_bad_checksum_shows_in_info_not_as_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.vhd"
    blob = bytearray(_vhd_bytes(21 * MIB))
    blob[-512 + 84] = 1  # saved state, checksum left as it was
    bad.write_bytes(bytes(blob))
    info = info_json(bad)
    assert statuses(info)["VHD-02"] == "fail"
    assert info["footer"]["checksum_ok"] is False


def test_size_advice_rules(tmp_path: Path) -> None:
    """SZ-05 (Marketplace range) and SZ-06 (mostly-empty big disk) are reported, not blocking."""
    big = tmp_path / "big.vhd"
    size = 40 * 1024 * MIB
    with open(big, "wb") as f:
        f.truncate(size)
        f.write(os.urandom(MIB))
        f.seek(size)
        f.write(Footer.for_fixed_disk(size).pack())
    with open(big, "rb") as f:
        found = {x.rule: x for x in check_container(f)}
    assert found["SZ-06"].status is Status.failed and not found["SZ-06"].is_blocking
    assert found["SZ-05"].status is Status.passed
    assert found["SZ-05"].supporting_data["scope"] == "mkt"
    small = {x.rule: x.status for x in check_container(io.BytesIO(_vhd_bytes(10 * MIB)))}
    assert small["SZ-05"] is Status.failed
