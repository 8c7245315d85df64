"""Installed kernels, the Hyper-V drivers each can load, and what reaches the initramfs."""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azimg.disk.guestfs import GuestFS, read_text, resolve
from azimg.image import initramfs
from azimg.image.facts.boot import CmdLine
from azimg.image.facts.files import Guard, Located, is_file, lines, listdir

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


MAX_KERNELS = 4


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
class KernelFacts:
    default_kernel: str | None = None
    kernels: tuple[KernelInfo, ...] = ()  # the default one first, then the newest few
    modprobe_disabled: Mapping[str, Located] = field(default_factory=dict)
    initramfs_config: tuple[Located, ...] = ()  # persisted driver lists (dracut/initramfs-tools)


def read_kernel(fs: GuestFS, guard: Guard, cmdline: CmdLine, *, initramfs: bool) -> KernelFacts:
    """``initramfs=False`` skips listing the default kernel's initramfs (the costly read)."""
    default, kernels = guard("kernel", lambda: _read_kernels(fs, cmdline), (None, ()))
    if initramfs:
        kernels = tuple(_with_initramfs(fs, k) if k.version == default else k for k in kernels)
    return KernelFacts(
        default_kernel=default,
        kernels=kernels,
        modprobe_disabled=guard("modprobe", lambda: _read_modprobe_disabled(fs), {}),
        initramfs_config=guard("initramfs-config", lambda: _read_initramfs_config(fs), ()),
    )


def _module_name(path: str) -> str:
    base = posixpath.basename(path)
    base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base)
    return base.replace("-", "_")


def _read_kernels(fs: GuestFS, cmdline: CmdLine) -> tuple[str | None, tuple[KernelInfo, ...]]:
    versions: list[tuple[str, str]] = []
    for base in ("/lib/modules", "/usr/lib/modules"):
        for v in listdir(fs, base):
            if v not in {x for x, _ in versions}:
                versions.append((v, f"{base}/{v}"))
    boot = set(listdir(fs, "/boot"))
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
            if is_file(fs, cand):
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
    data = fs.read_file(resolve(fs, path), limit=256 * 1024 * 1024)
    found = initramfs.read_initramfs(data)
    return sorted(found.modules | found.builtin)


_NOOP_INSTALL = ("/bin/true", "/bin/false", "/usr/bin/true", "/usr/bin/false")


def _read_modprobe_disabled(fs: GuestFS) -> dict[str, Located]:
    out: dict[str, Located] = {}
    for d in ("/etc/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"):
        for name in sorted(listdir(fs, d)):
            if not name.endswith(".conf"):
                continue
            path = f"{d}/{name}"
            for n, line in lines(read_text(fs, path) or ""):
                f = line.split()
                off = f[:1] == ["blacklist"] and len(f) >= 2
                off = off or (len(f) >= 3 and f[0] == "install" and f[2] in _NOOP_INSTALL)
                if off:
                    out[f[1].replace("-", "_")] = Located(line, f"{path}:{n}")
    return out


def _read_initramfs_config(fs: GuestFS) -> tuple[Located, ...]:
    out = []
    paths = [
        "/etc/initramfs-tools/modules",
        "/etc/initramfs-tools/initramfs.conf",
        "/etc/dracut.conf",
    ]
    for d in ("/etc/dracut.conf.d", "/etc/initramfs-tools/conf.d"):
        paths += [f"{d}/{n}" for n in sorted(listdir(fs, d))]
    for path in paths:
        for n, line in lines(read_text(fs, path) or ""):
            if re.search(r"hv_(vmbus|storvsc|netvsc)|^MODULES=(most|dep|list|netboot)", line):
                out.append(Located(line, f"{path}:{n}"))
    return tuple(out)
