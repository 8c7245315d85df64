"""Package versions the catalogue cares about (prerequisites.md §6): OMI, OpenSSL, Python."""

from __future__ import annotations

import re

from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, CheckContext, Rule, W, ev


def version(v: str) -> tuple[int, ...]:
    """A Debian package version's upstream numbers: ``1:2.2.53.1-3`` -> (2, 2, 53, 1)."""
    v = v.split(":", 1)[-1]
    return tuple(int(x) for x in re.findall(r"\d+", v.split("-", 1)[0])[:4])


SEC_07 = Rule("SEC-07", W, "OMI absent or 1.6.8.1 or later (OMIGOD)", "update or remove omi")

SEC_08 = Rule("SEC-08", W, "OpenSSL 3.0 or later (or 1.1.1 / 1.0.2)", "update openssl")


def check_versions(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    """SEC-07 (OMI) and SEC-08 (OpenSSL), judged from the dpkg database."""
    pk = facts.guest.packages.installed or {}
    out = []
    if "omi" in pk:
        out.append(
            SEC_07.check(
                version(pk["omi"]) >= (1, 6, 8, 1), ev("/var/lib/dpkg/status", f"omi {pk['omi']}")
            )
        )
    for name in ("openssl", "libssl3", "libssl1.1"):
        if name in pk:
            v = version(pk[name])
            ok = v >= (3, 0) or v[:3] in ((1, 1, 1), (1, 0, 2))
            out.append(SEC_08.check(ok, ev("/var/lib/dpkg/status", f"{name} {pk[name]}")))
            break
    return out


SW_01 = Rule("SW-01", A, "python3 3.9 or later", "update python3")


def check_python(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    pk = facts.guest.packages.installed or {}
    if "python3" not in pk:
        return []
    return [
        SW_01.check(
            version(pk["python3"]) >= (3, 9),
            ev("/var/lib/dpkg/status", f"python3 {pk['python3']}"),
        )
    ]
