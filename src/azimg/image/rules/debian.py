"""Debian rules (prerequisites.md §7.1, ``ID=debian``)."""

from __future__ import annotations

import re

from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev
from azimg.image.rules.kernel import hv_initramfs_finding

DEB_01 = Rule(
    "DEB-01",
    W,
    "waagent, cloud-init, hyperv-daemons and cloud-guest-utils installed",
    "apt install waagent cloud-init hyperv-daemons cloud-guest-utils",
)
DEB_02 = Rule(
    "DEB-02",
    B,
    "hv_vmbus and hv_storvsc are in the initramfs (MODULES=most or listed modules)",
    "add the modules to /etc/initramfs-tools/modules; update-initramfs -u -k all",
)
DEB_04 = Rule(
    "DEB-04",
    W,
    "fstab has no /dev/sd* or /dev/nvme* (Debian's build validation rejects them)",
    "use UUID= in /etc/fstab",
)
DEB_07 = Rule(
    "DEB-07",
    A,
    "chrony uses refclock PHC /dev/ptp_hyperv (as official images do)",
    "add 'refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0' to /etc/chrony/chrony.conf",
)

WANTED = ("waagent", "cloud-init", "hyperv-daemons", "cloud-guest-utils")


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    if g.os.family != "deb":
        return []
    out = []
    why = blocked(g, "packages")
    if why:
        out.append(DEB_01.unreadable(why))
    elif g.packages.installed is not None:
        missing = [p for p in WANTED if p not in g.packages.installed]
        out.append(
            DEB_01.check(not missing, ev("/var/lib/dpkg/status", "missing: " + ", ".join(missing)))
        )
    out.append(hv_initramfs_finding(g, DEB_02))
    if g.storage.fstab is not None:
        bad = [e for e in g.storage.fstab if re.match(r"^/dev/(sd[a-z]|nvme\d)", e.spec)]
        out.append(DEB_04.check(not bad, *(ev(e.where, e.spec) for e in bad)))
    if g.services.chrony_refclock_ptp is not None:
        out.append(DEB_07.check(g.services.chrony_refclock_ptp, ev("/etc/chrony/chrony.conf")))
    return out
