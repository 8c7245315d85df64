"""Located values and the small bounded readers every kind of fact is read with.

Each reader answers "absent" (an empty list, None, False) for a missing path instead of raising;
what breaks the format still raises, and ``inspect.gather`` turns it into an unreadable facet.
"""

from __future__ import annotations

import re
import shlex
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from azimg.disk.guestfs import GuestFS, GuestStat, read_text, resolve, stat
from azimg.errors import AzimgError

T = TypeVar("T")

# Hostile guest bytes can make a reader fail in these ways; the facet becomes "unreadable".
FACET_FAILURES = (
    AzimgError,
    OSError,
    ValueError,
    UnicodeError,
    RecursionError,
    IndexError,
    KeyError,
    OverflowError,
    struct.error,
)


class Guard:
    """Runs one facet's reader; a failure on hostile bytes records the facet as unreadable.

    The facet names are the ones rules ask ``blocked()`` about (``"kernel"``, ``"ssh"``, ...).
    """

    def __init__(self) -> None:
        self.unreadable: dict[str, str] = {}

    def __call__(self, facet: str, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except FACET_FAILURES as err:
            self.unreadable[facet] = f"{type(err).__name__}: {err}"
            return default


@dataclass(frozen=True)
class Located:
    """A value and where it was read: ``/etc/fstab:3``."""

    value: str
    where: str


def listdir(fs: GuestFS, path: str) -> list[str]:
    try:
        return fs.listdir(resolve(fs, path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def lstat(fs: GuestFS, path: str) -> GuestStat | None:
    try:
        return fs.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def is_file(fs: GuestFS, path: str) -> bool:
    try:
        return stat(fs, path).is_file
    except (FileNotFoundError, NotADirectoryError):
        return False


def lines(text: str) -> list[tuple[int, str]]:
    """Non-comment, non-blank lines with their 1-based numbers."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s and not s.startswith("#"):
            out.append((n, s))
    return out


def kv_file(fs: GuestFS, path: str, sep: str = "=") -> dict[str, Located]:
    """KEY=VALUE files (waagent.conf, rc.conf, os-release): later lines win, quotes dropped."""
    text = read_text(fs, path)
    out: dict[str, Located] = {}
    if text is None:
        return out
    for n, line in lines(text):
        if sep not in line:
            continue
        key, _, value = line.partition(sep)
        value = value.split(" #", 1)[0].strip().strip("\"'")
        out[key.strip()] = Located(value, f"{path}:{n}")
    return out


def shell_assignments(text: str, path: str) -> dict[str, Located]:
    """VAR="value" lines of /etc/default/grub, with $VAR references expanded."""
    out: dict[str, Located] = {}
    for n, line in lines(text):
        m = re.match(r"^(?:export\s+)?([A-Za-z_]\w*)=(.*)$", line)
        if not m:
            continue
        raw = m.group(2)
        try:
            parts = shlex.split(raw, comments=True)
        except ValueError:
            parts = [raw.strip("\"'")]
        value = " ".join(parts)
        value = re.sub(
            r"\$\{?([A-Za-z_]\w*)\}?",
            lambda mm: out[mm.group(1)].value if mm.group(1) in out else "",
            value,
        )
        out[m.group(1)] = Located(value, f"{path}:{n}")
    return out


def files_under(fs: GuestFS, base: str, *, limit: int = 200) -> tuple[str, ...]:
    """Regular files and links under ``base`` (bounded walk; loops cannot recurse forever)."""
    out: list[str] = []
    stack = [base]
    seen = 0
    while stack and len(out) < limit and seen < 2000:
        d = stack.pop()
        for name in listdir(fs, d):
            seen += 1
            path = f"{d}/{name}"
            st = lstat(fs, path)
            if st is None:
                continue
            if st.is_dir:
                stack.append(path)
            else:
                out.append(path)
    return tuple(sorted(out))
