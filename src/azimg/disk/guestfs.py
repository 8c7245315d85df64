"""The read-only view of a guest's files that filesystem readers implement and inspection reads.

Two kinds of implementation meet here: filesystem readers over image bytes (ext4, XFS, FAT in
``azimg.disk``) and ``DirectoryFS`` over a root tree on the host (tests, and images already
unpacked). Rules never know which one they read. Paths are guest paths (``/etc/fstab``);
symlinks resolve inside the guest root, never on the host.

Contract for implementations: raise ``FileNotFoundError`` for a missing path,
``NotADirectoryError``/``IsADirectoryError`` as ``os`` does, and ``azimg.errors.CorruptImage``
for bytes that break the format. ``read_file`` never returns more than ``limit`` bytes, so a
hostile image cannot make us read gigabytes. ``bytes_read`` counts bytes pulled from the
underlying image (for the benchmark's "bytes we read").
"""

from __future__ import annotations

import os
import posixpath
import stat as statmod
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

DEFAULT_READ_LIMIT = 64 * 1024 * 1024
MAX_SYMLINK_HOPS = 40


@dataclass(frozen=True)
class GuestStat:
    mode: int  # full st_mode: type bits and permissions
    size: int
    uid: int = 0
    gid: int = 0

    @property
    def is_dir(self) -> bool:
        return statmod.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return statmod.S_ISREG(self.mode)

    @property
    def is_symlink(self) -> bool:
        return statmod.S_ISLNK(self.mode)


@runtime_checkable
class GuestFS(Protocol):
    """A read-only guest filesystem. ``lstat``/``readlink`` see links; the rest follow them."""

    label: str  # e.g. "ext4 on partition 1" or a host directory; used in evidence

    @property
    def bytes_read(self) -> int: ...

    def lstat(self, path: str) -> GuestStat: ...

    def readlink(self, path: str) -> str: ...

    def listdir(self, path: str) -> list[str]: ...

    def read_file(self, path: str, *, limit: int = DEFAULT_READ_LIMIT) -> bytes: ...


def resolve(fs: GuestFS, path: str) -> str:
    """Resolve symlinks in ``path`` inside the guest root; raises FileNotFoundError on loops."""
    parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
    done: list[str] = []
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        current = "/" + "/".join([*done, name])
        st = fs.lstat(current)
        if st.is_symlink:
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise FileNotFoundError(f"too many symlinks resolving {path}")
            target = fs.readlink(current)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
        else:
            done.append(name)
    return "/" + "/".join(done)


def stat(fs: GuestFS, path: str) -> GuestStat:
    return fs.lstat(resolve(fs, path))


def exists(fs: GuestFS, path: str) -> bool:
    try:
        stat(fs, path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def read_text(fs: GuestFS, path: str, *, limit: int = 1024 * 1024) -> str | None:
    """The file's text after following links, or None when it is absent."""
    try:
        return fs.read_file(resolve(fs, path), limit=limit).decode("utf-8", "replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


class DirectoryFS:
    """A host directory seen as a guest root (symlinks resolved inside it, never outside)."""

    def __init__(self, root: Path, label: str | None = None) -> None:
        self.root = Path(root)
        self.label = label or str(root)
        self._read = 0

    @property
    def bytes_read(self) -> int:
        return self._read

    def _host(self, path: str) -> str:
        rel = posixpath.normpath("/" + path).lstrip("/")
        return os.path.join(self.root, rel) if rel else str(self.root)

    def lstat(self, path: str) -> GuestStat:
        st = os.lstat(self._host(path))
        return GuestStat(mode=st.st_mode, size=st.st_size, uid=st.st_uid, gid=st.st_gid)

    def readlink(self, path: str) -> str:
        return os.readlink(self._host(path))

    def listdir(self, path: str) -> list[str]:
        host = self._host(path)
        if os.path.islink(host):
            raise NotADirectoryError(path)
        return sorted(os.listdir(host))

    def read_file(self, path: str, *, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        host = self._host(path)
        if os.path.islink(host):
            return self.read_file(resolve(self, path), limit=limit)
        with open(host, "rb") as fh:
            data = fh.read(limit)
        self._read += len(data)
        return data
