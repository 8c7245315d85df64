"""The one renderer: text grouped by severity with a summary line, JSON, and exit codes."""

from __future__ import annotations

import json

from azimg.image.check import Report, render_text
from azimg.image.findings import Evidence, Finding, Severity, Status
from azimg.image.rules import CheckContext


def finding(rule: str, sev: Severity, status: Status) -> Finding:
    return Finding(rule, sev, status, f"{rule} title", "do this", (Evidence("/etc/x:3", "bad"),))


def report(*findings: Finding, unreadable: str | None = None) -> Report:
    return Report(
        "/img/disk.vhd",
        "vhd-fixed",
        CheckContext(),
        findings,
        os="debian 12",
        unreadable_reason=unreadable,
        seconds=0.5,
        bytes_read=3_000_000,
    )


def test_exit_codes() -> None:
    assert report(finding("A-1", Severity.warning, Status.failed)).exit_code == 0
    assert report(finding("A-1", Severity.blocker, Status.failed)).exit_code == 1
    assert (
        report(finding("A-1", Severity.blocker, Status.unreadable), unreadable="ufs").exit_code == 2
    )
    blind = report(finding("KRN-02", Severity.blocker, Status.unreadable))
    assert blind.exit_code == 2 and blind.why_unreadable is not None
    assert "KRN-02" in blind.why_unreadable
    assert report(finding("W-1", Severity.warning, Status.unreadable)).exit_code == 0
    both = report(finding("A-1", Severity.blocker, Status.failed), unreadable="ufs")
    assert both.exit_code == 1  # a blocker found outranks "could not read everything"


def test_text_groups_by_severity_and_hides_passes() -> None:
    text = render_text(
        report(
            finding("W-1", Severity.warning, Status.failed),
            finding("B-1", Severity.blocker, Status.failed),
            finding("B-2", Severity.blocker, Status.passed),
            finding("U-1", Severity.blocker, Status.unreadable),
        )
    )
    lines = text.splitlines()
    assert lines.index("BLOCKERS (2)") < lines.index("WARNINGS (1)")
    assert "B-2" not in text and "UNREAD" in text and "fix: do this" in text
    assert "at /etc/x:3: bad" in text
    assert lines[-1].startswith("disk.vhd: debian 12") and "1 blockers, 1 warnings" in lines[-1]
    assert "B-2" in render_text(
        report(finding("B-2", Severity.blocker, Status.passed)), show_passed=True
    )


def test_json_is_serialisable_and_complete() -> None:
    doc = json.loads(json.dumps(report(finding("B-1", Severity.blocker, Status.failed)).to_json()))
    assert doc["summary"] == {
        "blockers": 1,
        "warnings": 0,
        "advice": 0,
        "unreadable": 0,
        "passed": 0,
        "exit_code": 1,
    }
    f = doc["findings"][0]
    assert (f["rule"], f["severity"], f["status"], f["fix"]) == (
        "B-1",
        "blocker",
        "fail",
        "do this",
    )
    assert f["evidence"] == [{"where": "/etc/x:3", "detail": "bad"}]
