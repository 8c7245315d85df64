"""The data directory is private: 0700 directories, 0600 files, for this user alone.

It holds the client secret, the SAS signing key and live SAS URLs (metadata.sqlite and its
WAL/SHM files), the token-signing and TLS keys, disk contents (blobs) and logs. ``azimg serve``
sets the process umask to 077 (every file made afterwards, by us, SQLite or a child process,
is private) and tightens what an older version or another tool left wider.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


def _tighten(path: Path) -> bool:
    """Drop group/other bits (owner bits kept: 0600 files, 0700 directories); symlinks are
    left alone, their targets are not ours to change."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o077:
        return False
    path.chmod(0o700 if stat.S_ISDIR(st.st_mode) else stat.S_IMODE(st.st_mode) & 0o700)
    return True


def secure_data_dir(data_dir: Path) -> list[Path]:
    """Set the umask, make ``data_dir`` (0700) and tighten everything under it that others
    could read or write. Returns the paths changed."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = [data_dir]
    for root, dirs, files in os.walk(data_dir):
        paths += [Path(root) / name for name in (*dirs, *files)]
    return [p for p in paths if _tighten(p)]
