"""Red Hat Enterprise Linux and rebuilds (prerequisites.md §7.3; rhel, centos, alma, rocky).

The RPM database (sqlite or Berkeley DB) is not read: package presence is judged by the files
the packages install, which the catalogue accepts as a fallback.
"""

from __future__ import annotations

from azimg.image.findings import Finding, Severity
from azimg.image.inspect import GuestFacts, ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev
from azimg.image.rules.agents import cloud_init_enabled
from azimg.image.rules.kernel import hv_initramfs_finding

RHEL_01 = Rule(
    "RHEL-01",
    W,
    "WALinuxAgent, cloud-init, cloud-utils-growpart, gdisk and hyperv-daemons installed",
    "yum install WALinuxAgent cloud-init cloud-utils-growpart gdisk hyperv-daemons",
)
RHEL_02 = Rule(
    "RHEL-02",
    W,
    "waagent, cloud-init, sshd and hypervkvpd enabled",
    "systemctl enable waagent cloud-init-local cloud-init cloud-config cloud-final sshd hypervkvpd",
)
RHEL_03 = Rule(
    "RHEL-03",
    B,
    "cloud-init hand-off: Provisioning.Agent=cloud-init|auto, ResourceDisk.Format=n, "
    "EnableSwap=n; datasource_list: [ Azure ]",
    "sed waagent.conf; write /etc/cloud/cloud.cfg.d/91-azure_datasource.cfg",
)
RHEL_04 = Rule(
    "RHEL-04",
    B,
    "hv drivers in the initramfs (dracut add_drivers)",
    "echo 'add_drivers+=\" hv_vmbus hv_netvsc hv_storvsc \"' > /etc/dracut.conf.d/azure.conf; "
    "dracut -f -v",
)
RHEL_05 = Rule(
    "RHEL-05",
    W,
    "/etc/default/grub: console=ttyS0,115200n8 earlyprintk net.ifnames=0, serial terminal, "
    "no rhgb quiet",
    "edit /etc/default/grub; grub2-mkconfig; grubby --update-kernel=ALL",
)
RHEL_07 = Rule(
    "RHEL-07",
    W,
    "eth0 comes up by DHCP (ifcfg-eth0 BOOTPROTO=dhcp ONBOOT=yes, or NetworkManager auto)",
    "create /etc/sysconfig/network-scripts/ifcfg-eth0 or an NM profile with ipv4.method auto",
)
CMD_09 = Rule(
    "CMD-09",
    A,
    "RHEL 8+: ENABLE_BLSCFG=true in /etc/default/grub",
    "set ENABLE_BLSCFG=true; grub2-editenv - unset kernelopts",
)
RHEL_13 = Rule(
    "RHEL-13",
    A,
    "cloud.cfg.d has 05_logging.cfg and 10-azure-kvp.cfg",
    "write the files (Red Hat's own images carry them)",
)
RHEL_06 = Rule(
    "RHEL-06",
    W,
    "RHEL 8+: /boot/grub2/grubenv is a regular file",
    "replace the link with the file it points to (grub2-editenv create, then set the entries)",
)
RHEL_09 = Rule("RHEL-09", A, "ClientAliveInterval 180", "set it in /etc/ssh/sshd_config")
RHEL_11 = Rule("RHEL-11", W, "root's temporary password is locked again", "passwd -l root")

FILES = {
    "WALinuxAgent": ("/usr/sbin/waagent",),
    "cloud-init": ("/usr/bin/cloud-init",),
    "cloud-utils-growpart": ("/usr/bin/growpart",),
    "gdisk": ("/usr/sbin/gdisk", "/sbin/gdisk"),
    "hyperv-daemons": ("/usr/sbin/hypervkvpd", "/usr/sbin/hv_kvp_daemon"),
}


def major(g: GuestFacts) -> int:
    v = g.os.version_id.split(".", 1)[0]
    return int(v) if v.isdigit() else 0


def cloud_init_handoff(g: GuestFacts, rule: Rule) -> Finding:
    """RHEL-03 / SUSE-07: waagent leaves provisioning and the resource disk to cloud-init."""
    why = blocked(g, "waagent", "cloud-init")
    if why:
        return rule.unreadable(why)
    wa, ci = g.agents.waagent, g.agents.cloud_init
    problems = []
    if not ci.installed:
        problems.append(ev("/usr/bin/cloud-init", "cloud-init not installed"))
    elif ci.datasource_list is None or "Azure" not in ci.datasource_list:
        problems.append(
            ev(
                ci.datasource_where or "/etc/cloud/cloud.cfg.d",
                f"datasource_list: {ci.datasource_list}",
            )
        )
    if wa.installed:
        agent = (wa.get("Provisioning.Agent") or "auto").lower()
        if agent not in ("auto", "cloud-init"):
            problems.append(ev("/etc/waagent.conf", f"Provisioning.Agent={agent}"))
        for key in ("ResourceDisk.Format", "ResourceDisk.EnableSwap"):
            val = (wa.get(key) or "y").lower()
            if val != "n":
                problems.append(ev("/etc/waagent.conf", f"{key}={val}"))
    ok = not problems
    return rule.check(
        ok, *problems or (ev("/etc/waagent.conf, cloud.cfg.d", "cloud-init owns it"),)
    )


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    if g.os.family != "rhel":
        return []
    return common(facts, ctx, RHEL_01, RHEL_04)


def common(
    facts: ImageFacts, ctx: CheckContext, pkg_rule: Rule, initrd_rule: Rule
) -> list[Finding]:
    g = facts.guest
    out = []
    missing = [n for n, paths in FILES.items() if not _present(g, n, paths)]
    out.append(
        pkg_rule.check(not missing, ev("/usr/sbin, /usr/bin", "missing: " + ", ".join(missing)))
    )
    units = {
        "waagent": ("waagent.service",),
        "cloud-init": ("cloud-init.service", "cloud-init-local.service", "cloud-init.target"),
        "sshd": ("sshd.service",),
        "hypervkvpd": ("hypervkvpd.service", "hv_kvp_daemon.service"),
    }
    off = [n for n, u in units.items() if not g.services.units(*u)]
    if pkg_rule is RHEL_01:
        out.append(
            RHEL_02.check(not off, ev("/etc/systemd/system", "not enabled: " + ", ".join(off)))
        )
        if ctx.generalized:
            out.append(cloud_init_handoff(g, RHEL_03))
    out.append(hv_initramfs_finding(g, initrd_rule))
    if pkg_rule is RHEL_01:
        cfg = g.boot.cmdline.configured
        if cfg is not None:
            need = ("console=ttyS0", "earlyprintk=ttyS0", "net.ifnames=0")
            lack = [n for n in need if not any(a.startswith(n) for a in cfg)]
            lack += [a for a in cfg if a in ("rhgb", "quiet")]
            out.append(RHEL_05.check(not lack, ev(g.boot.cmdline.configured_where, " ".join(lack))))
        ok = bool(g.network.dhcp) or (
            cloud_init_enabled(g) and g.agents.cloud_init.network_disabled is None
        )
        sev = Severity.blocker if 0 < major(g) <= 7 else None
        e = ev(
            g.network.dhcp[0].where if g.network.dhcp else "/etc/sysconfig/network-scripts",
            "DHCP" if ok else "no DHCP profile for eth0",
        )
        out.append(RHEL_07.passed(e) if ok else RHEL_07.failed(e, severity=sev))
        cai = g.accounts.sshd_config.get("clientaliveinterval")
        out.append(
            RHEL_09.check(
                cai is not None and cai.value == "180",
                ev(cai.where if cai else "/etc/ssh/sshd_config", cai.value if cai else "not set"),
            )
        )
        if major(g) >= 8 and g.boot.grubenv_symlink is not None:
            out.append(
                RHEL_06.check(
                    not g.boot.grubenv_symlink,
                    ev(
                        "/boot/grub2/grubenv",
                        ("symbolic link" if g.boot.grubenv_symlink else "regular file"),
                    ),
                )
            )
        grub = g.system.files.get("/etc/default/grub")
        if major(g) >= 8 and grub is not None:
            ok = "ENABLE_BLSCFG=true" in grub.replace('"', "")
            out.append(CMD_09.check(ok, ev("/etc/default/grub", "ENABLE_BLSCFG")))
        names = {p.rsplit("/", 1)[-1] for p in g.agents.cloud_init.config_files}
        lack = [n for n in ("05_logging.cfg", "10-azure-kvp.cfg") if n not in names]
        out.append(
            RHEL_13.check(not lack, ev("/etc/cloud/cloud.cfg.d", "missing: " + ", ".join(lack)))
        )
        root = next((a for a in g.accounts.users if a.name == "root"), None)
        if root is not None:
            out.append(RHEL_11.check(root.password == "locked", ev(root.where, root.password)))
    return out


def _present(g: GuestFacts, name: str, paths: tuple[str, ...]) -> bool:
    if name == "WALinuxAgent":
        return g.agents.waagent.installed
    if name == "cloud-init":
        return g.agents.cloud_init.installed
    return any(p in g.system.present for p in paths)
