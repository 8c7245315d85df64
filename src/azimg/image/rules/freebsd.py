"""FreeBSD rules (prerequisites.md §7.7).

FreeBSD roots are UFS (or ZFS), which azimg does not read: every rule that needs a file from
the root reports ``unreadable`` with what it would have read — never ``pass``. The swap rule
still reads the partition table.
"""

from __future__ import annotations

from azimg.disk.partitions import GPT_FREEBSD_SWAP
from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev

FBSD_01 = Rule(
    "FBSD-01",
    B,
    'azure-agent installed and waagent_enable="YES" in /etc/rc.conf',
    "pkg install azure-agent; sysrc waagent_enable=YES",
)
FBSD_02 = Rule(
    "FBSD-02",
    B,
    'ifconfig_hn0="SYNCDHCP" and sshd_enable="YES" in /etc/rc.conf',
    "sysrc ifconfig_hn0=SYNCDHCP sshd_enable=YES",
)
FBSD_03 = Rule(
    "FBSD-03",
    W,
    "serial console in /boot/loader.conf (comconsole, 115200)",
    'add console="comconsole efi vidconsole" and comconsole_speed="115200"',
)
FBSD_04 = Rule(
    "FBSD-04", W, "no swap partition on the OS disk", "remove the freebsd-swap partition"
)
FBSD_05 = Rule("FBSD-05", W, "root's password field is '*'", "pw usermod root -h -")
FBSD_06 = Rule("FBSD-06", W, "first partition at 1 MiB (Marketplace)", "VM_BOOTPARTSOFFSET=1M")

FBSD_07 = Rule("FBSD-07", A, 'mlx4en_load/mlx5en_load="YES" in loader.conf', "add both lines")
FBSD_08 = Rule("FBSD-08", A, 'ntpd_enable and ntpd_sync_on_start="YES"', "sysrc both")
FBSD_09 = Rule(
    "FBSD-09",
    W,
    "no resolv.conf, DHCP leases or agent state; /firstboot present",
    "waagent -deprovision; touch /firstboot",
)

NEEDS = {
    FBSD_01: "/etc/rc.conf and /usr/local/sbin/waagent",
    FBSD_02: "/etc/rc.conf",
    FBSD_03: "/boot/loader.conf",
    FBSD_05: "/etc/master.passwd",
    FBSD_07: "/boot/loader.conf",
    FBSD_08: "/etc/rc.conf",
    FBSD_09: "/etc/resolv.conf, /var/db/dhclient.leases.*, /firstboot",
}


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    if g.os.family != "fbsd":
        return []
    out = []
    why = blocked(g)
    rc = g.system.files.get("/etc/rc.conf", "")
    for rule, needs in NEEDS.items():
        if why:
            out.append(rule.unreadable(f"needs {needs}; {why}"))
            continue
        if rule is FBSD_01:
            ok = g.agents.waagent.installed and 'waagent_enable="YES"' in rc
            out.append(rule.check(ok, ev("/etc/rc.conf", "waagent_enable")))
        elif rule is FBSD_02:
            ok = ('ifconfig_hn0="SYNCDHCP"' in rc or 'ifconfig_hn0="DHCP"' in rc) and (
                'sshd_enable="YES"' in rc
            )
            out.append(rule.check(ok, ev("/etc/rc.conf", "ifconfig_hn0, sshd_enable")))
        elif rule in (FBSD_07, FBSD_08, FBSD_09):
            out.append(rule.unreadable(f"needs {needs}; read from a UFS root only"))
        elif rule is FBSD_03:
            lc = g.system.files.get("/boot/loader.conf", "")
            out.append(rule.check("comconsole" in lc, ev("/boot/loader.conf", "console")))
        else:
            root = next((a for a in g.accounts.users if a.name == "root"), None)
            ok = root is not None and root.password == "locked"
            out.append(rule.check(ok, ev("/etc/master.passwd", root.password if root else "-")))
    swap = [p for p in facts.disk.partitions if p.has_type(GPT_FREEBSD_SWAP)]
    out.append(
        FBSD_04.check(
            not swap, *(ev("partition table", f"partition {p.index} freebsd-swap") for p in swap)
        )
    )
    if ctx.marketplace and facts.disk.partitions:
        first = min(p.start for p in facts.disk.partitions)
        out.append(FBSD_06.check(first >= 1024 * 1024, ev("partition table", f"{first} bytes")))
    return out
