"""SLES and openSUSE Leap rules (prerequisites.md §7.5)."""

from __future__ import annotations

from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import B, CheckContext, Rule, W, ev, ev_loc
from azimg.image.rules.kernel import hv_initramfs_finding
from azimg.image.rules.rhel import cloud_init_handoff

SUSE_01 = Rule(
    "SUSE-01",
    W,
    "python-azure-agent (waagent) and cloud-init installed",
    "zypper install python-azure-agent cloud-init (sle-module-public-cloud)",
)
SUSE_02 = Rule(
    "SUSE-02",
    B,
    "hv drivers in the initrd (dracut add_drivers)",
    'add_drivers+=" hv_vmbus hv_netvsc hv_storvsc " to /etc/dracut.conf.d/azure.conf; '
    "dracut --force",
)
SUSE_03 = Rule(
    "SUSE-03",
    W,
    "/etc/default/grub: console/earlyprintk on ttyS0, no splash=silent or quiet",
    "edit /etc/default/grub; grub2-mkconfig -o /boot/grub2/grub.cfg",
)
SUSE_04 = Rule(
    "SUSE-04",
    W,
    'DHCLIENT_SET_HOSTNAME="no" in /etc/sysconfig/network/dhcp',
    'set DHCLIENT_SET_HOSTNAME="no"',
)
SUSE_05 = Rule(
    "SUSE-05", W, "sudoers: no Defaults targetpw, no ALL ALL=(ALL) ALL", "comment out the lines"
)
SUSE_06 = Rule(
    "SUSE-06",
    W,
    "no 70-persistent-net.rules, 85-persistent-net-cloud-init.rules or ifcfg-eth* from the build",
    "delete them",
)
SUSE_07 = Rule(
    "SUSE-07",
    B,
    "cloud-init hand-off as RHEL-03 (91-azure_datasource.cfg, Format=n, EnableSwap=n)",
    "sed /etc/waagent.conf; write /etc/cloud/cloud.cfg.d/91-azure_datasource.cfg",
)
SUSE_08 = Rule(
    "SUSE-08",
    W,
    "zypper repositories configured (Pool/Updates or OSS/Update)",
    "add the repositories",
)


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    if g.os.family != "suse":
        return []
    out = []
    missing = [
        n
        for n, ok in (
            ("waagent", g.agents.waagent.installed),
            ("cloud-init", g.agents.cloud_init.installed),
        )
        if not ok
    ]
    out.append(
        SUSE_01.check(not missing, ev("/usr/sbin, /usr/bin", "missing: " + ", ".join(missing)))
    )
    out.append(hv_initramfs_finding(g, SUSE_02))
    cfg = g.boot.cmdline.configured
    if cfg is not None:
        bad = [a for a in cfg if a in ("quiet", "splash=silent", "libata.atapi_enabled=0")]
        lack = [
            x
            for x in ("console=ttyS0", "earlyprintk=ttyS0")
            if not any(a.startswith(x) for a in cfg)
        ]
        out.append(
            SUSE_03.check(
                not bad and not lack, ev(g.boot.cmdline.configured_where, " ".join(bad + lack))
            )
        )
    dhcp = g.system.files.get("/etc/sysconfig/network/dhcp")
    if dhcp is not None:
        ok = 'DHCLIENT_SET_HOSTNAME="no"' in dhcp or "DHCLIENT_SET_HOSTNAME='no'" in dhcp
        out.append(SUSE_04.check(ok, ev("/etc/sysconfig/network/dhcp", "DHCLIENT_SET_HOSTNAME")))
    out.append(SUSE_05.check(not g.accounts.sudoers, *(ev_loc(x) for x in g.accounts.sudoers)))
    left = list(g.network.persistent_net_rules)
    left += sorted(
        {
            x.where.split(":")[0]
            for x in (*g.network.dhcp, *g.network.static)
            if "/etc/sysconfig/network/ifcfg-eth" in x.where
        }
    )
    out.append(SUSE_06.check(not left, *(ev(p, "present") for p in left)))
    if ctx.generalized:
        out.append(cloud_init_handoff(g, SUSE_07))
    repos = [r for r in g.packages.yum_repos if r.where.startswith("/etc/zypp/repos.d")]
    out.append(SUSE_08.check(bool(repos), ev("/etc/zypp/repos.d", f"{len(repos)} lines")))
    return out
