"""The rule catalogue of /work/shared/reference/prerequisites.md, one module per scope.

A rule is a pure function over ``ImageFacts`` (and the user's intent, ``CheckContext``) that
returns findings; nothing here prints, raises on a failed check or reads the image. Each
module declares its rules once as ``Rule`` constants (id, severity, title, fix from the
catalogue), each next to the ``Check`` that evaluates it, and a scope module exposes
``evaluate(facts, ctx) -> list[Finding]``. The general Linux scope is split by kind of fact
(``kernel``, ``boot``, ``agents``, ``storage``, ``network``, ``accounts``, ``packages``,
``services``, mirroring ``image/facts/``); ``linux.py`` orders their checks. ``image/check.py``
runs the scopes; ``container.py`` (the image file itself) is run by check and info alike.

Facets the inspector could not read (``GuestFacts.unreadable``) make the rules that need them
report ``unreadable`` — never ``pass``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azimg.image.facts.files import Located
from azimg.image.findings import Evidence, Finding, Severity, Status
from azimg.image.inspect import GuestFacts, ImageFacts


@dataclass(frozen=True)
class CheckContext:
    """What the user intends to do with the image (selects image-type dependent rules)."""

    generalized: bool = True  # False: a specialized disk (attach, no provisioning)
    generation: str | None = None  # "1" | "2" as uploaded (--hyper-v-generation), None: any
    marketplace: bool = False  # apply the Marketplace certification severities
    nvme: bool = False  # the VM size attaches the OS disk over remote NVMe (GEN-08)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    fix: str

    def passed(self, *evidence: Evidence, **data: Any) -> Finding:
        return Finding(self.id, self.severity, Status.passed, self.title, "", evidence, data)

    def failed(
        self, *evidence: Evidence, severity: Severity | None = None, fix: str = "", **data: Any
    ) -> Finding:
        return Finding(
            self.id,
            severity or self.severity,
            Status.failed,
            self.title,
            fix or self.fix,
            evidence,
            data,
        )

    def check(self, ok: bool, *evidence: Evidence, **data: Any) -> Finding:
        return self.passed(*evidence, **data) if ok else self.failed(*evidence, **data)

    def unreadable(self, why: str, *, severity: Severity | None = None) -> Finding:
        return Finding(
            self.id,
            severity or self.severity,
            Status.unreadable,
            self.title,
            "",
            (Evidence("not read", why),),
            {},
        )

    def not_applicable(self, why: str) -> Finding:
        return Finding(
            self.id, self.severity, Status.not_applicable, self.title, "", (Evidence("-", why),)
        )


# One scope's rules, or one check inside a scope: facts and intent in, findings out.
Check = Callable[[ImageFacts, CheckContext], list[Finding]]


def ev(where: str, detail: str = "") -> Evidence:
    return Evidence(where, detail)


def ev_loc(loc: Located) -> Evidence:
    return Evidence(loc.where, loc.value)


def blocked(g: GuestFacts, *facets: str) -> str | None:
    """Why the facets a rule needs could not be read, or None when they were read."""
    for facet in ("root", *facets):
        if facet in g.unreadable:
            return f"{facet}: {g.unreadable[facet]}"
    return None


B = Severity.blocker
W = Severity.warning
A = Severity.advice
