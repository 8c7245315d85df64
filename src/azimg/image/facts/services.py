"""What starts at boot: enabled and masked systemd units, chrony's clock, udev rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from azimg.disk.guestfs import GuestFS, read_text
from azimg.image.facts.files import Guard, listdir, lstat


@dataclass(frozen=True)
class ServiceFacts:
    units_enabled: frozenset[str] = frozenset()
    units_masked: frozenset[str] = frozenset()
    chrony_refclock_ptp: bool | None = None  # None: no chrony config
    udev_rules: frozenset[str] = frozenset()  # rule file names in etc/lib udev dirs
    ptp_hyperv_rule: bool = False  # a udev rule creates /dev/ptp_hyperv

    def units(self, *names: str) -> bool:
        return any(n in self.units_enabled for n in names)


def read_services(fs: GuestFS, guard: Guard) -> ServiceFacts:
    enabled, masked = guard("units", lambda: _read_units(fs), (frozenset(), frozenset()))
    return ServiceFacts(
        units_enabled=enabled,
        units_masked=masked,
        chrony_refclock_ptp=guard("chrony", lambda: _read_chrony(fs), None),
        udev_rules=guard("udev", lambda: _read_udev_rules(fs), frozenset()),
        ptp_hyperv_rule=guard("udev", lambda: _read_ptp_hyperv_rule(fs), False),
    )


def _read_units(fs: GuestFS) -> tuple[frozenset[str], frozenset[str]]:
    enabled, masked = set(), set()
    base = "/etc/systemd/system"
    for name in listdir(fs, base):
        path = f"{base}/{name}"
        st = lstat(fs, path)
        if st is None:
            continue
        if st.is_symlink:
            try:
                if fs.readlink(path) == "/dev/null":
                    masked.add(name)
            except OSError:
                pass
        elif st.is_dir and name.endswith((".wants", ".requires")):
            enabled.update(listdir(fs, path))
    return frozenset(enabled - masked), frozenset(masked)


def _read_chrony(fs: GuestFS) -> bool | None:
    paths = ["/etc/chrony.conf", "/etc/chrony/chrony.conf"]
    for d in ("/etc/chrony/conf.d", "/etc/chrony.d", "/etc/chrony/sources.d"):
        paths += [f"{d}/{n}" for n in listdir(fs, d)]
    found = None
    for path in paths:
        text = read_text(fs, path)
        if text is None:
            continue
        found = bool(found)
        if re.search(r"^\s*refclock\s+PHC\s+/dev/ptp_hyperv", text, re.M):
            found = True
    return found


def _read_udev_rules(fs: GuestFS) -> frozenset[str]:
    out = set()
    for d in ("/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d"):
        out.update(listdir(fs, d))
    return frozenset(out)


def _read_ptp_hyperv_rule(fs: GuestFS) -> bool:
    for d in ("/etc/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d"):
        for name in listdir(fs, d):
            if "ptp" not in name and name != "50-udev-default.rules":
                continue
            if "ptp_hyperv" in (read_text(fs, f"{d}/{name}", limit=256 * 1024) or ""):
                return True
    return False
