"""Facts about a guest read offline from its files, for the rules of ``azimg check``.

Everything here reads through the ``GuestFS`` protocol, so the same code runs over a host
directory (tests) and over ext4/XFS/FAT readers on image bytes. Two layers:

* ``DiskLayout`` — what the partition table and the ESP say (filled by ``image/check.py`` from
  the disk readers); generation rules need nothing else.
* ``GuestFacts`` — what the root filesystem (with /boot and /boot/efi mounted over it by
  ``MountedFS``) says: os-release, fstab, kernel command line, kernels and their Hyper-V
  drivers, agents and their config, swap, network, accounts, leftovers of the build VM.

Gathering never raises for bad guest content: each facet that cannot be read is recorded in
``GuestFacts.unreadable`` with the reason, and the rules that need it report ``unreadable``
instead of passing. Reads are bounded (``read_text`` limits) so a hostile image cannot make
us read gigabytes.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import shlex
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

from azimg.disk.guestfs import DEFAULT_READ_LIMIT, GuestFS, GuestStat, read_text, resolve
from azimg.errors import AzimgError, CorruptImage

T = TypeVar("T")

# The Hyper-V drivers KRN-01..03 look for, and the CONFIG_ symbol that builds each one.
HV_MODULES: Mapping[str, str] = {
    "hv_vmbus": "CONFIG_HYPERV",
    "hv_storvsc": "CONFIG_HYPERV_STORAGE",
    "hv_netvsc": "CONFIG_HYPERV_NET",
    "hv_utils": "CONFIG_HYPERV_UTILS",
    "hv_balloon": "CONFIG_HYPERV_BALLOON",
    "vfat": "CONFIG_VFAT_FS",
    "udf": "CONFIG_UDF_FS",
    "nvme": "CONFIG_BLK_DEV_NVME",
    "pci_hyperv": "CONFIG_PCI_HYPERV",
}
_CONFIG_KEYS = re.compile(
    r"^(CONFIG_(?:HYPERV\w*|VFAT_FS|UDF_FS|BLK_DEV_NVME|NVME_CORE|PCI_HYPERV\w*|WATCHDOG|CIFS"
    r"|MLX4_EN|MLX5_CORE|MICROSOFT_MANA))=(\S+)",
    re.M,
)
MAX_GATHER_BYTES = 512 * 1024 * 1024  # an initramfs is the biggest file read (tens of MB)
MAX_DIR_ENTRIES = 4096
MAX_KERNELS = 4
HISTORY_FILES = (".bash_history", ".sh_history", ".zsh_history", ".history", ".ash_history")
SWAP_FILE_CANDIDATES = (
    "/swapfile",
    "/swap.img",
    "/swap",
    "/var/swap",
    "/mnt/resource/swapfile",
    "/mnt/swapfile",
)
WAAGENT_PATHS = ("/usr/sbin/waagent", "/usr/bin/waagent", "/usr/local/sbin/waagent")
CLOUD_INIT_PATHS = ("/usr/bin/cloud-init", "/usr/local/bin/cloud-init")
SSHD_PATHS = ("/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd")
ELF_MACHINES = {3: "i386", 62: "x86_64", 183: "aarch64", 40: "arm", 243: "riscv64"}


# ----------------------------------------------------------------------------------------------
# Disk layout (filled by image/check.py from the partition readers)


@dataclass(frozen=True)
class PartitionInfo:
    index: int  # 1-based, as Linux names them
    scheme: str  # "mbr" | "gpt"
    start: int  # bytes
    size: int  # bytes
    type: str  # GPT type GUID (upper case) or MBR type byte as "0x83"
    bootable: bool = False  # MBR active flag or GPT legacy-BIOS-bootable attribute
    filesystem: str | None = None  # "ext4", "xfs", "vfat", "swap", "ufs", ... or None
    fs_uuid: str | None = None
    fs_label: str | None = None
    part_uuid: str | None = None  # GPT unique partition GUID or MBR "<disk-id>-<nn>"
    error: str | None = None  # why the filesystem could not be read

    @property
    def is_esp(self) -> bool:
        return self.type in (ESP_GUID, "0xEF")

    @property
    def is_bios_boot(self) -> bool:
        return self.type == BIOS_BOOT_GUID

    @property
    def is_swap(self) -> bool:
        return self.type in (LINUX_SWAP_GUID, FREEBSD_SWAP_GUID, "0x82") or (
            self.filesystem == "swap"
        )


ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"
FREEBSD_BOOT_GUID = "83BD6B9D-7F41-11DC-BE0B-001560B84F0F"
FREEBSD_UFS_GUID = "516E7CB6-6ECF-11D6-8FF8-00022D09712B"
FREEBSD_SWAP_GUID = "516E7CB5-6ECF-11D6-8FF8-00022D09712B"
OPENBSD_DATA_GUID = "824CC7A0-36A8-11E3-890A-952519AD3F61"
LINUX_SWAP_GUID = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
LINUX_LVM_GUID = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
BSD_MBR_TYPES = ("0xA5", "0xA6", "0xA9")  # FreeBSD, OpenBSD, NetBSD slices


@dataclass(frozen=True)
class DiskLayout:
    """The partition table, the MBR boot code and what the ESP holds."""

    size: int  # virtual disk size in bytes
    scheme: str  # "gpt" | "mbr" | "none"
    partitions: tuple[PartitionInfo, ...] = ()
    mbr_boot_code: bool = False  # bytes 0..439 of LBA0 are not all zero
    mbr_boot_code_grub: bool = False  # ... and contain GRUB's boot.img text "GRUB"
    esp_files: tuple[str, ...] = ()  # upper-cased paths under \EFI\BOOT on the ESP(s)
    esp_error: str | None = None
    table_error: str | None = None  # why no valid table was found (PT-01)
    table_problems: tuple[str, ...] = ()  # non-fatal: backup GPT missing or misplaced, ...

    @property
    def esps(self) -> tuple[PartitionInfo, ...]:
        return tuple(p for p in self.partitions if p.is_esp)


# ----------------------------------------------------------------------------------------------
# Guest facts


@dataclass(frozen=True)
class Located:
    """A value and where it was read: ``/etc/fstab:3``."""

    value: str
    where: str


@dataclass(frozen=True)
class OsInfo:
    kind: str  # "linux" | "freebsd" | "openbsd" | "unknown"
    id: str = ""
    version_id: str = ""
    id_like: tuple[str, ...] = ()
    pretty_name: str = ""
    source: str = ""

    @property
    def family(self) -> str | None:
        """The catalogue's distribution key: deb, ubu, rhel, ora, suse, flat, fbsd, obsd."""
        if self.kind == "freebsd":
            return "fbsd"
        if self.kind == "openbsd":
            return "obsd"
        ids = (self.id, *self.id_like)
        table = (
            ("flatcar", "flat"),
            ("ubuntu", "ubu"),
            ("debian", "deb"),
            ("ol", "ora"),
            ("rhel", "rhel"),
            ("centos", "rhel"),
            ("almalinux", "rhel"),
            ("rocky", "rhel"),
            ("fedora", "rhel"),
            ("sles", "suse"),
            ("sles_sap", "suse"),
            ("opensuse-leap", "suse"),
            ("opensuse", "suse"),
            ("suse", "suse"),
        )
        for ident in ids:  # the distribution's own ID wins over ID_LIKE
            for name, key in table:
                if ident == name:
                    return key
        return None


@dataclass(frozen=True)
class FstabEntry:
    spec: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]
    where: str  # "/etc/fstab:3"


@dataclass(frozen=True)
class KernelInfo:
    version: str
    config: Mapping[str, str] | None  # selected CONFIG_ symbols from /boot/config-<ver>
    builtin: frozenset[str]  # modules.builtin names
    loadable: frozenset[str]  # modules.dep names
    initramfs: str | None = None  # guest path of the initramfs for this kernel
    initramfs_modules: frozenset[str] | None = None  # None: not read (see initramfs_error)
    initramfs_error: str | None = None

    def available(self, module: str) -> bool | None:
        """Built in or loadable; None when the kernel's config and module lists are absent."""
        if module in self.builtin or module in self.loadable:
            return True
        sym = HV_MODULES.get(module)
        if self.config is not None and sym is not None:
            return self.config.get(sym) in ("y", "m")
        if not self.builtin and not self.loadable:
            return None
        return False

    def built_in(self, module: str) -> bool:
        sym = HV_MODULES.get(module)
        if module in self.builtin:
            return True
        return bool(self.config is not None and sym and self.config.get(sym) == "y")


@dataclass(frozen=True)
class CmdLine:
    """The kernel command line of the default boot entry and where it came from."""

    args: tuple[str, ...] | None  # None: no boot configuration found
    where: str = ""
    configured: tuple[str, ...] | None = None  # GRUB_CMDLINE_LINUX(+_DEFAULT) in /etc/default/grub
    configured_where: str = ""
    kernel_path: str | None = None  # the default entry's kernel image path

    def has(self, prefix: str) -> bool:
        return any(a == prefix or a.startswith(prefix) for a in self.args or ())

    def value(self, key: str) -> str | None:
        for a in reversed(self.args or ()):
            if a.startswith(key + "="):
                return a[len(key) + 1 :]
        return None


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    home: str
    shell: str
    password: str  # "locked" | "empty" | "hash" | "none" (no shadow entry)
    where: str  # shadow line, or passwd line when no shadow entry

    @property
    def can_login(self) -> bool:
        return not self.shell.endswith(("nologin", "false", "sync", "shutdown", "halt"))


@dataclass(frozen=True)
class WaagentInfo:
    installed: bool
    where: str = ""
    version: str | None = None
    conf: Mapping[str, Located] = field(default_factory=dict)  # waagent.conf key -> value
    conf_present: bool = False

    def get(self, key: str, default: str | None = None) -> str | None:
        loc = self.conf.get(key)
        return loc.value if loc else default


@dataclass(frozen=True)
class CloudInitInfo:
    installed: bool
    where: str = ""
    datasource_list: tuple[str, ...] | None = None  # effective, after cfg.d merge
    datasource_where: str = ""
    config_files: tuple[str, ...] = ()
    yaml_errors: tuple[Located, ...] = ()
    disabled_marker: bool = False  # /etc/cloud/cloud-init.disabled
    ds_identify: Located | None = None  # /etc/cloud/ds-identify.cfg policy text
    network_disabled: Located | None = None  # network: {config: disabled}
    apply_network_config: bool | None = None
    merged: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkInfo:
    dhcp: tuple[Located, ...] = ()  # configs that ask for DHCP on an interface
    static: tuple[Located, ...] = ()  # static addresses / gateways
    mac_bound: tuple[Located, ...] = ()  # profiles bound to a MAC address
    persistent_net_rules: tuple[str, ...] = ()  # 70-persistent-net.rules etc. present
    generator_disabled: bool = False  # 75-persistent-net-generator.rules -> /dev/null
    generator_present: bool = False  # the packaged generator exists
    interfaces_named: tuple[Located, ...] = ()  # eth0/ens3 names configs refer to


@dataclass(frozen=True)
class GuestFacts:
    """Everything the rules need to know about one guest root."""

    label: str
    os: OsInfo
    fstab: tuple[FstabEntry, ...] | None = None  # None: no /etc/fstab
    fstab_errors: tuple[Located, ...] = ()
    cmdline: CmdLine = CmdLine(None)
    default_kernel: str | None = None
    kernels: tuple[KernelInfo, ...] = ()
    arch: Located | None = None  # ELF machine of /sbin/init (or systemd)
    elf_class: int | None = None  # 1 = 32-bit, 2 = 64-bit
    modprobe_disabled: Mapping[str, Located] = field(default_factory=dict)
    packages: Mapping[str, str] | None = None  # dpkg name -> version; None: no dpkg database
    rpm_db: bool = False
    units_enabled: frozenset[str] = frozenset()
    units_masked: frozenset[str] = frozenset()
    waagent: WaagentInfo = WaagentInfo(False)
    cloud_init: CloudInitInfo = CloudInitInfo(False)
    swap_files: tuple[str, ...] = ()
    swap_units: tuple[str, ...] = ()
    network: NetworkInfo = NetworkInfo()
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
# Small readers


def _listdir(fs: GuestFS, path: str) -> list[str]:
    try:
        return fs.listdir(resolve(fs, path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _lstat(fs: GuestFS, path: str) -> GuestStat | None:
    try:
        return fs.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _exists(fs: GuestFS, path: str) -> bool:
    try:
        resolve(fs, path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def _is_file(fs: GuestFS, path: str) -> bool:
    try:
        return fs.lstat(resolve(fs, path)).is_file
    except (FileNotFoundError, NotADirectoryError):
        return False


def _lines(text: str) -> list[tuple[int, str]]:
    """Non-comment, non-blank lines with their 1-based numbers."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s and not s.startswith("#"):
            out.append((n, s))
    return out


def _kv_file(fs: GuestFS, path: str, sep: str = "=") -> dict[str, Located]:
    """KEY=VALUE files (waagent.conf, rc.conf, os-release): later lines win, quotes dropped."""
    text = read_text(fs, path)
    out: dict[str, Located] = {}
    if text is None:
        return out
    for n, line in _lines(text):
        if sep not in line:
            continue
        key, _, value = line.partition(sep)
        value = value.split(" #", 1)[0].strip().strip("\"'")
        out[key.strip()] = Located(value, f"{path}:{n}")
    return out


def _shell_assignments(text: str, path: str) -> dict[str, Located]:
    """VAR="value" lines of /etc/default/grub, with $VAR references expanded."""
    out: dict[str, Located] = {}
    for n, line in _lines(text):
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


# ----------------------------------------------------------------------------------------------
# Facets


def _os_info(fs: GuestFS) -> OsInfo:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        kv = _kv_file(fs, path)
        if kv:
            return OsInfo(
                kind="linux",
                id=kv.get("ID", Located("", "")).value.lower(),
                version_id=kv.get("VERSION_ID", Located("", "")).value,
                id_like=tuple(kv.get("ID_LIKE", Located("", "")).value.lower().split()),
                pretty_name=kv.get("PRETTY_NAME", Located("", "")).value,
                source=path,
            )
    text = read_text(fs, "/bin/freebsd-version")
    if text is not None:
        m = re.search(r'USERLAND_VERSION="?([^"\s]+)', text)
        return OsInfo("freebsd", "freebsd", m.group(1) if m else "", source="/bin/freebsd-version")
    if _exists(fs, "/bsd") and _exists(fs, "/etc/installurl"):
        return OsInfo("openbsd", "openbsd", source="/bsd")
    if _exists(fs, "/etc/fstab") or _exists(fs, "/sbin/init"):
        return OsInfo("linux", source="")
    return OsInfo("unknown")


def _fstab(fs: GuestFS) -> tuple[tuple[FstabEntry, ...] | None, tuple[Located, ...]]:
    text = read_text(fs, "/etc/fstab")
    if text is None:
        return None, ()
    entries, errors = [], []
    for n, line in _lines(text):
        fields = line.split()
        where = f"/etc/fstab:{n}"
        if len(fields) < 3:
            errors.append(Located(line, where))
            continue
        opts = tuple(fields[3].split(",")) if len(fields) > 3 else ("defaults",)
        entries.append(FstabEntry(fields[0], fields[1], fields[2], opts, where))
    return tuple(entries), tuple(errors)


def _grub_cfg_default(text: str) -> tuple[list[str], int, str | None]:
    """Args of the default entry's ``linux`` line in a generated grub.cfg, its line number."""
    default = 0
    m = re.search(r'^\s*set\s+default="?(\d+)"?\s*$', text, re.M)
    if m:
        default = int(m.group(1))
    depth, top_index, chosen_line = 0, -1, None
    linux_lines: dict[int, tuple[int, str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if re.match(r"^(menuentry|submenu)\b", s):
            if depth == 0:
                top_index += 1
            depth += s.count("{") - s.count("}")
            continue
        if depth > 0:
            depth += s.count("{") - s.count("}")
            if re.match(r"^(linux|linuxefi|linux16)\s", s) and top_index not in linux_lines:
                linux_lines[top_index] = (n, s)
    if default in linux_lines:
        chosen_line = linux_lines[default]
    elif linux_lines:
        chosen_line = linux_lines[min(linux_lines)]
    else:
        # A grub.cfg without menuentries (e.g. a stub that only loads another config).
        for n, line in enumerate(text.splitlines(), 1):
            s = line.strip()
            if re.match(r"^(linux|linuxefi)\s", s):
                chosen_line = (n, s)
                break
    if chosen_line is None:
        return [], 0, None
    n, s = chosen_line
    try:
        parts = shlex.split(s)
    except ValueError:
        parts = s.split()
    return parts[2:], n, parts[1] if len(parts) > 1 else None


GRUB_CFG_PATHS = (
    "/boot/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
    "/boot/efi/EFI/BOOT/grub.cfg",
    "/boot/efi/EFI/debian/grub.cfg",
    "/boot/efi/EFI/ubuntu/grub.cfg",
    "/boot/efi/EFI/redhat/grub.cfg",
    "/boot/efi/EFI/centos/grub.cfg",
    "/boot/efi/EFI/almalinux/grub.cfg",
    "/boot/efi/EFI/rocky/grub.cfg",
    "/boot/efi/EFI/sles/grub.cfg",
    "/boot/efi/EFI/opensuse/grub.cfg",
    "/boot/flatcar/grub/grub.cfg",
    "/boot/grub/menu.lst",
)


def _grub_vars(text: str) -> dict[str, str]:
    """``set name="value"`` assignments of a GRUB script (last one wins, no control flow)."""
    out: dict[str, str] = {}
    for m in re.finditer(r'^\s*set\s+([A-Za-z_]\w*)=(?:"([^"]*)"|\'([^\']*)\'|(\S*))', text, re.M):
        out[m.group(1)] = next(g for g in m.groups()[1:] if g is not None)
    return out


def _expand(arg: str, env: Mapping[str, str], depth: int = 0) -> str:
    """Substitute $name / ${name} from ``env``; unknown names stay as written."""
    if depth > 5 or "$" not in arg:
        return arg
    out = re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda m: env.get(m.group(1), m.group(0)), arg)
    return out if out == arg else _expand(out, env, depth + 1)


def _cmdline(fs: GuestFS) -> CmdLine:
    configured: tuple[str, ...] | None = None
    configured_where = ""
    text = read_text(fs, "/etc/default/grub")
    if text is not None:
        assigns = _shell_assignments(text, "/etc/default/grub")
        for name in sorted(_listdir(fs, "/etc/default/grub.d")):
            if name.endswith(".cfg"):
                extra = read_text(fs, f"/etc/default/grub.d/{name}") or ""
                assigns.update(_shell_assignments(extra, f"/etc/default/grub.d/{name}"))
        linux = assigns.get("GRUB_CMDLINE_LINUX")
        default = assigns.get("GRUB_CMDLINE_LINUX_DEFAULT")
        parts = [x.value for x in (linux, default) if x]
        configured = tuple(" ".join(parts).split())
        configured_where = ", ".join(x.where for x in (linux, default) if x)
    kernelopts = None
    for env in ("/boot/grub2/grubenv", "/boot/grub/grubenv"):
        kv = _kv_file(fs, env)
        if "kernelopts" in kv:
            kernelopts = kv["kernelopts"].value
    for path in GRUB_CFG_PATHS:
        cfg = read_text(fs, path, limit=4 * 1024 * 1024)
        if cfg is None:
            continue
        if path.endswith("menu.lst"):
            m = re.search(r"^\s*kernel\s+(\S+)\s*(.*)$", cfg, re.M)
            if m:
                return CmdLine(
                    tuple(m.group(2).split()), path, configured, configured_where, m.group(1)
                )
            continue
        args, n, kernel = _grub_cfg_default(cfg)
        if kernel is not None:
            env = _grub_vars(cfg)
            for oem in ("/usr/share/oem/grub.cfg", "/oem/grub.cfg"):
                env.update(_grub_vars(read_text(fs, oem) or ""))  # Flatcar's OEM settings
            if kernelopts:
                env["kernelopts"] = kernelopts
            expanded = " ".join(_expand(a, env) for a in args).split()
            return CmdLine(tuple(expanded), f"{path}:{n}", configured, configured_where, kernel)
    entries = sorted(_listdir(fs, "/boot/loader/entries"), reverse=True)
    for name in entries:
        if not name.endswith(".conf"):
            continue
        path = f"/boot/loader/entries/{name}"
        kv = _kv_file(fs, path, sep=" ")
        if "options" in kv:
            opts = kv["options"].value.replace("$kernelopts", kernelopts or "")
            kernel = kv["linux"].value if "linux" in kv else None
            return CmdLine(
                tuple(opts.split()), kv["options"].where, configured, configured_where, kernel
            )
    text = read_text(fs, "/etc/kernel/cmdline")
    if text is not None:
        return CmdLine(tuple(text.split()), "/etc/kernel/cmdline:1", configured, configured_where)
    return CmdLine(None, "", configured, configured_where)


def _module_name(path: str) -> str:
    base = posixpath.basename(path)
    base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base)
    return base.replace("-", "_")


def _kernels(fs: GuestFS, cmdline: CmdLine) -> tuple[str | None, tuple[KernelInfo, ...]]:
    versions: list[tuple[str, str]] = []
    for base in ("/lib/modules", "/usr/lib/modules"):
        for v in _listdir(fs, base):
            if v not in {x for x, _ in versions}:
                versions.append((v, f"{base}/{v}"))
    boot = set(_listdir(fs, "/boot"))
    for name in boot:
        if name.startswith("vmlinuz-"):
            v = name[len("vmlinuz-") :]
            if v not in {x for x, _ in versions}:
                versions.append((v, ""))
    default = None
    if cmdline.kernel_path:
        base = posixpath.basename(cmdline.kernel_path)
        default = base[len("vmlinuz-") :] if base.startswith("vmlinuz-") else None
    if default is None:
        for link in ("/boot/vmlinuz", "/vmlinuz"):
            try:
                target = resolve(fs, link)
            except (FileNotFoundError, NotADirectoryError):
                continue
            base = posixpath.basename(target)
            if base.startswith("vmlinuz-"):
                default = base[len("vmlinuz-") :]
                break
    if default is None and versions:
        default = max((v for v, _ in versions), key=_version_key)
    out = []
    # Details for the default kernel and the newest few: a hostile image may list thousands.
    versions.sort(key=lambda x: (x[0] != default, [-n for n in _version_key(x[0])]))
    for v, moddir in versions[:MAX_KERNELS]:
        config_text = read_text(fs, f"/boot/config-{v}", limit=4 * 1024 * 1024)
        config = dict(_CONFIG_KEYS.findall(config_text)) if config_text is not None else None
        builtin: set[str] = set()
        loadable: set[str] = set()
        if moddir:
            for line in (read_text(fs, f"{moddir}/modules.builtin") or "").splitlines():
                if line.strip():
                    builtin.add(_module_name(line.strip()))
            dep = read_text(fs, f"{moddir}/modules.dep", limit=8 * 1024 * 1024)
            for line in (dep or "").splitlines():
                if ":" in line:
                    loadable.add(_module_name(line.split(":", 1)[0]))
        initrd = None
        for cand in (f"/boot/initrd.img-{v}", f"/boot/initramfs-{v}.img", f"/boot/initrd-{v}"):
            if _is_file(fs, cand):
                initrd = cand
                break
        out.append(KernelInfo(v, config, frozenset(builtin), frozenset(loadable), initrd))
    return default, tuple(out)


def _version_key(v: str) -> tuple[Any, ...]:
    return tuple(int(x) if x.isdigit() else -1 for x in re.split(r"[.\-+_]", v))


def _with_initramfs(fs: GuestFS, k: KernelInfo) -> KernelInfo:
    """List the default kernel's initramfs modules through the initramfs reader."""
    if k.initramfs is None:
        return k
    try:
        modules = list_initramfs_modules(fs, k.initramfs)
    except Exception as err:  # zlib/lzma/zstd/lz4 failures on hostile bytes are not ours
        return dataclasses.replace(k, initramfs_error=f"{k.initramfs}: {err}")
    return dataclasses.replace(k, initramfs_modules=frozenset(_module_name(m) for m in modules))


def list_initramfs_modules(fs: GuestFS, path: str) -> list[str]:
    """Kernel module names inside an initramfs (early cpio + compressed main archive)."""
    from azimg.image import initramfs  # the readers' module; imported late, it is heavier

    data = fs.read_file(resolve(fs, path), limit=256 * 1024 * 1024)
    found = initramfs.read_initramfs(data)
    return sorted(found.modules | found.builtin)


def _arch(fs: GuestFS) -> tuple[Located | None, int | None]:
    for path in (
        "/sbin/init",
        "/usr/lib/systemd/systemd",
        "/lib/systemd/systemd",
        "/usr/sbin/init",
        "/bin/sh",
    ):
        try:
            head = fs.read_file(resolve(fs, path), limit=20)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        if len(head) >= 20 and head[:4] == b"\x7fELF":
            order = "little" if head[5] == 1 else "big"
            machine = int.from_bytes(head[18:20], order)
            name = ELF_MACHINES.get(machine, f"e_machine {machine}")
            return Located(name, path), head[4]
    return None, None


_NOOP_INSTALL = ("/bin/true", "/bin/false", "/usr/bin/true", "/usr/bin/false")


def _modprobe_disabled(fs: GuestFS) -> dict[str, Located]:
    out: dict[str, Located] = {}
    for d in ("/etc/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"):
        for name in sorted(_listdir(fs, d)):
            if not name.endswith(".conf"):
                continue
            path = f"{d}/{name}"
            for n, line in _lines(read_text(fs, path) or ""):
                f = line.split()
                off = f[:1] == ["blacklist"] and len(f) >= 2
                off = off or (len(f) >= 3 and f[0] == "install" and f[2] in _NOOP_INSTALL)
                if off:
                    out[f[1].replace("-", "_")] = Located(line, f"{path}:{n}")
    return out


def _dpkg(fs: GuestFS) -> dict[str, str] | None:
    text = read_text(fs, "/var/lib/dpkg/status", limit=32 * 1024 * 1024)
    if text is None:
        return None
    out = {}
    for stanza in text.split("\n\n"):
        name = version = status = ""
        for line in stanza.splitlines():
            if line.startswith("Package: "):
                name = line[9:].strip()
            elif line.startswith("Version: "):
                version = line[9:].strip()
            elif line.startswith("Status: "):
                status = line[8:].strip()
        if name and status.endswith(" installed"):
            out[name] = version
    return out


def _units(fs: GuestFS) -> tuple[frozenset[str], frozenset[str]]:
    enabled, masked = set(), set()
    base = "/etc/systemd/system"
    for name in _listdir(fs, base):
        path = f"{base}/{name}"
        st = _lstat(fs, path)
        if st is None:
            continue
        if st.is_symlink:
            try:
                if fs.readlink(path) == "/dev/null":
                    masked.add(name)
            except OSError:
                pass
        elif st.is_dir and name.endswith((".wants", ".requires")):
            enabled.update(_listdir(fs, path))
    return frozenset(enabled - masked), frozenset(masked)


def _waagent(fs: GuestFS, packages: Mapping[str, str] | None) -> WaagentInfo:
    where = next((p for p in WAAGENT_PATHS if _exists(fs, p)), "")
    version = None
    for pkg in ("waagent", "walinuxagent", "WALinuxAgent", "python-azure-agent"):
        if packages and pkg in packages:
            version = packages[pkg]
            where = where or f"/var/lib/dpkg/status ({pkg})"
    if version is None and where:
        for d in _python_dirs(fs):
            text = read_text(fs, f"{d}/azurelinuxagent/common/version.py")
            if text:
                m = re.search(r"^AGENT_VERSION\s*=\s*['\"]([^'\"]+)", text, re.M)
                if m:
                    version = m.group(1)
                    break
    conf = _kv_file(fs, "/etc/waagent.conf")
    return WaagentInfo(bool(where), where, version, conf, _is_file(fs, "/etc/waagent.conf"))


def _python_dirs(fs: GuestFS) -> list[str]:
    out = ["/usr/lib/python3/dist-packages"]
    for base in ("/usr/lib", "/usr/lib64", "/usr/local/lib"):
        for name in _listdir(fs, base):
            if name.startswith("python3"):
                out += [f"{base}/{name}/site-packages", f"{base}/{name}/dist-packages"]
    return out


def _cloud_init(fs: GuestFS) -> CloudInitInfo:
    where = next((p for p in CLOUD_INIT_PATHS if _exists(fs, p)), "")
    files = []
    if _is_file(fs, "/etc/cloud/cloud.cfg"):
        files.append("/etc/cloud/cloud.cfg")
    files += [
        f"/etc/cloud/cloud.cfg.d/{n}"
        for n in sorted(_listdir(fs, "/etc/cloud/cloud.cfg.d"))
        if n.endswith(".cfg")
    ]
    merged: dict[str, Any] = {}
    errors = []
    ds_where = ""
    net_disabled = None
    for path in files:
        text = read_text(fs, path) or ""
        try:
            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as err:
            errors.append(Located(str(err).splitlines()[0], path))
            continue
        if doc is None:
            continue
        if not isinstance(doc, dict):
            errors.append(Located("top level is not a mapping", path))
            continue
        if "datasource_list" in doc:
            ds_where = path
        net = doc.get("network")
        if isinstance(net, dict) and str(net.get("config", "")).lower() == "disabled":
            net_disabled = Located("network: {config: disabled}", path)
        merged.update(doc)
    dsl = merged.get("datasource_list")
    ds_list: tuple[str, ...] | None = None
    if isinstance(dsl, list):
        ds_list = tuple(str(x).strip() for x in dsl)
    elif isinstance(dsl, str):
        ds_list = tuple(x.strip() for x in dsl.strip("[] ").split(",") if x.strip())
    elif "datasource_list" in merged:
        ds_list = ()  # present but neither a list nor a string: cloud-init cannot use it
    apply_net = None
    ds = merged.get("datasource")
    if isinstance(ds, dict) and isinstance(ds.get("Azure"), dict):
        val = ds["Azure"].get("apply_network_config")
        apply_net = bool(val) if val is not None else None
    ds_identify = None
    text = read_text(fs, "/etc/cloud/ds-identify.cfg")
    if text is not None:
        ds_identify = Located(" ".join(text.split())[:200], "/etc/cloud/ds-identify.cfg")
    return CloudInitInfo(
        installed=bool(where),
        where=where,
        datasource_list=ds_list,
        datasource_where=ds_where,
        config_files=tuple(files),
        yaml_errors=tuple(errors),
        disabled_marker=_exists(fs, "/etc/cloud/cloud-init.disabled"),
        ds_identify=ds_identify,
        network_disabled=net_disabled,
        apply_network_config=apply_net,
        merged=merged,
    )


def _swap(fs: GuestFS) -> tuple[tuple[str, ...], tuple[str, ...]]:
    files = tuple(p for p in SWAP_FILE_CANDIDATES if _is_file(fs, p))
    units = tuple(
        f"/etc/systemd/system/{n}"
        for n in _listdir(fs, "/etc/systemd/system")
        if n.endswith(".swap")
    )
    return files, units


def _is_ifcfg(name: str) -> bool:
    return name.startswith("ifcfg-") and name != "ifcfg-lo"


# Each network stack: where its files live, which names count, and the lines that mark DHCP, a
# static address, a MAC binding and (ifupdown) an interface named after one NIC.
_IFUPDOWN_MARKS = (
    (r"^iface\s+\S+\s+inet6?\s+dhcp", "dhcp"),
    (r"^iface\s+\S+\s+inet\s+static", "static"),
    (r"^\s*hwaddress\s", "mac"),
    (r"^(auto|allow-hotplug|iface)\s+(eth\d|en\w+)", "named"),
)
_IFCFG_MARKS = (
    (r"^BOOTPROTO=['\"]?dhcp", "dhcp"),
    (r"^(IPADDR|GATEWAY)\d*=", "static"),
    (r"^(HWADDR|MACADDR)=", "mac"),
)
_NETWORK_DIRS: tuple[tuple[str, Callable[[str], bool], tuple[tuple[str, str], ...]], ...] = (
    ("/etc/network/interfaces.d", lambda _n: True, _IFUPDOWN_MARKS),
    (
        "/etc/netplan",
        lambda _n: True,
        (
            (r"dhcp4:\s*(true|yes)", "dhcp"),
            (r"^\s*(addresses|gateway4|gateway6):\s*\S", "static"),
            (r"macaddress:", "mac"),
        ),
    ),
    (
        "/etc/systemd/network",
        lambda _n: True,
        (
            (r"^DHCP\s*=\s*(yes|true|ipv4|both)", "dhcp"),
            (r"^(Address|Gateway)\s*=", "static"),
            (r"^MACAddress\s*=", "mac"),
        ),
    ),
    ("/etc/sysconfig/network-scripts", _is_ifcfg, _IFCFG_MARKS),
    ("/etc/sysconfig/network", _is_ifcfg, _IFCFG_MARKS),
    (
        "/etc/NetworkManager/system-connections",
        lambda _n: True,
        (
            (r"^method\s*=\s*auto", "dhcp"),
            (r"^address\d*\s*=", "static"),
            (r"^mac-address\s*=", "mac"),
        ),
    ),
)


def _network_config_files(fs: GuestFS) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """Every network config file in the guest, in stack order, with the marks to look for."""
    found = [("/etc/network/interfaces", _IFUPDOWN_MARKS)]
    for directory, counts, marks in _NETWORK_DIRS:
        found += [(f"{directory}/{n}", marks) for n in _listdir(fs, directory) if counts(n)]
    return found


def _network(fs: GuestFS) -> NetworkInfo:
    dhcp, static, mac, named = [], [], [], []
    buckets = {"dhcp": dhcp, "static": static, "mac": mac, "named": named}
    for path, marks in _network_config_files(fs):
        text = read_text(fs, path)
        for n, line in _lines(text or ""):
            for pattern, bucket in marks:
                if re.search(pattern, line, re.I):
                    buckets[bucket].append(Located(line, f"{path}:{n}"))
    persistent = tuple(
        f"/etc/udev/rules.d/{n}"
        for n in ("70-persistent-net.rules", "85-persistent-net-cloud-init.rules")
        if _exists(fs, f"/etc/udev/rules.d/{n}")
    )
    gen = "/etc/udev/rules.d/75-persistent-net-generator.rules"
    st = _lstat(fs, gen)
    disabled = False
    if st is not None and st.is_symlink:
        disabled = fs.readlink(gen) == "/dev/null"
    present = any(
        _exists(fs, f"{d}/75-persistent-net-generator.rules")
        for d in ("/lib/udev/rules.d", "/usr/lib/udev/rules.d")
    ) or (st is not None and not disabled)
    return NetworkInfo(
        tuple(dhcp), tuple(static), tuple(mac), persistent, disabled, present, tuple(named)
    )


def _accounts(fs: GuestFS) -> tuple[Account, ...]:
    shadow: dict[str, tuple[str, str]] = {}
    for n, line in _lines(read_text(fs, "/etc/shadow") or ""):
        f = line.split(":")
        if len(f) >= 2:
            shadow[f[0]] = (f[1], f"/etc/shadow:{n}")
    for n, line in _lines(read_text(fs, "/etc/master.passwd") or ""):
        f = line.split(":")
        if len(f) >= 2:
            shadow[f[0]] = (f[1], f"/etc/master.passwd:{n}")
    out = []
    for n, line in _lines(read_text(fs, "/etc/passwd") or ""):
        f = line.split(":")
        if len(f) < 7:
            continue
        try:
            uid = int(f[2])
        except ValueError:
            continue
        if f[0] in shadow:
            field_, where = shadow[f[0]]
        else:
            field_, where = (f[1] if f[1] != "x" else None), f"/etc/passwd:{n}"
        if field_ is None:
            state = "none"
        elif field_ == "":
            state = "empty"
        elif field_.startswith(("!", "*")) or field_ in ("x", "LK"):
            state = "locked"
        else:
            state = "hash"
        out.append(Account(f[0], uid, f[5], f[6], state, where))
    return tuple(out)


def _homes(fs: GuestFS, accounts: tuple[Account, ...]) -> list[str]:
    homes = {"/root"}
    homes.update(f"/home/{n}" for n in _listdir(fs, "/home"))
    homes.update(a.home for a in accounts if a.uid >= 1000 and a.home not in ("/", ""))
    return sorted(homes)


def _histories(fs: GuestFS, homes: list[str]) -> tuple[Located, ...]:
    out = []
    for home in homes:
        for name in HISTORY_FILES:
            path = f"{home}/{name}"
            st = _lstat(fs, path)
            if st is not None and st.is_file:
                out.append(Located(str(st.size), path))
    return tuple(out)


def _sshd_config(fs: GuestFS) -> dict[str, Located]:
    out: dict[str, Located] = {}
    files = ["/etc/ssh/sshd_config"] + [
        f"/etc/ssh/sshd_config.d/{n}"
        for n in sorted(_listdir(fs, "/etc/ssh/sshd_config.d"))
        if n.endswith(".conf")
    ]
    # sshd takes the FIRST value it reads; Include of sshd_config.d comes first on Debian.
    ordered = files[1:] + files[:1]
    for path in ordered:
        for n, line in _lines(read_text(fs, path) or ""):
            if line.lower().startswith("match "):
                break
            parts = line.split(None, 1)
            if len(parts) == 2:
                out.setdefault(parts[0].lower(), Located(parts[1].strip(), f"{path}:{n}"))
    return out


def _files_under(fs: GuestFS, base: str, *, limit: int = 200) -> tuple[str, ...]:
    """Regular files and links under ``base`` (bounded walk; loops cannot recurse forever)."""
    out: list[str] = []
    stack = [base]
    seen = 0
    while stack and len(out) < limit and seen < 2000:
        d = stack.pop()
        for name in _listdir(fs, d):
            seen += 1
            path = f"{d}/{name}"
            st = _lstat(fs, path)
            if st is None:
                continue
            if st.is_dir:
                stack.append(path)
            else:
                out.append(path)
    return tuple(sorted(out))


def _leases(fs: GuestFS) -> tuple[str, ...]:
    out = []
    for d in (
        "/var/lib/dhclient",
        "/var/lib/dhcp",
        "/var/lib/dhcpcd",
        "/var/lib/NetworkManager",
        "/var/db",
    ):
        for name in _listdir(fs, d):
            if "lease" in name and not name.endswith(".conf"):
                out.append(f"{d}/{name}")
    for name in _listdir(fs, "/run/systemd/netif/leases"):
        out.append(f"/run/systemd/netif/leases/{name}")
    return tuple(out)


def _sudoers(fs: GuestFS) -> tuple[Located, ...]:
    out = []
    paths = ["/etc/sudoers"] + [f"/etc/sudoers.d/{n}" for n in _listdir(fs, "/etc/sudoers.d")]
    for path in paths:
        for n, line in _lines(read_text(fs, path) or ""):
            norm = " ".join(line.split())
            if norm.startswith("Defaults targetpw") or norm == "ALL ALL=(ALL) ALL":
                out.append(Located(norm, f"{path}:{n}"))
    return tuple(out)


def _chrony(fs: GuestFS) -> bool | None:
    paths = ["/etc/chrony.conf", "/etc/chrony/chrony.conf"]
    for d in ("/etc/chrony/conf.d", "/etc/chrony.d", "/etc/chrony/sources.d"):
        paths += [f"{d}/{n}" for n in _listdir(fs, d)]
    found = None
    for path in paths:
        text = read_text(fs, path)
        if text is None:
            continue
        found = bool(found)
        if re.search(r"^\s*refclock\s+PHC\s+/dev/ptp_hyperv", text, re.M):
            found = True
    return found


def _udev_rules(fs: GuestFS) -> frozenset[str]:
    out = set()
    for d in ("/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d"):
        out.update(_listdir(fs, d))
    return frozenset(out)


def _grubenv_symlink(fs: GuestFS) -> bool | None:
    st = _lstat(fs, "/boot/grub2/grubenv")
    return None if st is None else st.is_symlink


def _ptp_hyperv_rule(fs: GuestFS) -> bool:
    for d in ("/etc/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d"):
        for name in _listdir(fs, d):
            if "ptp" not in name and name != "50-udev-default.rules":
                continue
            if "ptp_hyperv" in (read_text(fs, f"{d}/{name}", limit=256 * 1024) or ""):
                return True
    return False


def _initramfs_config(fs: GuestFS) -> tuple[Located, ...]:
    out = []
    paths = [
        "/etc/initramfs-tools/modules",
        "/etc/initramfs-tools/initramfs.conf",
        "/etc/dracut.conf",
    ]
    for d in ("/etc/dracut.conf.d", "/etc/initramfs-tools/conf.d"):
        paths += [f"{d}/{n}" for n in sorted(_listdir(fs, d))]
    for path in paths:
        for n, line in _lines(read_text(fs, path) or ""):
            if re.search(r"hv_(vmbus|storvsc|netvsc)|^MODULES=(most|dep|list|netboot)", line):
                out.append(Located(line, f"{path}:{n}"))
    return tuple(out)


def _apt_sources(fs: GuestFS) -> tuple[Located, ...]:
    out = []
    paths = ["/etc/apt/sources.list"] + [
        f"/etc/apt/sources.list.d/{n}" for n in sorted(_listdir(fs, "/etc/apt/sources.list.d"))
    ]
    for path in paths:
        for n, line in _lines(read_text(fs, path) or ""):
            if line.startswith(("deb ", "deb-src ", "URIs:", "Suites:")):
                out.append(Located(line, f"{path}:{n}"))
    return tuple(out)


def _yum_repos(fs: GuestFS) -> tuple[Located, ...]:
    out = []
    for d in ("/etc/yum.repos.d", "/etc/zypp/repos.d"):
        for name in sorted(_listdir(fs, d)):
            path = f"{d}/{name}"
            for n, line in _lines(read_text(fs, path) or ""):
                if line.startswith(("[", "enabled", "baseurl", "mirrorlist", "autorefresh")):
                    out.append(Located(line, f"{path}:{n}"))
    return tuple(out)


# Paths whose mere presence a rule needs (packages judged by their files where no dpkg).
PROBE_PATHS = (
    "/usr/bin/growpart",
    "/usr/sbin/gdisk",
    "/sbin/gdisk",
    "/usr/sbin/hypervkvpd",
    "/usr/sbin/hv_kvp_daemon",
    "/usr/sbin/NetworkManager",
    "/usr/share/oem",
    "/oem",
    "/usr/share/oem/bin/waagent",
    "/usr/lib/systemd/system/waagent.service",
    "/etc/rc.d/waagent",
    "/usr/local/etc/rc.d/waagent",
    "/etc/dracut.conf.d/azure.conf",
    "/boot/flatcar/first_boot",
    "/usr/share/flatcar/first_boot",
    "/var/log/waagent.log",
    "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg",
    "/etc/cloud/cloud.cfg.d/90_dpkg.cfg",
    "/usr/bin/python3",
    "/etc/pki/consumer/cert.pem",
    "/etc/pki/consumer/key.pem",
    "/etc/NetworkManager/conf.d/99-azure-unmanaged-devices.conf",
)

RAW_FILES = (
    "/etc/rc.conf",
    "/boot/loader.conf",
    "/etc/boot.conf",
    "/etc/hostname.hvn0",
    "/etc/rc.conf.local",
    "/etc/sysconfig/network",
    "/etc/sysconfig/network/dhcp",
    "/etc/initramfs-tools/initramfs.conf",
    "/usr/share/oem/grub.cfg",
    "/oem/grub.cfg",
    "/boot/flatcar/first_boot",
    "/etc/default/grub",
)


def _raw_files(fs: GuestFS) -> dict[str, str]:
    out = {}
    for path in RAW_FILES:
        text = read_text(fs, path, limit=256 * 1024)
        if text is not None:
            out[path] = text
    return out


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

    os_info = safe("os-release", lambda: _os_info(fs), OsInfo("unknown"))
    fstab, fstab_errors = safe("fstab", lambda: _fstab(fs), (None, ()))
    cmdline = safe("cmdline", lambda: _cmdline(fs), CmdLine(None))
    default, kernels = safe("kernel", lambda: _kernels(fs, cmdline), (None, ()))
    if read_initramfs:
        kernels = tuple(_with_initramfs(fs, k) if k.version == default else k for k in kernels)
    packages = safe("packages", lambda: _dpkg(fs), None)
    accounts = safe("accounts", lambda: _accounts(fs), ())
    homes = safe("accounts", lambda: _homes(fs, accounts), ["/root"])
    units, masked = safe("units", lambda: _units(fs), (frozenset(), frozenset()))
    swap_files, swap_units = safe("swap", lambda: _swap(fs), ((), ()))
    arch, elf_class = safe("arch", lambda: _arch(fs), (None, None))
    root_keys = None
    text = safe("ssh", lambda: read_text(fs, "/root/.ssh/authorized_keys"), None)
    if text is not None:
        root_keys = Located(text.strip()[:200], "/root/.ssh/authorized_keys")
    user_keys = tuple(
        f"{h}/.ssh/authorized_keys"
        for h in homes
        if h != "/root" and safe("ssh", lambda h=h: _exists(fs, f"{h}/.ssh/authorized_keys"), False)
    )
    host_keys = tuple(
        f"/etc/ssh/{n}"
        for n in safe("ssh", lambda: _listdir(fs, "/etc/ssh"), [])
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
        modprobe_disabled=safe("modprobe", lambda: _modprobe_disabled(fs), {}),
        packages=packages,
        rpm_db=safe("packages", lambda: bool(_listdir(fs, "/var/lib/rpm")), False),
        units_enabled=units,
        units_masked=masked,
        waagent=safe("waagent", lambda: _waagent(fs, packages), WaagentInfo(False)),
        cloud_init=safe("cloud-init", lambda: _cloud_init(fs), CloudInitInfo(False)),
        swap_files=swap_files,
        swap_units=swap_units,
        network=safe("network", lambda: _network(fs), NetworkInfo()),
        accounts=accounts,
        histories=safe("histories", lambda: _histories(fs, homes), ()),
        root_authorized_keys=root_keys,
        user_authorized_keys=user_keys,
        ssh_host_keys=host_keys,
        sshd_installed=safe("ssh", lambda: any(_exists(fs, p) for p in SSHD_PATHS), False),
        sshd_enabled=any(
            u in units for u in ("ssh.service", "sshd.service", "ssh.socket", "sshd.socket")
        ),
        sshd_config=safe("ssh", lambda: _sshd_config(fs), {}),
        waagent_state=safe("waagent", lambda: _files_under(fs, "/var/lib/waagent"), ()),
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
                    if _lstat(fs, p) is not None
                )
                + tuple(
                    f"/var/lib/cloud/instances/{n}"
                    for n in _listdir(fs, "/var/lib/cloud/instances")
                )
            ),
            (),
        ),
        leases=safe("network", lambda: _leases(fs), ()),
        resolv_conf=safe("network", lambda: _lstat(fs, "/etc/resolv.conf") is not None, False),
        hostname=hostname.strip() if hostname else None,
        machine_id=machine_id.strip() if machine_id is not None else None,
        sudoers=safe("sudoers", lambda: _sudoers(fs), ()),
        chrony_refclock_ptp=safe("chrony", lambda: _chrony(fs), None),
        udev_rules=safe("udev", lambda: _udev_rules(fs), frozenset()),
        ptp_hyperv_rule=safe("udev", lambda: _ptp_hyperv_rule(fs), False),
        grubenv_symlink=safe("cmdline", lambda: _grubenv_symlink(fs), None),
        initramfs_config=safe("initramfs-config", lambda: _initramfs_config(fs), ()),
        apt_sources=safe("packages", lambda: _apt_sources(fs), ()),
        yum_repos=safe("packages", lambda: _yum_repos(fs), ()),
        files=safe("files", lambda: _raw_files(fs), {}),
        present=safe(
            "files", lambda: frozenset(p for p in PROBE_PATHS if _exists(fs, p)), frozenset()
        ),
        unreadable=unreadable,
    )


def unreadable_root(label: str, kind: str, why: str) -> GuestFacts:
    """Facts for a root the tool cannot read (UFS/FFS): every guest rule reports unreadable."""
    return GuestFacts(label=label, os=OsInfo(kind), unreadable={"root": why})
