"""Host tools the builder drives: find them up front, run them with one-line failures."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from azimg.errors import AzimgError, ToolMissing

# tool → Debian package that provides it (the fix in the ToolMissing message).
HOST_TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "sfdisk": "fdisk",
    "mkfs.ext4": "e2fsprogs",
    "mkfs.fat": "dosfstools",
    "mmd": "mtools",
    "mcopy": "mtools",
    "grub-mkimage": "grub-common",
    "cp": "coreutils",
    "chroot": "coreutils",
}


class ToolFailed(AzimgError):
    """A host tool exited non-zero; the message carries its last line of stderr."""


def which(tool: str) -> str:
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if found is None:
        raise ToolMissing(tool, HOST_TOOLS.get(tool, tool))
    return found


def require_all() -> None:
    """Fail before any slow step if a tool is missing, not after the bootstrap."""
    for tool in HOST_TOOLS:
        which(tool)


def run(
    argv: Sequence[str | Path],
    *,
    what: str,
    hint: str | None = None,
    stdin: bytes | None = None,
    log: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run ``argv``; return stdout. On failure raise ``ToolFailed`` naming ``what`` went wrong.

    ``log`` keeps the full stderr for the user when a tool is chatty (mmdebstrap).
    """
    args = [str(a) for a in argv]
    args[0] = which(args[0])
    proc = subprocess.run(args, input=stdin, capture_output=True, check=False, env=env)
    err = proc.stderr.decode(errors="replace")
    if log is not None:
        log.write_text(err)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
        tail = lines[-1] if lines else f"exit code {proc.returncode}"
        where = f"; full log in {log}" if log is not None else ""
        raise ToolFailed(f"{what} failed: {tail}{where}", hint=hint)
    return proc.stdout.decode(errors="replace")
