"""Installed packages (the dpkg database) and the package sources the image will use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from azimg.disk.guestfs import GuestFS, read_text
from azimg.image.facts.files import Guard, Located, lines, listdir


@dataclass(frozen=True)
class PackageFacts:
    installed: Mapping[str, str] | None = None  # dpkg name -> version; None: no dpkg database
    rpm_db: bool = False
    apt_sources: tuple[Located, ...] = ()  # "deb URI suite components" or deb822 URIs
    yum_repos: tuple[Located, ...] = ()


def read_packages(fs: GuestFS, guard: Guard) -> PackageFacts:
    return PackageFacts(
        installed=guard("packages", lambda: _read_dpkg(fs), None),
        rpm_db=guard("packages", lambda: bool(listdir(fs, "/var/lib/rpm")), False),
        apt_sources=guard("packages", lambda: _read_apt_sources(fs), ()),
        yum_repos=guard("packages", lambda: _read_yum_repos(fs), ()),
    )


def _read_dpkg(fs: GuestFS) -> dict[str, str] | None:
    text = read_text(fs, "/var/lib/dpkg/status", limit=32 * 1024 * 1024)
    if text is None:
        return None
    out = {}
    for stanza in text.split("\n\n"):
        name = version = status = ""
        for line in stanza.splitlines():
            if line.startswith("Package: "):
                name = line[9:].strip()
            elif line.startswith("Version: "):
                version = line[9:].strip()
            elif line.startswith("Status: "):
                status = line[8:].strip()
        if name and status.endswith(" installed"):
            out[name] = version
    return out


def _read_apt_sources(fs: GuestFS) -> tuple[Located, ...]:
    out = []
    paths = ["/etc/apt/sources.list"] + [
        f"/etc/apt/sources.list.d/{n}" for n in sorted(listdir(fs, "/etc/apt/sources.list.d"))
    ]
    for path in paths:
        for n, line in lines(read_text(fs, path) or ""):
            if line.startswith(("deb ", "deb-src ", "URIs:", "Suites:")):
                out.append(Located(line, f"{path}:{n}"))
    return tuple(out)


def _read_yum_repos(fs: GuestFS) -> tuple[Located, ...]:
    out = []
    for d in ("/etc/yum.repos.d", "/etc/zypp/repos.d"):
        for name in sorted(listdir(fs, d)):
            path = f"{d}/{name}"
            for n, line in lines(read_text(fs, path) or ""):
                if line.startswith(("[", "enabled", "baseurl", "mirrorlist", "autorefresh")):
                    out.append(Located(line, f"{path}:{n}"))
    return tuple(out)
