"""The bootstrapped Debian root: one mmdebstrap run per (release, package set), kept as a tarball.

Every variant (agent, generation, specialized) starts from the same cached tree; what differs
between variants is applied later, on a fresh copy (``customize.py``). So the cache holds both
agents and the cloud kernel with the Hyper-V drivers already in its initramfs, and only a new
release or a new ``--packages`` set pays for another bootstrap. The archive mirror is not part of
the key: the same suite from two mirrors is the same set of packages.

A lock file per key makes concurrent builds (several test sessions on one machine) wait for one
bootstrap instead of running two.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from azimg.errors import AzimgError
from azimg.image.build import mirror as mirror_mod
from azimg.image.build.tools import ToolFailed, run

# Bump when the hooks below change what a cached tree contains.
RECIPE_VERSION = 1

# What every image carries. Both agents are here so that every --agent variant shares one
# bootstrap; the unused one is purged from the copy being built. grub-*-bin give GRUB modules
# of the guest's own release; nothing runs grub-install.
BASE_PACKAGES = (
    "systemd-sysv",
    "udev",
    "dbus",
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    "openssh-server",
    "ifupdown",
    "isc-dhcp-client",
    "netbase",
    "iproute2",
    "sudo",
    "eject",
    "python3",
    "openssl",
    "procps",
    "kmod",
    "e2fsprogs",
    "ca-certificates",
    "hyperv-daemons",
    "cloud-guest-utils",
    "libnss-myhostname",
    "chrony",
    "locales",
    "cloud-init",
    "waagent",
)

# KRN-02/KRN-04: the Hyper-V drivers named in the persistent initramfs-tools config, so later
# kernels keep them, and the initramfs rebuilt with them.
HYPERV_INITRAMFS_MODULES = ("hv_vmbus", "hv_storvsc", "hv_netvsc", "hv_utils")
_CUSTOMIZE_HOOK = (
    "printf '# Azure: Hyper-V drivers in the initramfs (added by azimg build)\\n"
    + "".join(f"{m}\\n" for m in HYPERV_INITRAMFS_MODULES)
    + '\' >> "$1/etc/initramfs-tools/modules"'
    + ' && chroot "$1" update-initramfs -u -k all'
)

_UNREACHABLE = re.compile(
    r"(Could not resolve|Temporary failure resolving|Failed to fetch|Unable to connect|"
    r"Connection refused|Connection timed out|Network is unreachable|No route to host|"
    r"Could not connect)",
    re.IGNORECASE,
)


class MirrorUnreachable(AzimgError):
    """The Debian archive could not be reached (no network, wrong --mirror)."""


@dataclass(frozen=True)
class CachedRoot:
    tarball: Path
    key: str
    hit: bool  # True when no bootstrap ran for this build


def default_cache_dir() -> Path:
    env = os.environ.get("AZIMG_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "azimg"


def package_set(extra: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(BASE_PACKAGES) | set(extra)))


def cache_key(release: str, packages: tuple[str, ...]) -> str:
    blob = json.dumps({"release": release, "packages": packages, "recipe": RECIPE_VERSION})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def bootstrap(
    release: str,
    extra_packages: tuple[str, ...],
    *,
    cache_dir: Path,
    mirror: str | None = None,
    refresh: bool = False,
) -> CachedRoot:
    """Return the cached root tarball for (release, packages), running mmdebstrap on a miss."""
    packages = package_set(extra_packages)
    key = cache_key(release, packages)
    folder = cache_dir / "rootfs"
    tarball = folder / f"{release}-{key}.tar"
    with _locked(folder / f"{release}-{key}.lock"):
        if tarball.is_file() and not refresh:
            return CachedRoot(tarball, key, hit=True)
        sources = mirror_mod.sources_for(release, mirror=mirror)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{release}-{key}.", suffix=".tar", dir=folder)
        os.close(fd)
        tmp = Path(tmp_name)
        log = folder / f"{release}-{key}.log"
        try:
            _mmdebstrap(release, packages, sources, tmp, log)
            (folder / f"{release}-{key}.json").write_text(
                json.dumps({"release": release, "packages": packages, "sources": sources})
            )
            tmp.replace(tarball)
        finally:
            tmp.unlink(missing_ok=True)
    return CachedRoot(tarball, key, hit=False)


def _mmdebstrap(
    release: str, packages: tuple[str, ...], sources: list[str], out: Path, log: Path
) -> None:
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=tar",
        "--aptopt=Acquire::Retries 3",
        f"--include={','.join(packages)}",
        f"--customize-hook={_CUSTOMIZE_HOOK}",
        release,
        str(out),
        *sources,
    ]
    try:
        run(argv, what=f"bootstrapping Debian {release} with mmdebstrap", log=log)
    except ToolFailed as err:
        text = log.read_text(errors="replace") if log.is_file() else ""
        if _UNREACHABLE.search(text):
            raise MirrorUnreachable(
                f"cannot reach the Debian archive ({', '.join(s.split()[1] for s in sources)})",
                hint="check the network or pass --mirror URI of a reachable Debian mirror",
            ) from err
        raise
