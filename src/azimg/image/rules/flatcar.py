"""Flatcar Container Linux rules (prerequisites.md §7.6, ``ID=flatcar``).

Flatcar provisions through Ignition plus waagent from the Azure OEM; generic cloud-init and
package rules do not apply (linux.py skips them for this family).
"""

from __future__ import annotations

import re

from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import B, CheckContext, Rule, W, ev

FLAT_02 = Rule(
    "FLAT-02",
    B,
    "the kernel command line selects the Azure OEM (flatcar.oem.id=azure)",
    "build the image for the Azure OEM (image_to_vm.sh --format=azure)",
)
FLAT_03 = Rule(
    "FLAT-03",
    B,
    "first-boot marker /boot/flatcar/first_boot exists (else Ignition never runs)",
    "touch /boot/flatcar/first_boot before capture",
)
FLAT_04 = Rule(
    "FLAT-04",
    W,
    "Azure OEM content (waagent) is present",
    "use the Azure OEM build",
)


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    if g.os.family != "flat":
        return []
    out = []
    oem_cfg = (
        g.system.files.get("/usr/share/oem/grub.cfg") or g.system.files.get("/oem/grub.cfg") or ""
    )
    line = " ".join(g.boot.cmdline.args or ())
    ok = (
        "flatcar.oem.id=azure" in line
        or "ignition.platform.id=azure" in line
        or bool(re.search(r'oem_id="?azure', oem_cfg))
    )
    where = g.boot.cmdline.where or "/usr/share/oem/grub.cfg"
    out.append(FLAT_02.check(ok, ev(where, "oem id azure" if ok else "no Azure OEM id")))
    if ctx.generalized:
        marker = "/boot/flatcar/first_boot"
        ok = marker in g.system.present or marker in g.system.files
        out.append(FLAT_03.check(ok, ev(marker, "present" if ok else "absent")))
    ok = g.agents.waagent.installed or "/usr/share/oem/bin/waagent" in g.system.present
    out.append(FLAT_04.check(ok, ev("/usr/share/oem", "waagent" if ok else "no Azure OEM agent")))
    return out
