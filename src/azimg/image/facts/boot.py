"""The kernel command line of the default boot entry: grub.cfg, menu.lst, BLS entries, grubenv."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from azimg.disk.guestfs import GuestFS, read_text
from azimg.image.facts.files import Guard, kv_file, listdir, lstat, shell_assignments


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
class BootFacts:
    cmdline: CmdLine = field(default_factory=lambda: CmdLine(None))
    grubenv_symlink: bool | None = None  # /boot/grub2/grubenv is a link (None: absent)


def read_boot(fs: GuestFS, guard: Guard) -> BootFacts:
    return BootFacts(
        cmdline=guard("cmdline", lambda: _read_cmdline(fs), CmdLine(None)),
        grubenv_symlink=guard("cmdline", lambda: _read_grubenv_symlink(fs), None),
    )


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


def _read_cmdline(fs: GuestFS) -> CmdLine:
    configured: tuple[str, ...] | None = None
    configured_where = ""
    text = read_text(fs, "/etc/default/grub")
    if text is not None:
        assigns = shell_assignments(text, "/etc/default/grub")
        for name in sorted(listdir(fs, "/etc/default/grub.d")):
            if name.endswith(".cfg"):
                extra = read_text(fs, f"/etc/default/grub.d/{name}") or ""
                assigns.update(shell_assignments(extra, f"/etc/default/grub.d/{name}"))
        linux = assigns.get("GRUB_CMDLINE_LINUX")
        default = assigns.get("GRUB_CMDLINE_LINUX_DEFAULT")
        parts = [x.value for x in (linux, default) if x]
        configured = tuple(" ".join(parts).split())
        configured_where = ", ".join(x.where for x in (linux, default) if x)
    kernelopts = None
    for env in ("/boot/grub2/grubenv", "/boot/grub/grubenv"):
        kv = kv_file(fs, env)
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
    entries = sorted(listdir(fs, "/boot/loader/entries"), reverse=True)
    for name in entries:
        if not name.endswith(".conf"):
            continue
        path = f"/boot/loader/entries/{name}"
        kv = kv_file(fs, path, sep=" ")
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


def _read_grubenv_symlink(fs: GuestFS) -> bool | None:
    st = lstat(fs, "/boot/grub2/grubenv")
    return None if st is None else st.is_symlink
