"""Oracle Linux rules (prerequisites.md §7.4, ``ID=ol``)."""

from __future__ import annotations

from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev
from azimg.image.rules.kernel import default_kernel

ORA_01 = Rule(
    "ORA-01",
    B,
    "the default kernel is UEK R3 or later or the Red Hat compatible kernel (not UEK2)",
    "boot a supported kernel (UEK2 2.6.39 lacks the Hyper-V drivers)",
)
ORA_04 = Rule(
    "ORA-04",
    B,
    "75-persistent-net-generator.rules linked to /dev/null and no 70-persistent-net.rules",
    "ln -s /dev/null /etc/udev/rules.d/75-persistent-net-generator.rules; "
    "rm /etc/udev/rules.d/70-persistent-net.rules",
)
ORA_05 = Rule(
    "ORA-05",
    W,
    'GRUB_CMDLINE_LINUX="console=ttyS0 earlyprintk=ttyS0 net.ifnames=0"',
    "edit /etc/default/grub; grub2-mkconfig -o /boot/grub2/grub.cfg",
)
ORA_06 = Rule(
    "ORA-06",
    B,
    "waagent hands provisioning to cloud-init (Provisioning.Agent, or legacy UseCloudInit=y + "
    "Provisioning.Enabled=n)",
    "set Provisioning.Agent=auto (agents >= 2.2.45) in /etc/waagent.conf",
)

ORA_07 = Rule("ORA-07", A, "a yum repository id containing 'latest'", "keep the ol*_latest repos")


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    if g.os.family != "ora":
        return []
    out = []
    why = blocked(g, "kernel")
    k = default_kernel(g)
    if why:
        out.append(ORA_01.unreadable(why))
    elif k is not None:
        out.append(ORA_01.check(not k.version.startswith("2.6.39"), ev("/lib/modules", k.version)))
    n = g.network
    p70 = [p for p in n.persistent_net_rules if "70-persistent-net" in p]
    problems = [ev(p, "present") for p in p70]
    if not n.generator_disabled:
        problems.append(ev("/etc/udev/rules.d/75-persistent-net-generator.rules", "not /dev/null"))
    out.append(ORA_04.check(not problems, *problems))
    cfg = g.boot.cmdline.configured
    if cfg is not None:
        lack = [
            x
            for x in ("console=ttyS0", "earlyprintk=ttyS0", "net.ifnames=0")
            if not any(a.startswith(x) for a in cfg)
        ]
        out.append(
            ORA_05.check(
                not lack, ev(g.boot.cmdline.configured_where, "missing: " + " ".join(lack))
            )
        )
    repos = [r for r in g.packages.yum_repos if r.value.startswith("[")]
    if repos:
        ok = any("latest" in r.value for r in repos)
        out.append(ORA_07.check(ok, ev(repos[0].where, ", ".join(r.value for r in repos[:4]))))
    if ctx.generalized and g.agents.waagent.installed:
        wa = g.agents.waagent
        agent = (wa.get("Provisioning.Agent") or "").lower()
        legacy = (
            wa.get("Provisioning.UseCloudInit") == "y" and wa.get("Provisioning.Enabled") == "n"
        )
        ok = agent in ("auto", "cloud-init") or (not agent and legacy)
        if not g.agents.cloud_init.installed:
            ok = agent in ("", "auto", "waagent")  # waagent provisions on its own
        out.append(ORA_06.check(ok, ev("/etc/waagent.conf", f"Provisioning.Agent={agent or '-'}")))
    return out
