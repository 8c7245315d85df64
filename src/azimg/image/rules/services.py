"""Time and udev rules (prerequisites.md §6): the Hyper-V clock, one time daemon, udev rules."""

from __future__ import annotations

from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, CheckContext, Rule, W, ev

TIM_02 = Rule(
    "TIM-02",
    A,
    "chrony uses the Hyper-V PTP clock (refclock PHC /dev/ptp_hyperv)",
    "add 'refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0' to chrony.conf",
)

UDV_01 = Rule(
    "UDV-01",
    A,
    "Azure udev rules present (66-azure-storage.rules + 99-azure-product-uuid.rules, or "
    "azure-vm-utils)",
    "install waagent or azure-vm-utils",
)

UDV_02 = Rule(
    "UDV-02",
    A,
    "Hyper-V KVP daemon installed and enabled",
    "install hyperv-daemons",
)


def check_time_and_udev(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    """TIM-02 (chrony on the PTP clock), UDV-01 (Azure udev rules), UDV-02 (the KVP daemon)."""
    g = facts.guest
    out = []
    if g.services.chrony_refclock_ptp is not None:
        out.append(TIM_02.check(g.services.chrony_refclock_ptp, ev("chrony.conf", "refclock PHC")))
    azure = {"66-azure-storage.rules", "99-azure-product-uuid.rules"}
    ok = azure <= g.services.udev_rules or "80-azure-disk.rules" in g.services.udev_rules
    out.append(
        UDV_01.check(
            ok, ev("udev rules.d", ", ".join(sorted(azure & g.services.udev_rules)) or "none")
        )
    )
    kvp = g.services.units("hv-kvp-daemon.service", "hypervkvpd.service", "hv_kvp_daemon.service")
    # Debian's hyperv-daemons starts the daemons from a udev rule when /dev/vmbus/hv_kvp appears.
    kvp = kvp or any("hyperv-daemons" in r or "hv_kvp" in r for r in g.services.udev_rules)
    out.append(
        UDV_02.check(
            kvp, ev("/etc/systemd/system", "KVP daemon " + ("enabled" if kvp else "not enabled"))
        )
    )
    return out


TIM_03 = Rule(
    "TIM-03",
    W,
    "a udev rule creates /dev/ptp_hyperv when chrony refers to it",
    "add /etc/udev/rules.d/99-ptp_hyperv.rules "
    '(SUBSYSTEM=="ptp", ATTR{clock_name}=="hyperv", SYMLINK+="ptp_hyperv")',
)

TIM_04 = Rule("TIM-04", A, "only one time daemon enabled", "disable the extra time daemons")


def check_clock_sources(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    """TIM-03 (the ptp_hyperv udev rule chrony relies on) and TIM-04 (one time daemon)."""
    g = facts.guest
    out = []
    if g.services.chrony_refclock_ptp:
        out.append(
            TIM_03.check(
                g.services.ptp_hyperv_rule,
                ev(
                    "udev rules.d",
                    "ptp_hyperv rule " + ("present" if g.services.ptp_hyperv_rule else "absent"),
                ),
            )
        )
    daemons = {
        "chrony": ("chrony.service", "chronyd.service"),
        "timesyncd": ("systemd-timesyncd.service",),
        "ntpd": ("ntp.service", "ntpd.service", "ntpsec.service"),
    }
    on = [n for n, units in daemons.items() if g.services.units(*units)]
    out.append(TIM_04.check(len(on) <= 1, ev("/etc/systemd/system", ", ".join(on) or "none")))
    return out
