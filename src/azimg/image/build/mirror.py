"""Which Debian archive to bootstrap from: the host's own apt sources, or ``--mirror``.

No archive host name is written in azimg: the host's apt configuration already says which mirror
this machine may use (a proxy, a snapshot, a local mirror). Entries for the host's release and
its -updates/-security pockets are re-targeted at the requested release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from azimg.errors import InvalidArgument

APT_DIR = Path("/etc/apt")
OS_RELEASE = Path("/etc/os-release")
# Suites without -updates/-security pockets.
_ROLLING = frozenset({"sid", "unstable", "experimental"})


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...]

    def line(self) -> str:
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def parse_one_line(text: str) -> list[AptSource]:
    """``deb [opts] URI SUITE COMP...`` lines (sources.list format); deb-src is skipped."""
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)  # options such as signed-by
        words = line.split()
        if len(words) >= 3 and words[0] == "deb":
            found.append(AptSource(words[1], words[2], tuple(words[3:]) or ("main",)))
    return found


def parse_deb822(text: str) -> list[AptSource]:
    """deb822 ``.sources`` stanzas: Types/URIs/Suites/Components, honouring ``Enabled: no``."""
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0].isspace() and key:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        comps = tuple(fields.get("components", "main").split()) or ("main",)
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                found.append(AptSource(uri, suite, comps))
    return found


def host_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    found: list[AptSource] = []
    main_list = apt_dir / "sources.list"
    if main_list.is_file():
        found += parse_one_line(main_list.read_text(errors="replace"))
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                found += parse_one_line(path.read_text(errors="replace"))
            elif path.suffix == ".sources":
                found += parse_deb822(path.read_text(errors="replace"))
    return found


def host_codename(os_release: Path = OS_RELEASE) -> str | None:
    if not os_release.is_file():
        return None
    for line in os_release.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME":
            return value.strip().strip('"') or None
    return None


def sources_for(
    release: str,
    *,
    mirror: str | None = None,
    host: list[AptSource] | None = None,
    codename: str | None = None,
) -> list[str]:
    """The sources.list lines for ``release``: host entries re-targeted, or ``mirror``.

    With ``mirror`` the main archive and -updates come from it; the host's -security entry (if
    any) is kept, since security archives are usually separate hosts.
    """
    host = host_sources() if host is None else host
    codename = host_codename() if codename is None else codename
    pockets: list[AptSource] = []
    if codename:
        for src in host:
            if src.suite == codename or src.suite.startswith(codename + "-"):
                pocket = src.suite[len(codename) :]
                if pocket and release in _ROLLING:
                    continue
                pockets.append(AptSource(src.uri, release + pocket, src.components))
    if mirror is not None:
        if "://" not in mirror:
            raise InvalidArgument(
                f"--mirror {mirror!r} is not a URI", hint="e.g. http://HOST/debian"
            )
        suites = [release] if release in _ROLLING else [release, release + "-updates"]
        security = [p for p in pockets if p.suite.endswith("-security")]
        pockets = [AptSource(mirror, s, ("main",)) for s in suites] + security
    if not pockets:
        raise InvalidArgument(
            f"the host's apt sources name no Debian archive for {codename or 'this host'}",
            hint="pass --mirror URI of a Debian archive",
        )
    seen: dict[str, None] = {}
    for p in pockets:
        seen.setdefault(p.line(), None)
    return list(seen)
