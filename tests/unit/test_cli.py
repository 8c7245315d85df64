"""The command line composes and reports errors in one line."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_azimg() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Azure's Linux imaging system" in out.stdout
