"""`azimg check` on images from the real `azimg build` (slow: the first build bootstraps Debian).

Done-when of issue 4: a cloud-init image and a waagent image report zero blockers, for either
generation they are uploaded as; a Gen1-only (MBR) image uploaded as Gen2 is named GEN-02.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from azimg.image.check import check_image
from azimg.image.findings import Status
from azimg.image.rules import CheckContext

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("agent", ["cloud-init", "waagent"])
def test_built_image_reports_zero_blockers(built_image: Callable[..., Path], agent: str) -> None:
    vhd = built_image(generation="both", agent=agent)
    for gen in ("1", "2"):
        r = check_image(vhd, CheckContext(generation=gen))
        assert [(f.rule, f.evidence) for f in r.blockers] == [], (agent, gen)
        assert r.generations is not None and r.generations.label == "gen1+gen2"
        assert r.os.startswith("debian") and r.kernel and "cloud" in r.kernel
        by = {f.rule: f.status for f in r.findings}
        # The facts that matter were read, not skipped: the initramfs, the ESP, fstab ids.
        must_pass = ["KRN-02", "FS-03", "CMD-10", "AGT-01", "FMT-05", "GEN-02"]
        for rule in must_pass + (["GEN-03", "GEN-04"] if gen == "2" else []):
            assert by[rule] is Status.passed, (rule, by.get(rule))
    out = subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", "check", str(vhd), "--output", "json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr
    assert json.loads(out.stdout)["summary"]["blockers"] == 0


def test_gen1_only_image_checked_as_gen2_names_gen_02(built_image: Callable[..., Path]) -> None:
    vhd = built_image(generation="1")
    r = check_image(vhd, CheckContext(generation="2"))
    assert {f.rule for f in r.blockers} == {"GEN-02"}
    assert r.generations is not None and r.generations.label == "gen1"
    ok = check_image(vhd, CheckContext(generation="1"))
    assert ok.blockers == []
