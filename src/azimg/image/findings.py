"""What a rule says about an image: the one shape shared by `azimg info` and `azimg check`.

Shaped like cloud-init's ReportableError: a fixed rule id and reason, structured supporting data,
and a single renderer elsewhere (``image/check.py``). Rules return findings; they never print or
raise when a check fails (STYLE.md rule 11).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    blocker = "blocker"
    warning = "warning"
    advice = "advice"


class Status(enum.StrEnum):
    passed = "pass"
    failed = "fail"
    # The rule applies but the tool could not read what it needs (e.g. a UFS root): never "pass".
    unreadable = "unreadable"
    not_applicable = "n/a"


@dataclass(frozen=True)
class Evidence:
    """Where the finding comes from: a guest file and line, or container bytes."""

    where: str  # "/etc/fstab:3", "footer@4294967296+60", "partition table"
    detail: str = ""


@dataclass(frozen=True)
class Finding:
    rule: str  # stable id from prerequisites.md, e.g. "FMT-05"
    severity: Severity
    status: Status
    title: str  # what the rule demands, one line
    fix: str = ""  # one line; empty when passed
    evidence: tuple[Evidence, ...] = ()
    supporting_data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_blocking(self) -> bool:
        return self.severity is Severity.blocker and self.status is Status.failed

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["severity"] = str(self.severity)
        out["status"] = str(self.status)
        out["evidence"] = [asdict(e) for e in self.evidence]
        return out
