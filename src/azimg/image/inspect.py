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
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from azimg.disk.guestfs import DEFAULT_READ_LIMIT, GuestFS, GuestStat, read_text
from azimg.errors import AzimgError, CorruptImage
from azimg.image.facts.accounts import (
    SSHD_PATHS,
    Account,
    read_accounts,
    read_histories,
    read_homes,
    read_sshd_config,
    read_sudoers,
)
from azimg.image.facts.agents import CloudInitInfo, WaagentInfo, read_cloud_init, read_waagent
from azimg.image.facts.boot import CmdLine, read_cmdline, read_grubenv_symlink
from azimg.image.facts.files import Located, files_under, listdir, lstat, resolves
from azimg.image.facts.kernel import (
    KernelInfo,
    read_initramfs_config,
    read_kernels,
    read_modprobe_disabled,
    with_initramfs,
)
from azimg.image.facts.layout import DiskLayout
from azimg.image.facts.network import NetworkInfo, read_leases, read_network
from azimg.image.facts.packages import read_apt_sources, read_dpkg, read_yum_repos
from azimg.image.facts.services import (
    read_chrony,
    read_ptp_hyperv_rule,
    read_udev_rules,
    read_units,
)
from azimg.image.facts.storage import FstabEntry, read_fstab, read_swap
from azimg.image.facts.system import PROBE_PATHS, OsInfo, read_arch, read_os, read_raw_files

T = TypeVar("T")

MAX_GATHER_BYTES = 512 * 1024 * 1024  # an initramfs is the biggest file read (tens of MB)
MAX_DIR_ENTRIES = 4096


# ----------------------------------------------------------------------------------------------
# Guest facts


@dataclass(frozen=True)
class GuestFacts:
    """Everything the rules need to know about one guest root."""

    label: str
    os: OsInfo
    fstab: tuple[FstabEntry, ...] | None = None  # None: no /etc/fstab
    fstab_errors: tuple[Located, ...] = ()
    cmdline: CmdLine = field(default_factory=lambda: CmdLine(None))
    default_kernel: str | None = None
    kernels: tuple[KernelInfo, ...] = ()
    arch: Located | None = None  # ELF machine of /sbin/init (or systemd)
    elf_class: int | None = None  # 1 = 32-bit, 2 = 64-bit
    modprobe_disabled: Mapping[str, Located] = field(default_factory=dict)
    packages: Mapping[str, str] | None = None  # dpkg name -> version; None: no dpkg database
    rpm_db: bool = False
    units_enabled: frozenset[str] = frozenset()
    units_masked: frozenset[str] = frozenset()
    waagent: WaagentInfo = field(default_factory=lambda: WaagentInfo(False))
    cloud_init: CloudInitInfo = field(default_factory=lambda: CloudInitInfo(False))
    swap_files: tuple[str, ...] = ()
    swap_units: tuple[str, ...] = ()
    network: NetworkInfo = field(default_factory=NetworkInfo)
    accounts: tuple[Account, ...] = ()
    histories: tuple[Located, ...] = ()  # value = size in bytes
    root_authorized_keys: Located | None = None
    user_authorized_keys: tuple[str, ...] = ()
    ssh_host_keys: tuple[str, ...] = ()
    sshd_installed: bool = False
    sshd_enabled: bool = False
    sshd_config: Mapping[str, Located] = field(default_factory=dict)
    waagent_state: tuple[str, ...] = ()  # files under /var/lib/waagent
    cloud_state: tuple[str, ...] = ()  # instance state under /var/lib/cloud
    leases: tuple[str, ...] = ()
    resolv_conf: bool = False
    hostname: str | None = None
    machine_id: str | None = None
    sudoers: tuple[Located, ...] = ()  # "Defaults targetpw" / "ALL ALL=(ALL) ALL" lines
    chrony_refclock_ptp: bool | None = None  # None: no chrony config
    udev_rules: frozenset[str] = frozenset()  # rule file names in etc/lib udev dirs
    initramfs_config: tuple[Located, ...] = ()  # persisted driver lists (dracut/initramfs-tools)
    apt_sources: tuple[Located, ...] = ()  # "deb URI suite components" or deb822 URIs
    yum_repos: tuple[Located, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)  # a few raw config files by path
    present: frozenset[str] = frozenset()  # PROBE_PATHS that exist
    ptp_hyperv_rule: bool = False  # a udev rule creates /dev/ptp_hyperv
    grubenv_symlink: bool | None = None  # /boot/grub2/grubenv is a link (None: absent)
    unreadable: Mapping[str, str] = field(default_factory=dict)  # facet -> why

    def units(self, *names: str) -> bool:
        return any(n in self.units_enabled for n in names)

    def fstab_mount(self, mountpoint: str) -> FstabEntry | None:
        for e in self.fstab or ():
            if e.mountpoint == mountpoint:
                return e
        return None


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


def gather(fs: GuestFS, *, read_initramfs: bool = True) -> GuestFacts:
    """All facts about the guest root ``fs`` (mount /boot and the ESP over it first)."""
    unreadable: dict[str, str] = {}
    fs = BudgetFS(fs)

    def safe(facet: str, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except FACET_FAILURES as err:
            unreadable[facet] = f"{type(err).__name__}: {err}"
            return default

    os_info = safe("os-release", lambda: read_os(fs), OsInfo("unknown"))
    fstab, fstab_errors = safe("fstab", lambda: read_fstab(fs), (None, ()))
    cmdline = safe("cmdline", lambda: read_cmdline(fs), CmdLine(None))
    default, kernels = safe("kernel", lambda: read_kernels(fs, cmdline), (None, ()))
    if read_initramfs:
        kernels = tuple(with_initramfs(fs, k) if k.version == default else k for k in kernels)
    packages = safe("packages", lambda: read_dpkg(fs), None)
    accounts = safe("accounts", lambda: read_accounts(fs), ())
    homes = safe("accounts", lambda: read_homes(fs, accounts), ["/root"])
    units, masked = safe("units", lambda: read_units(fs), (frozenset(), frozenset()))
    swap_files, swap_units = safe("swap", lambda: read_swap(fs), ((), ()))
    arch, elf_class = safe("arch", lambda: read_arch(fs), (None, None))
    root_keys = None
    text = safe("ssh", lambda: read_text(fs, "/root/.ssh/authorized_keys"), None)
    if text is not None:
        root_keys = Located(text.strip()[:200], "/root/.ssh/authorized_keys")
    user_keys = tuple(
        f"{h}/.ssh/authorized_keys"
        for h in homes
        if h != "/root"
        and safe("ssh", lambda h=h: resolves(fs, f"{h}/.ssh/authorized_keys"), False)
    )
    host_keys = tuple(
        f"/etc/ssh/{n}"
        for n in safe("ssh", lambda: listdir(fs, "/etc/ssh"), [])
        if n.startswith("ssh_host_") and n.endswith("_key")
    )
    hostname = safe("network", lambda: read_text(fs, "/etc/hostname"), None)
    machine_id = safe("machine-id", lambda: read_text(fs, "/etc/machine-id"), None)
    return GuestFacts(
        label=fs.label,
        os=os_info,
        fstab=fstab,
        fstab_errors=fstab_errors,
        cmdline=cmdline,
        default_kernel=default,
        kernels=kernels,
        arch=arch,
        elf_class=elf_class,
        modprobe_disabled=safe("modprobe", lambda: read_modprobe_disabled(fs), {}),
        packages=packages,
        rpm_db=safe("packages", lambda: bool(listdir(fs, "/var/lib/rpm")), False),
        units_enabled=units,
        units_masked=masked,
        waagent=safe("waagent", lambda: read_waagent(fs, packages), WaagentInfo(False)),
        cloud_init=safe("cloud-init", lambda: read_cloud_init(fs), CloudInitInfo(False)),
        swap_files=swap_files,
        swap_units=swap_units,
        network=safe("network", lambda: read_network(fs), NetworkInfo()),
        accounts=accounts,
        histories=safe("histories", lambda: read_histories(fs, homes), ()),
        root_authorized_keys=root_keys,
        user_authorized_keys=user_keys,
        ssh_host_keys=host_keys,
        sshd_installed=safe("ssh", lambda: any(resolves(fs, p) for p in SSHD_PATHS), False),
        sshd_enabled=any(
            u in units for u in ("ssh.service", "sshd.service", "ssh.socket", "sshd.socket")
        ),
        sshd_config=safe("ssh", lambda: read_sshd_config(fs), {}),
        waagent_state=safe("waagent", lambda: files_under(fs, "/var/lib/waagent"), ()),
        cloud_state=safe(
            "cloud-init",
            lambda: (
                tuple(
                    p
                    for p in (
                        "/var/lib/cloud/instance",
                        "/var/lib/cloud/data/reported_ready",
                        "/var/lib/cloud/data/poll_imds",
                    )
                    if lstat(fs, p) is not None
                )
                + tuple(
                    f"/var/lib/cloud/instances/{n}" for n in listdir(fs, "/var/lib/cloud/instances")
                )
            ),
            (),
        ),
        leases=safe("network", lambda: read_leases(fs), ()),
        resolv_conf=safe("network", lambda: lstat(fs, "/etc/resolv.conf") is not None, False),
        hostname=hostname.strip() if hostname else None,
        machine_id=machine_id.strip() if machine_id is not None else None,
        sudoers=safe("sudoers", lambda: read_sudoers(fs), ()),
        chrony_refclock_ptp=safe("chrony", lambda: read_chrony(fs), None),
        udev_rules=safe("udev", lambda: read_udev_rules(fs), frozenset()),
        ptp_hyperv_rule=safe("udev", lambda: read_ptp_hyperv_rule(fs), False),
        grubenv_symlink=safe("cmdline", lambda: read_grubenv_symlink(fs), None),
        initramfs_config=safe("initramfs-config", lambda: read_initramfs_config(fs), ()),
        apt_sources=safe("packages", lambda: read_apt_sources(fs), ()),
        yum_repos=safe("packages", lambda: read_yum_repos(fs), ()),
        files=safe("files", lambda: read_raw_files(fs), {}),
        present=safe(
            "files", lambda: frozenset(p for p in PROBE_PATHS if resolves(fs, p)), frozenset()
        ),
        unreadable=unreadable,
    )


def unreadable_root(label: str, kind: str, why: str) -> GuestFacts:
    """Facts for a root the tool cannot read (UFS/FFS): every guest rule reports unreadable."""
    return GuestFacts(label=label, os=OsInfo(kind), unreadable={"root": why})
