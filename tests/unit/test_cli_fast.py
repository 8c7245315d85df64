"""The typer-free fast paths (cli/fast.py): they skip typer's import and behave exactly as the
typer commands do; every other argument shape still goes through typer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from azimg.cli.fast import run_fast
from azimg.cli.main import build_app

AZIMG = [sys.executable, "-m", "azimg.cli.main"]


def imported(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "azimg.cli.main", *args],
        capture_output=True,
        text=True,
    )
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}


def test_version_and_convert_in_place_do_not_import_typer(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    raw.write_bytes(b"\1" * (20 * 1024 * 1024))
    assert "typer" not in imported("version")
    mods = imported("convert", "--in-place", str(raw), "--output", "json")
    assert "typer" not in mods and "azimg.disk.convert" in mods
    assert "typer" in imported("convert", "--help")


def test_fast_convert_in_place_matches_the_typer_command(tmp_path: Path) -> None:
    a, b = tmp_path / "a.raw", tmp_path / "b.raw"
    for p in (a, b):
        with open(p, "wb") as fh:
            fh.truncate(21 * 1024 * 1024 + 4096)
            fh.write(b"data")
    fast = subprocess.run([*AZIMG, "convert", "--in-place", str(a), "-o", "json"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    slow = CliRunner().invoke(build_app(), ["convert", "--in-place", str(b), "-o", "json"])
    assert slow.exit_code == 0, slow.output
    x, y = json.loads(fast.stdout), json.loads(slow.stdout)
    for doc in (x, y):  # the run's own facts: names, time, the footer's id and timestamp
        for key in ("seconds", "source", "destination"):
            doc.pop(key)
        for key in ("unique_id", "timestamp", "checksum", "created"):
            doc["footer"].pop(key, None)
    assert x == y
    assert a.read_bytes()[:-512] == b.read_bytes()[:-512]


def test_fast_path_errors_are_the_same_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([*AZIMG, "convert", "--in-place", str(tmp_path / "nope.raw")],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("azimg: error: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["version", "--help"],
        ["convert", "--in-place"],
        ["convert", "--in-place", "a", "b"],
        ["convert", "--in-place", "a", "--sync"],
        ["convert", "--in-place", "a", "-o", "yaml"],
        ["convert", "a", "b"],
    ],
)
def test_other_shapes_are_left_to_typer(argv: list[str]) -> None:
    assert run_fast(argv) is False
