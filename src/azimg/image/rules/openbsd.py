"""OpenBSD rules (prerequisites.md §7.8).

OpenBSD roots are FFS, which azimg does not read: rules that need a root file report
``unreadable`` and name the file. The generation rule needs only the user's intent.
"""

from __future__ import annotations

from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev

OBSD_01 = Rule("OBSD-01", B, "OpenBSD 6.2 or later (hvs(4) synthetic disk)", "upgrade")
OBSD_02 = Rule(
    "OBSD-02", B, "deployed as Generation 1 (hyperv(4) lists Gen2 as unsupported)", "upload as V1"
)
OBSD_03 = Rule("OBSD-03", B, "/etc/hostname.hvn0 contains dhcp", "echo dhcp > /etc/hostname.hvn0")
OBSD_04 = Rule(
    "OBSD-04", W, "/etc/boot.conf: stty com0 115200 and set tty com0", "append the two lines"
)
OBSD_05 = Rule(
    "OBSD-05",
    B,
    "waagent installed and registered as a service",
    "python setup.py install; waagent -register-service",
)

OBSD_06 = Rule(
    "OBSD-06",
    W,
    "waagent.conf has the OpenBSD values (ufs2, eopenssl, master.passwd)",
    "use WALinuxAgent's config/openbsd/waagent.conf",
)
OBSD_07 = Rule("OBSD-07", A, "/etc/installurl points at a mirror", "write the file")

NEEDS = {
    OBSD_01: "the kernel /bsd",
    OBSD_03: "/etc/hostname.hvn0",
    OBSD_04: "/etc/boot.conf",
    OBSD_05: "/usr/local/sbin/waagent and /etc/rc.d/waagent",
    OBSD_06: "/etc/waagent.conf",
    OBSD_07: "/etc/installurl",
}


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    if g.os.family != "obsd":
        return []
    out = []
    why = blocked(g)
    for rule, needs in NEEDS.items():
        if why:
            out.append(rule.unreadable(f"needs {needs}; {why}"))
        elif rule is OBSD_01:
            out.append(rule.unreadable("the OpenBSD version cannot be read from /bsd offline"))
        elif rule is OBSD_03:
            ok = "dhcp" in g.system.files.get("/etc/hostname.hvn0", "")
            out.append(rule.check(ok, ev("/etc/hostname.hvn0")))
        elif rule is OBSD_04:
            bc = g.system.files.get("/etc/boot.conf", "")
            ok = "stty com0 115200" in bc and "set tty com0" in bc
            out.append(rule.check(ok, ev("/etc/boot.conf")))
        elif rule in (OBSD_06, OBSD_07):
            out.append(rule.unreadable(f"needs {needs}; read from an FFS root only"))
        else:
            ok = g.agents.waagent.installed and "/etc/rc.d/waagent" in g.system.present
            out.append(rule.check(ok, ev("/etc/rc.d/waagent")))
    if ctx.generation is not None:
        out.append(OBSD_02.check(ctx.generation == "1", ev("--generation", f"V{ctx.generation}")))
    return out
