"""`azimg check --output sarif` validates against the SARIF 2.1.0 schema (OASIS, copied from
the public sarif-spec text into tests/data/) and maps findings one to one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from azimg.image.check import check_image
from azimg.image.rules import CheckContext
from tests.unit.test_generalize import make_disk

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"


def test_sarif_output_validates_and_has_one_result_per_finding(tmp_path: Path) -> None:
    disk = make_disk(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", "check", str(disk), "--output", "sarif"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator(schema).validate(doc)

    report = check_image(disk, CheckContext())
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(dict.fromkeys(f.rule for f in report.findings))
    assert len(run["results"]) == len(report.findings)
    level = {"blocker": "error", "warning": "warning", "advice": "note"}
    for result, finding in zip(run["results"], report.findings, strict=True):
        assert result["ruleId"] == finding.rule
        assert rules[result["ruleIndex"]]["id"] == finding.rule
        if finding.status.value == "fail":
            assert result["kind"] == "fail" and result["level"] == level[finding.severity.value]
        elif finding.status.value == "pass":
            assert result["kind"] == "pass" and result["level"] == "none"
    fixed = {r["id"]: r["help"]["text"] for r in rules}
    assert "waagent" in fixed["AGT-05"]  # the rule's fix is its help


def test_a_document_missing_required_parts_does_not_validate() -> None:
    """The schema copy really constrains: a result without a message is rejected."""
    schema = json.loads(SCHEMA.read_text())
    bad = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{}]}]}
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(bad))
    assert errors
