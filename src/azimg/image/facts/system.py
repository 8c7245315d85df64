"""Which operating system the root holds, its architecture, and a few files read whole."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from azimg.disk.guestfs import GuestFS, exists, read_text, resolve
from azimg.image.facts.files import Guard, Located, kv_file

ELF_MACHINES = {3: "i386", 62: "x86_64", 183: "aarch64", 40: "arm", 243: "riscv64"}


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
class SystemFacts:
    arch: Located | None = None  # ELF machine of /sbin/init (or systemd)
    elf_class: int | None = None  # 1 = 32-bit, 2 = 64-bit
    machine_id: str | None = None
    files: Mapping[str, str] = field(default_factory=dict)  # RAW_FILES that exist, by path
    present: frozenset[str] = frozenset()  # PROBE_PATHS that exist


def read_system(fs: GuestFS, guard: Guard) -> SystemFacts:
    arch, elf_class = guard("arch", lambda: _read_arch(fs), (None, None))
    machine_id = guard("machine-id", lambda: read_text(fs, "/etc/machine-id"), None)
    return SystemFacts(
        arch=arch,
        elf_class=elf_class,
        machine_id=machine_id.strip() if machine_id is not None else None,
        files=guard("files", lambda: _read_raw_files(fs), {}),
        present=guard(
            "files", lambda: frozenset(p for p in PROBE_PATHS if exists(fs, p)), frozenset()
        ),
    )


def read_os(fs: GuestFS) -> OsInfo:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        kv = kv_file(fs, path)
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
    if exists(fs, "/bsd") and exists(fs, "/etc/installurl"):
        return OsInfo("openbsd", "openbsd", source="/bsd")
    if exists(fs, "/etc/fstab") or exists(fs, "/sbin/init"):
        return OsInfo("linux", source="")
    return OsInfo("unknown")


def _read_arch(fs: GuestFS) -> tuple[Located | None, int | None]:
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


def _read_raw_files(fs: GuestFS) -> dict[str, str]:
    out = {}
    for path in RAW_FILES:
        text = read_text(fs, path, limit=256 * 1024)
        if text is not None:
            out[path] = text
    return out
