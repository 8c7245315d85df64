"""What starts at boot: enabled and masked systemd units, chrony's clock, udev rules."""

from __future__ import annotations

import re

from azimg.disk.guestfs import GuestFS, read_text
from azimg.image.facts.files import listdir, lstat


def read_units(fs: GuestFS) -> tuple[frozenset[str], frozenset[str]]:
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


def read_chrony(fs: GuestFS) -> bool | None:
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


def read_udev_rules(fs: GuestFS) -> frozenset[str]:
    out = set()
    for d in ("/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d"):
        out.update(listdir(fs, d))
    return frozenset(out)


def read_ptp_hyperv_rule(fs: GuestFS) -> bool:
    for d in ("/etc/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d"):
        for name in listdir(fs, d):
            if "ptp" not in name and name != "50-udev-default.rules":
                continue
            if "ptp_hyperv" in (read_text(fs, f"{d}/{name}", limit=256 * 1024) or ""):
                return True
    return False
