"""Facts about a guest read offline from its files, for the rules of ``azimg check``.

Everything here reads through the ``GuestFS`` protocol, so the same code runs over a host
directory (tests) and over ext4/XFS/FAT readers on image bytes. Two layers:

* ``DiskLayout`` (``facts/layout.py``) — what the partition table and the ESP say (filled by
  ``image/check.py`` from the disk readers); generation rules need nothing else.
* ``GuestFacts`` — what the root filesystem (with /boot and /boot/efi mounted over it by
  ``MountedFS``) says. Each kind of fact has its own module under ``image/facts/`` (its types and
  its readers); this module only walks them and guards each one.

Gathering never raises for bad guest content: each facet that cannot be read is recorded in
``GuestFacts.unreadable`` with the reason, and the rules that need it report ``unreadable``
instead of passing. Reads are bounded (``read_text`` limits) so a hostile image cannot make
us read gigabytes.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from azimg.disk.guestfs import DEFAULT_READ_LIMIT, GuestFS, GuestStat
from azimg.errors import CorruptImage
from azimg.image.facts.accounts import AccountFacts, read_accounts
from azimg.image.facts.agents import AgentFacts, read_agents
from azimg.image.facts.boot import BootFacts, read_boot
from azimg.image.facts.files import Guard
from azimg.image.facts.kernel import KernelFacts, read_kernel
from azimg.image.facts.layout import DiskLayout
from azimg.image.facts.network import NetworkFacts, read_network
from azimg.image.facts.packages import PackageFacts, read_packages
from azimg.image.facts.services import ServiceFacts, read_services
from azimg.image.facts.storage import StorageFacts, read_storage
from azimg.image.facts.system import OsInfo, SystemFacts, read_os, read_system

MAX_GATHER_BYTES = 512 * 1024 * 1024  # an initramfs is the biggest file read (tens of MB)
MAX_DIR_ENTRIES = 4096


# ----------------------------------------------------------------------------------------------
# Guest facts


@dataclass(frozen=True)
class GuestFacts:
    """Everything the rules need to know about one guest root, one field per kind of fact."""

    label: str
    os: OsInfo
    boot: BootFacts = field(default_factory=BootFacts)
    kernel: KernelFacts = field(default_factory=KernelFacts)
    agents: AgentFacts = field(default_factory=AgentFacts)
    storage: StorageFacts = field(default_factory=StorageFacts)
    network: NetworkFacts = field(default_factory=NetworkFacts)
    accounts: AccountFacts = field(default_factory=AccountFacts)
    packages: PackageFacts = field(default_factory=PackageFacts)
    services: ServiceFacts = field(default_factory=ServiceFacts)
    system: SystemFacts = field(default_factory=SystemFacts)
    unreadable: Mapping[str, str] = field(default_factory=dict)  # facet -> why


@dataclass(frozen=True)
class ImageFacts:
    """The whole input of the rules: the disk layout and the guest's facts."""

    disk: DiskLayout
    guest: GuestFacts
    root_partition: int | None = None
    fs_ids: frozenset[str] = frozenset()  # "UUID=..", "LABEL=..", "PARTUUID=.." found on disk


# ----------------------------------------------------------------------------------------------
# A root with /boot and /boot/efi mounted over it


class MountedFS:
    """Routes guest paths to the filesystem mounted deepest above them (like the kernel)."""

    def __init__(self, root: GuestFS, mounts: Mapping[str, GuestFS] | None = None) -> None:
        self.root = root
        self.mounts = {posixpath.normpath(k): v for k, v in (mounts or {}).items() if k != "/"}
        self.label = root.label

    @property
    def bytes_read(self) -> int:
        return self.root.bytes_read + sum(fs.bytes_read for fs in self.mounts.values())

    def _route(self, path: str) -> tuple[GuestFS, str]:
        norm = posixpath.normpath("/" + path.lstrip("/"))  # "//x" stays "//x" in POSIX
        for mp in sorted(self.mounts, key=len, reverse=True):
            if norm == mp or norm.startswith(mp + "/"):
                return self.mounts[mp], "/" + norm[len(mp) :].lstrip("/")
        return self.root, norm

    def lstat(self, path: str) -> GuestStat:
        fs, sub = self._route(path)
        try:
            return fs.lstat(sub)
        except (FileNotFoundError, NotADirectoryError):
            # A directory on the way to a mount point exists even if the lower fs lacks it.
            norm = posixpath.normpath("/" + path.lstrip("/"))
            if any(mp.startswith(norm.rstrip("/") + "/") for mp in self.mounts):
                return GuestStat(mode=0o040755, size=0)
            raise

    def readlink(self, path: str) -> str:
        fs, sub = self._route(path)
        return fs.readlink(sub)

    def listdir(self, path: str) -> list[str]:
        fs, sub = self._route(path)
        return fs.listdir(sub)

    def read_file(self, path: str, *, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        fs, sub = self._route(path)
        return fs.read_file(sub, limit=limit)


# ----------------------------------------------------------------------------------------------
# Entry point


class BudgetFS:
    """Caps what one inspection may pull from a hostile guest: total file bytes, and entries
    taken from one directory (a million files in /etc/netplan must not mean a million reads)."""

    def __init__(self, fs: GuestFS, *, max_bytes: int = MAX_GATHER_BYTES) -> None:
        self.fs = fs
        self.label = fs.label
        self.left = max_bytes

    @property
    def bytes_read(self) -> int:
        return self.fs.bytes_read

    def lstat(self, path: str) -> GuestStat:
        return self.fs.lstat(path)

    def readlink(self, path: str) -> str:
        return self.fs.readlink(path)

    def listdir(self, path: str) -> list[str]:
        return self.fs.listdir(path)[:MAX_DIR_ENTRIES]

    def read_file(self, path: str, *, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        if self.left <= 0:
            raise CorruptImage(f"read budget of {MAX_GATHER_BYTES >> 20} MiB spent at {path}")
        data = self.fs.read_file(path, limit=min(limit, self.left))
        self.left -= len(data)
        return data


def gather(fs: GuestFS, *, read_initramfs: bool = True) -> GuestFacts:
    """All facts about the guest root ``fs`` (mount /boot and the ESP over it first).

    Each kind's reader guards its own facets; the order below only serves the few kinds that
    need another's result (the kernel list needs the boot entry, waagent's version the dpkg
    database, sshd's state the enabled units).
    """
    fs = BudgetFS(fs)
    guard = Guard()
    os_info = guard("os-release", lambda: read_os(fs), OsInfo("unknown"))
    boot = read_boot(fs, guard)
    packages = read_packages(fs, guard)
    services = read_services(fs, guard)
    return GuestFacts(
        label=fs.label,
        os=os_info,
        boot=boot,
        kernel=read_kernel(fs, guard, boot.cmdline, initramfs=read_initramfs),
        agents=read_agents(fs, guard, packages.installed),
        storage=read_storage(fs, guard),
        network=read_network(fs, guard),
        accounts=read_accounts(fs, guard, services.units_enabled),
        packages=packages,
        services=services,
        system=read_system(fs, guard),
        unreadable=guard.unreadable,
    )


def unreadable_root(label: str, kind: str, why: str) -> GuestFacts:
    """Facts for a root the tool cannot read (UFS/FFS): every guest rule reports unreadable."""
    return GuestFacts(label=label, os=OsInfo(kind), unreadable={"root": why})
