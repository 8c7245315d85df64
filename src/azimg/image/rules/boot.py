"""Boot rules (prerequisites.md §6): the kernel command line and GRUB's defaults."""

from __future__ import annotations

import re

from azimg.image.findings import Finding, Severity
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev
from azimg.image.rules.storage import fs_id_known

CMD_01 = Rule(
    "CMD-01",
    W,
    "the kernel command line has console=ttyS0 (Azure serial console, boot diagnostics)",
    "add console=ttyS0,115200n8 to GRUB_CMDLINE_LINUX in /etc/default/grub, regenerate grub.cfg",
)

CMD_02 = Rule("CMD-02", A, "the kernel command line has earlyprintk=ttyS0", "add it")

CMD_03 = Rule(
    "CMD-03",
    A,
    "no long rootdelay (an unconditional pause at every boot); prefer rootwait",
    "drop rootdelay=300, use rootwait",
)

CMD_04 = Rule(
    "CMD-04",
    W,
    "neither libata.atapi_enabled=0 nor reserve=0x1f0,0x8 on the command line",
    "remove them",
)

CMD_05 = Rule(
    "CMD-05", A, "no rhgb, quiet or splash (logs must reach the serial console)", "remove them"
)

CMD_08 = Rule(
    "CMD-08",
    W,
    "/etc/default/grub arguments match the generated boot configuration",
    "regenerate: update-grub / grub2-mkconfig -o ... / grubby --update-kernel=ALL",
)

CMD_10 = Rule(
    "CMD-10",
    B,
    "root= on the command line names a filesystem in the image",
    "regenerate the boot configuration for this disk's root filesystem",
)


def check_cmdline(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    why = blocked(g, "cmdline")
    if why:
        return [CMD_01.unreadable(why), CMD_10.unreadable(why)]
    c = g.boot.cmdline
    if c.args is None:
        return [
            CMD_01.unreadable("no boot loader configuration found (grub.cfg, BLS, kernel/cmdline)"),
            CMD_10.unreadable("no boot loader configuration found"),
        ]
    out = []
    where = c.where
    line = " ".join(c.args)
    arm = g.system.arch is not None and g.system.arch.value == "aarch64"
    console = "console=ttyAMA0" if arm else "console=ttyS0"
    sev = Severity.blocker if ctx.marketplace else None
    if c.has(console):
        out.append(CMD_01.passed(ev(where, line)))
    else:
        out.append(CMD_01.failed(ev(where, line), severity=sev))
    out.append(CMD_02.check(c.has("earlyprintk=ttyS0") or arm, ev(where, line)))
    delay = c.value("rootdelay")
    out.append(CMD_03.check(not (delay and delay.isdigit() and int(delay) >= 60), ev(where, line)))
    bad = [a for a in c.args if a in ("libata.atapi_enabled=0", "reserve=0x1f0,0x8")]
    out.append(CMD_04.check(not bad, ev(where, " ".join(bad) or line)))
    noisy = [a for a in c.args if a in ("rhgb", "quiet", "splash") or a.startswith("splash=")]
    out.append(CMD_05.check(not noisy, ev(where, " ".join(noisy) or line)))
    if c.configured is not None:
        ignore = {"$kernelopts", "$tuned_params", "${extra_cmdline}"}
        missing = [a for a in c.configured if a not in c.args and a not in ignore]
        e = ev(c.configured_where, f"not in {where}: {' '.join(missing)}" if missing else "same")
        out.append(CMD_08.check(not missing, e))
    root = c.value("root")
    if root is None:
        if g.os.family != "flat":
            out.append(CMD_10.failed(ev(where, "no root= argument")))
    else:
        out.append(_root_resolves(facts, root, where))
    return out


def _root_resolves(facts: ImageFacts, root: str, where: str) -> Finding:
    spec = root
    for prefix in ("/dev/disk/by-uuid/", "/dev/disk/by-label/", "/dev/disk/by-partuuid/"):
        if root.startswith(prefix):
            kind = {"uuid": "UUID", "label": "LABEL", "partuuid": "PARTUUID"}[
                prefix.split("by-")[1].rstrip("/")
            ]
            spec = f"{kind}={root[len(prefix) :]}"
    if "=" in spec:
        known = fs_id_known(facts, spec)
        if known is None:
            return CMD_10.unreadable(f"filesystem ids of this disk not known ({root})")
        return CMD_10.check(known, ev(where, f"root={root}"))
    if root.startswith(("/dev/mapper/", "/dev/disk/by-id/dm-")) or re.match(
        r"^/dev/[\w-]+/[\w-]+$", root
    ):
        return CMD_10.unreadable(f"root={root} is a device-mapper/LVM name; LVM is not read")
    m = re.match(r"^/dev/(sd[a-z]|nvme\d+n\d+p?|vd[a-z]|xvd[a-z]|hd[a-z])(\d+)$", root)
    if m:
        n = int(m.group(2))
        on_azure = not m.group(1).startswith(("vd", "xvd", "hd"))
        exists = any(p.index == n for p in facts.disk.partitions)
        return CMD_10.check(on_azure and exists, ev(where, f"root={root}"))
    return CMD_10.failed(ev(where, f"root={root} cannot be resolved"))


CMD_06 = Rule(
    "CMD-06",
    A,
    "net.ifnames=0 on the command line (the network config expects eth0)",
    "add net.ifnames=0 to GRUB_CMDLINE_LINUX",
)

CMD_07 = Rule(
    "CMD-07",
    A,
    "GRUB on the serial console: GRUB_TERMINAL has serial, GRUB_SERIAL_COMMAND set, "
    "GRUB_TIMEOUT > 0",
    'set GRUB_TERMINAL="serial console", GRUB_SERIAL_COMMAND="serial --speed=115200", '
    "GRUB_TIMEOUT=10",
)


def check_grub_defaults(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    """CMD-06 (net.ifnames=0 on RHEL-likes) and CMD-07 (GRUB on the serial console)."""
    g = facts.guest
    out = []
    if g.os.family in ("rhel", "ora") and g.boot.cmdline.args is not None:
        out.append(
            CMD_06.check(
                g.boot.cmdline.has("net.ifnames=0"), ev(g.boot.cmdline.where, "net.ifnames=0")
            )
        )
    grub = g.system.files.get("/etc/default/grub")
    if grub is not None:
        kv = _shell_vars(grub)
        timeout = kv.get("GRUB_TIMEOUT", "5")
        ok = "serial" in kv.get("GRUB_TERMINAL", "") + kv.get("GRUB_TERMINAL_OUTPUT", "")
        ok = ok and bool(kv.get("GRUB_SERIAL_COMMAND")) and timeout.isdigit() and int(timeout) > 0
        out.append(
            CMD_07.check(
                ok,
                ev(
                    "/etc/default/grub",
                    f"GRUB_TERMINAL={kv.get('GRUB_TERMINAL', '')!r}, timeout {timeout}",
                ),
            )
        )
    return out


def _shell_vars(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Z_]+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip().strip("\"'")
    return out
