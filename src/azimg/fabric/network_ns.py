"""Network namespaces from Python: commands in them, and sockets created inside them.

A Linux network namespace is a property of each *thread*: ``setns(2)`` on one thread moves
only that thread, and a socket belongs forever to the namespace it was created in. So
``in_netns(name, fn)`` runs ``fn`` on a short-lived thread that first joins the namespace;
sockets it returns (listeners on 168.63.129.16, the DHCP sockets, outgoing connections of the
public-IP forwarder) then work from any thread of this process. Named namespaces are the
``ip netns`` ones (``/run/netns/<name>``). Python 3.11 has no ``os.setns``: ctypes it is.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from azimg.errors import AzimgError

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(AzimgError):
    """A namespace, link or ruleset could not be set up (the command's own words follow)."""


def run(argv: list[str], *, stdin: str | None = None) -> str:
    """Run a networking command (``ip``, ``nft``, ``sysctl``); its stderr in the error."""
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except OSError as err:  # not installed: setup.sh installs iproute2 and nftables
        raise NetnsError(f"{argv[0]}: {err.strerror}") from None
    if proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def ip(netns: str | None, *args: str) -> str:
    return run(["ip", *(["-n", netns] if netns else []), *args])


def nft(netns: str | None, script: str) -> None:
    """Apply an nft script atomically (one transaction) in ``netns`` (None: this namespace)."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    run([*prefix, "nft", "-f", "-"], stdin=script)


def sysctl(netns: str, key: str, value: str) -> None:
    run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", f"{key}={value}"])


def exists(netns: str) -> bool:
    return (NETNS_DIR / netns).exists()


def create(netns: str) -> None:
    if not exists(netns):
        ip(None, "netns", "add", netns)


def delete(netns: str) -> None:
    if exists(netns):
        ip(None, "netns", "delete", netns)


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """``fn()`` evaluated on a thread inside ``netns`` (see the module docstring)."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise NetnsError(f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as err:
            box["error"] = err

    t = threading.Thread(target=body, name=f"netns-{netns}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
