"""The bootstrapped Debian root: one mmdebstrap run per (release, package set), kept unpacked.

Every variant (agent, generation, specialized) starts from the same cached tree; what differs
between variants is applied later, on a fresh copy (``customize.py``). So the cache holds both
agents and the cloud kernel with the Hyper-V drivers already in its initramfs, and only a new
release or a new ``--packages`` set pays for another bootstrap. The archive mirror is not part of
the key: the same suite from two mirrors is the same set of packages.

A lock file per key makes concurrent builds (several test sessions on one machine) wait for one
bootstrap instead of running two.

A build gets its own copy of the tree in seconds: ``/usr`` and ``/boot`` (95% of the bytes) are
hard-linked, everything else is copied. That is safe because nothing a build does writes into an
existing file there: customize.py replaces files (unlink, then write), and the chroot steps
(dpkg --purge, useradd) only unlink files under /usr, or rewrite files under /etc and /var,
which are real copies.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from azimg.errors import AzimgError, InvalidArgument
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


_MISSING_PACKAGE = re.compile(
    r"Unable to locate package (\S+)|Package '?(\S+?)'? has no installation"
)
# apt's own error lines, not mmdebstrap's "failed to run" summary.
_APT_ERROR = re.compile(r"^E: (?!mmdebstrap failed|.*failed to run|apt-get .* failed)")


class MirrorUnreachable(AzimgError):
    """The Debian archive could not be reached (no network, wrong --mirror)."""


# Top-level directories shared with the cache by hard links (see the module docstring).
LINKED = frozenset({"usr", "boot"})


@dataclass(frozen=True)
class CachedRoot:
    tree: Path
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
def _locked(path: Path, *, shared: bool = False) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
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
    """Return the cached root tree for (release, packages), running mmdebstrap on a miss."""
    packages = package_set(extra_packages)
    key = cache_key(release, packages)
    folder = cache_dir / "rootfs"
    tree = folder / f"{release}-{key}"
    with _locked(folder / f"{release}-{key}.lock"):
        if (tree / "etc/os-release").exists() and not refresh:
            return CachedRoot(tree, key, hit=True)
        sources = mirror_mod.sources_for(release, mirror=mirror)
        tmp = Path(tempfile.mkdtemp(prefix=f".{release}-{key}.", dir=folder))
        log = folder / f"{release}-{key}.log"
        try:
            _mmdebstrap(release, packages, sources, tmp, log)
            (folder / f"{release}-{key}.json").write_text(
                json.dumps({"release": release, "packages": packages, "sources": sources})
            )
            if tree.exists():
                shutil.rmtree(tree)
            tmp.rename(tree)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return CachedRoot(tree, key, hit=False)


def work_dir(cache_dir: Path, *, stale_after: float = 6 * 3600) -> Path:
    """Where build trees live (next to the cache, for hard links); sweeps ones a crash left."""
    folder = cache_dir / "work"
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in folder.glob("root-*"):
        if now - old.stat().st_mtime > stale_after:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def copy_tree(cached: Path, dest: Path) -> None:
    """A private copy of the cached tree at ``dest`` (new, empty): links where safe, else copies.

    Holds the key's lock shared, so a ``--refresh`` elsewhere cannot swap the tree mid-copy.
    Falls back to a full copy when ``dest`` is on another filesystem.
    """
    with _locked(cached.parent / f"{cached.name}.lock", shared=True):
        _copy_tree(cached, dest)


def _copy_tree(cached: Path, dest: Path) -> None:
    linked = sorted(str(p) for p in cached.iterdir() if p.name in LINKED)
    copied = sorted(str(p) for p in cached.iterdir() if p.name not in LINKED)
    if copied:
        run(["cp", "-a", *copied, dest], what="copying the cached root")
    if linked:
        try:
            run(["cp", "-al", *linked, dest], what="linking the cached root")
        except ToolFailed:
            for name in linked:
                shutil.rmtree(dest / Path(name).name, ignore_errors=True)
            run(["cp", "-a", "--reflink=auto", *linked, dest], what="copying the cached root")


def _mmdebstrap(
    release: str, packages: tuple[str, ...], sources: list[str], out: Path, log: Path
) -> None:
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=directory",
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
        archives = ", ".join(dict.fromkeys(s.split()[1] for s in sources))
        if "does not have a Release file" in text:
            raise InvalidArgument(
                f"Debian release {release!r} is not on {archives}",
                hint="check --release (e.g. bookworm) or --mirror",
            ) from err
        if _UNREACHABLE.search(text):
            raise MirrorUnreachable(
                f"cannot reach the Debian archive ({archives})",
                hint="check the network or pass --mirror URI of a reachable Debian mirror",
            ) from err
        missing = _MISSING_PACKAGE.search(text)
        if missing:
            raise InvalidArgument(
                f"package {missing.group(1) or missing.group(2)!r} is not in Debian {release}",
                hint="check --packages",
            ) from err
        first = next((ln for ln in text.splitlines() if _APT_ERROR.match(ln)), None)
        if first:
            raise ToolFailed(
                f"bootstrapping Debian {release} failed: {first}", hint=str(log)
            ) from err
        raise
