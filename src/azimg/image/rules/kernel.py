"""Kernel rules (prerequisites.md §6): Hyper-V drivers built, loadable, and in the initramfs."""

from __future__ import annotations

from azimg.image.facts.kernel import KernelInfo
from azimg.image.findings import Finding, Severity
from azimg.image.inspect import GuestFacts, ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev, ev_loc
from azimg.image.rules.agents import provisioner
from azimg.image.rules.packages import version


def default_kernel(g: GuestFacts) -> KernelInfo | None:
    for k in g.kernel.kernels:
        if k.version == g.kernel.default_kernel:
            return k
    return g.kernel.kernels[0] if g.kernel.kernels else None


def hv_initramfs_finding(g: GuestFacts, rule: Rule) -> Finding:
    """KRN-02 (and the distro rules that restate it): hv_vmbus + hv_storvsc at early boot."""
    why = blocked(g, "kernel")
    if why:
        return rule.unreadable(why)
    k = default_kernel(g)
    if k is None:
        return rule.failed(ev("/lib/modules, /boot", "no kernel found"))
    where = f"/boot/config-{k.version}" if k.config is not None else f"/lib/modules/{k.version}"
    need = [m for m in ("hv_vmbus", "hv_storvsc") if not k.built_in(m)]
    if not need:
        return rule.passed(ev(where, "hv_vmbus and hv_storvsc built in"))
    if k.initramfs is None and g.os.family == "flat":
        return rule.unreadable("Flatcar links its initramfs into the kernel image; not read")
    if k.initramfs is None:
        return rule.failed(ev("/boot", f"no initramfs for kernel {k.version}"))
    if k.initramfs_error:
        return rule.unreadable(k.initramfs_error)
    if k.initramfs_modules is None:
        return rule.unreadable(f"{k.initramfs}: not read")
    missing = [m for m in need if m not in k.initramfs_modules]
    detail = f"missing: {', '.join(missing)}" if missing else f"{', '.join(need)} present"
    return rule.check(not missing, ev(k.initramfs, detail), kernel=k.version)


KRN_01 = Rule(
    "KRN-01",
    B,
    "the kernel has the Hyper-V VMBus, storage and network drivers (=y or =m)",
    "use the distribution's cloud kernel (e.g. linux-image-cloud-amd64) or enable CONFIG_HYPERV*",
)

KRN_02 = Rule(
    "KRN-02",
    B,
    "hv_vmbus and hv_storvsc are in the initramfs (or built in)",
    "initramfs-tools: add the modules to /etc/initramfs-tools/modules, update-initramfs -u; "
    'dracut: add_drivers+=" hv_vmbus hv_netvsc hv_storvsc ", dracut -f',
)

KRN_03 = Rule(
    "KRN-03",
    W,
    "hv_netvsc is in the initramfs (or built in)",
    "add hv_netvsc to the initramfs driver list and rebuild it",
)

KRN_04 = Rule(
    "KRN-04",
    W,
    "the Hyper-V driver list is persisted in initramfs config (future kernels keep it)",
    "add hv_vmbus hv_storvsc hv_netvsc to /etc/initramfs-tools/modules or a dracut.conf.d file",
)

KRN_06 = Rule(
    "KRN-06",
    W,
    "hv_utils and hv_balloon are available (time sync, KVP, shutdown)",
    "use the distribution's kernel",
)

KRN_07 = Rule(
    "KRN-07", B, "vfat is available and not disabled", "remove the modprobe.d override for vfat"
)

KRN_08 = Rule(
    "KRN-08",
    B,
    "udf is available and not disabled (waagent reads the provisioning media from UDF)",
    "remove the modprobe.d override for udf (CIS hardening disables it)",
)

KRN_09 = Rule(
    "KRN-09", W, "kernel 2.6.37 or later, or numa=off", "update the kernel or add numa=off"
)

KRN_10 = Rule(
    "KRN-10",
    A,
    "CONFIG_PCI_HYPERV available (accelerated networking)",
    "use the distribution's kernel",
)

KRN_11 = Rule(
    "KRN-11", W, "CONFIG_WATCHDOG and CONFIG_CIFS enabled", "use the distribution's kernel"
)


def check_kernel(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    why = blocked(g, "kernel")
    rules = (KRN_01, KRN_02, KRN_03, KRN_04, KRN_06, KRN_07, KRN_08)
    if why:
        return [r.unreadable(why) for r in rules]
    k = default_kernel(g)
    if k is None:
        return [KRN_01.failed(ev("/lib/modules, /boot", "no kernel found"))]
    out = []
    where = f"/boot/config-{k.version}" if k.config is not None else f"/lib/modules/{k.version}"
    avail = {m: k.available(m) for m in ("hv_vmbus", "hv_storvsc", "hv_netvsc")}
    if None in avail.values():
        out.append(KRN_01.unreadable(f"kernel {k.version}: no config or module lists"))
    else:
        missing = [m for m, ok in avail.items() if not ok]
        out.append(
            KRN_01.check(
                not missing,
                ev(where, f"missing: {', '.join(missing)}" if missing else "all three present"),
                kernel=k.version,
            )
        )
    need_initrd = [m for m in ("hv_vmbus", "hv_storvsc") if not k.built_in(m)]
    net_builtin = k.built_in("hv_netvsc")
    out.append(hv_initramfs_finding(g, KRN_02))
    if net_builtin:
        out.append(KRN_03.passed(ev(where, "hv_netvsc built in")))
    elif k.initramfs_modules is not None and k.initramfs:
        ok = "hv_netvsc" in k.initramfs_modules
        out.append(
            KRN_03.check(ok, ev(k.initramfs, "hv_netvsc " + ("present" if ok else "absent")))
        )
    elif k.initramfs_error:
        out.append(KRN_03.unreadable(k.initramfs_error))
    if not need_initrd:
        out.append(KRN_04.passed(ev(where, "built in")))
    else:
        lines = list(g.kernel.initramfs_config)
        ok = any("hv_" in loc.value or "MODULES=most" in loc.value for loc in lines)
        evs = [ev_loc(loc) for loc in lines[:3]] or [ev("/etc", "no driver list persisted")]
        out.append(KRN_04.check(ok, *evs))
    extras = [m for m in ("hv_utils", "hv_balloon") if k.available(m) is False]
    if k.available("hv_utils") is not None:
        out.append(
            KRN_06.check(not extras, ev(where, f"missing: {', '.join(extras)}" if extras else "ok"))
        )
    for rule, mod in ((KRN_07, "vfat"), (KRN_08, "udf")):
        sev = rule.severity
        if mod == "udf" and provisioner(g) == "cloud-init":
            ci_ver = (g.packages.installed or {}).get("cloud-init")
            if ci_ver is None or version(ci_ver) >= (21, 2):
                sev = Severity.warning
        off = g.kernel.modprobe_disabled.get(mod)
        if off is not None:
            out.append(rule.failed(ev_loc(off), severity=sev))
        elif k.available(mod) is False:
            out.append(rule.failed(ev(where, f"{mod} not built"), severity=sev))
        elif k.available(mod) is None:
            out.append(rule.unreadable(f"kernel {k.version}: no config or module lists"))
        else:
            f = rule.passed(ev(where, f"{mod} available, not disabled"))
            out.append(f)
    kv = version(k.version)
    if kv:
        out.append(
            KRN_09.check(kv >= (2, 6, 37) or g.boot.cmdline.has("numa=off"), ev(where, k.version))
        )
    if k.config is not None:
        pci = k.config.get("CONFIG_PCI_HYPERV") in ("y", "m") or k.available("pci_hyperv")
        out.append(KRN_10.check(bool(pci), ev(where, "CONFIG_PCI_HYPERV")))
        miss = [s for s in ("CONFIG_WATCHDOG", "CONFIG_CIFS") if k.config.get(s) not in ("y", "m")]
        out.append(KRN_11.check(not miss, ev(where, ", ".join(miss) or "both enabled")))
    return out


TIM_01 = Rule("TIM-01", W, "hv_utils available (VMICTimeSync)", "use the distribution's kernel")


def check_time_sync_driver(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    """TIM-01: hv_utils (VMICTimeSync) in the default kernel, when its module lists are known."""
    k = default_kernel(facts.guest)
    if k is None or k.available("hv_utils") is None:
        return []
    return [
        TIM_01.check(bool(k.available("hv_utils")), ev(f"/lib/modules/{k.version}", "hv_utils"))
    ]
