"""Storage rules (prerequisites.md §6): fstab, swap, and the remote-NVMe readiness of GEN-08."""

from __future__ import annotations

import re

from azimg.image.findings import Finding, Severity
from azimg.image.inspect import ImageFacts
from azimg.image.rules import B, CheckContext, Rule, W, blocked, ev
from azimg.image.rules.agents import provisioner
from azimg.image.rules.kernel import default_kernel


def fs_id_known(facts: ImageFacts, spec: str) -> bool | None:
    """Whether UUID=/LABEL=/PARTUUID= spec names something on the disk; None if unknowable."""
    key, _, val = spec.partition("=")
    key = key.upper()
    if key not in ("UUID", "LABEL", "PARTUUID", "PARTLABEL"):
        return None
    if not facts.fs_ids:
        return None
    val = val.strip("\"'")
    if key in ("UUID", "PARTUUID"):
        val = val.lower()
    return f"{key}={val}" in facts.fs_ids


SWP_01 = Rule(
    "SWP-01",
    W,
    "no swap partition, swap entry or swap file on the OS disk",
    "remove the swap (and its fstab line); put swap on the resource disk",
)

SWP_02 = Rule(
    "SWP-02",
    W,
    "one owner of the resource disk: with cloud-init, ResourceDisk.Format=n and EnableSwap=n",
    "set ResourceDisk.Format=n and ResourceDisk.EnableSwap=n in /etc/waagent.conf",
)

SWP_05 = Rule(
    "SWP-05", W, "no leftover swap file under /mnt or /mnt/resource", "delete the swap file"
)


def check_swap(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    out = []
    sev = Severity.blocker if ctx.marketplace else None
    found = []
    for p in facts.disk.partitions:
        if p.is_swap:
            found.append(ev("partition table", f"partition {p.index} is swap ({p.type})"))
    for e in g.storage.fstab or ():
        if e.fstype == "swap":
            found.append(ev(e.where, f"{e.spec} {e.mountpoint} swap"))
    found += [ev(u, "swap unit") for u in g.storage.swap_units]
    found += [ev(f, "swap file") for f in g.storage.swap_files if not f.startswith("/mnt/")]
    why = blocked(g, "fstab", "swap")
    if why and not found:
        out.append(SWP_01.unreadable(why))
    elif found:
        out.append(SWP_01.failed(*found, severity=sev))
    else:
        out.append(SWP_01.passed(ev("partition table, /etc/fstab", "no swap")))
    mnt = [f for f in g.storage.swap_files if f.startswith("/mnt/")]
    out.append(SWP_05.check(not mnt, *(ev(f) for f in mnt)))
    if g.agents.waagent.installed and provisioner(g) == "cloud-init":
        fmt = g.agents.waagent.get("ResourceDisk.Format", "y")
        swp = g.agents.waagent.get("ResourceDisk.EnableSwap", "n")
        ok = (fmt or "").lower() == "n" and (swp or "").lower() == "n"
        out.append(
            SWP_02.check(
                ok, ev("/etc/waagent.conf", f"ResourceDisk.Format={fmt}, EnableSwap={swp}")
            )
        )
    return out


FS_01 = Rule(
    "FS-01",
    B,
    "/etc/fstab has no /dev/vd*, /dev/xvd* or /dev/hd* (they never exist on Azure)",
    "use UUID=, LABEL= or PARTUUID=",
)

FS_02 = Rule(
    "FS-02",
    W,
    "/etc/fstab has no /dev/sd* or /dev/nvme* (names move with disk order)",
    "use UUID=, LABEL= or PARTUUID=",
)

FS_03 = Rule(
    "FS-03",
    B,
    "every UUID=/LABEL=/PARTUUID= in fstab for /, /boot, /boot/efi, /usr, /var exists",
    "fix the ids in /etc/fstab",
)

FS_04 = Rule(
    "FS-04",
    W,
    "fstab parses and non-system entries carry nofail",
    "add nofail to data-disk and network mounts",
)

FS_05 = Rule(
    "FS-05",
    W,
    "no fstab entry mounts the resource disk by device name",
    "remove it; waagent or cloud-init mounts the resource disk",
)
SYSTEM_MOUNTS = (
    "/",
    "/boot",
    "/boot/efi",
    "/efi",
    "/usr",
    "/var",
    "/home",
    "/tmp",
    "/var/log",
    "/opt",
    "/srv",
)

PSEUDO_FS = (
    "proc",
    "sysfs",
    "tmpfs",
    "devpts",
    "swap",
    "none",
    "devtmpfs",
    "efivarfs",
    "securityfs",
    "cgroup",
    "cgroup2",
    "debugfs",
    "hugetlbfs",
    "mqueue",
    "bpf",
)


def check_fstab(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    why = blocked(g, "fstab")
    if why:
        return [FS_01.unreadable(why), FS_03.unreadable(why)]
    if g.storage.fstab is None:
        if g.os.family == "flat":
            return []
        return [
            FS_01.passed(ev("/etc/fstab", "absent")),
            FS_04.failed(
                ev("/etc/fstab", "absent"), fix="write /etc/fstab with the root filesystem by UUID"
            ),
        ]
    out = []
    never = [e for e in g.storage.fstab if re.match(r"^/dev/(vd|xvd|hd)[a-z]", e.spec)]
    out.append(FS_01.check(not never, *(ev(e.where, e.spec) for e in never)))
    unstable = [e for e in g.storage.fstab if re.match(r"^/dev/(sd[a-z]|nvme\d)", e.spec)]
    out.append(FS_02.check(not unstable, *(ev(e.where, e.spec) for e in unstable)))
    system = [
        e for e in g.storage.fstab if e.mountpoint in ("/", "/boot", "/boot/efi", "/usr", "/var")
    ]
    unknown, unknowable = [], False
    for e in system:
        known = fs_id_known(facts, e.spec)
        if known is None and "=" in e.spec:
            unknowable = True
        elif known is False:
            unknown.append(e)
    if unknown:
        out.append(FS_03.failed(*(ev(e.where, f"{e.spec} not found on the disk") for e in unknown)))
    elif unknowable:
        out.append(FS_03.unreadable("filesystem ids of this disk not known"))
    else:
        out.append(FS_03.passed(*(ev(e.where, e.spec) for e in system[:3])))
    others = [
        e
        for e in g.storage.fstab
        if e.mountpoint not in SYSTEM_MOUNTS
        and e.fstype not in PSEUDO_FS
        and "nofail" not in e.options
        and "noauto" not in e.options
    ]
    problems = [ev(x.where, f"unparsable: {x.value}") for x in g.storage.fstab_errors]
    problems += [ev(e.where, f"{e.mountpoint} without nofail") for e in others]
    out.append(FS_04.check(not problems, *problems))
    res = [
        e
        for e in g.storage.fstab
        if e.mountpoint in ("/mnt", "/mnt/resource") and e.spec.startswith("/dev/sd")
    ]
    out.append(FS_05.check(not res, *(ev(e.where, e.spec) for e in res)))
    return out


GEN_08 = Rule(
    "GEN-08",
    W,
    "remote NVMe: Gen2, nvme in the initramfs (or built in), nvme_core.io_timeout=240, "
    "fstab free of /dev/sd* and /dev/nvme*",
    "add nvme to the initramfs driver list, nvme_core.io_timeout=240 to the command line, "
    "UUID= in fstab; deploy as Gen2",
)


def check_nvme(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    """GEN-08, only when the VM size attaches the OS disk over remote NVMe (``--nvme``)."""
    if not ctx.nvme:
        return []
    g = facts.guest
    problems = []
    if ctx.generation == "1":
        problems.append(ev("--generation", "remote NVMe needs Gen2"))
    k = default_kernel(g)
    if k is not None and not k.built_in("nvme"):
        if k.initramfs_modules is None:
            return [GEN_08.unreadable(k.initramfs_error or "no initramfs listing")]
        if "nvme" not in k.initramfs_modules:
            problems.append(ev(k.initramfs or "/boot", "nvme not in the initramfs"))
    if g.boot.cmdline.value("nvme_core.io_timeout") != "240":
        problems.append(
            ev(g.boot.cmdline.where or "boot config", "nvme_core.io_timeout=240 absent")
        )
    problems += [
        ev(e.where, e.spec)
        for e in g.storage.fstab or ()
        if re.match(r"^/dev/(sd[a-z]|nvme\d)", e.spec)
    ]
    return [GEN_08.check(not problems, *problems or (ev("initramfs, cmdline, fstab", "ready"),))]
