"""`azimg generalize`: an offline deprovision for Azure — no boot, no mounts, no loop devices.

What it removes is the union of three lists (provisioning.md §4.5, tooling.md §3):
``waagent -deprovision[+user]`` (SSH host keys, DHCP leases, /var/lib/waagent, /var/log/azure,
resolv.conf, hostname, locked root password, the provisioned user), ``cloud-init clean --logs
--seed --machine-id`` (/var/lib/cloud, its logs, machine-id emptied — not deleted, so systemd
makes a new one on first boot) and the virt-sysprep operations that matter here (shell
histories, /tmp, random seed, persistent net rules, root's authorized_keys, the journal).

Flow, and why it is shaped so:

1. **Plan by reading.** The image is opened read-only with our own readers (``open_guest``);
   every action is decided from what is really there, so the report names real paths and a
   dry plan costs milliseconds.
2. **Copy, then edit the copy.** ``convert`` writes the input as an Azure-ready fixed VHD to a
   hidden temporary beside the destination (data extents only, kernel-side copy). In place is
   the same with the input as the destination: a failure at any point deletes the temporary
   and the input is untouched; success is one ``rename``.
3. **Write ext4 with the tool made for it.** ``debugfs -w`` from e2fsprogs, addressed at the
   partition inside the VHD by ``file?offset=N`` (unix_io's offset option), so no partition
   bytes are copied out and back. debugfs reports a failed command on stderr but exits 0, so
   any stderr line that is not its banner fails the run.
4. **Verify by reading again.** The copy is reopened and every delete/empty is checked before
   the rename.

XFS, btrfs and LVM roots are refused: we cannot write them safely offline, and libguestfs
(virt-sysprep/virt-customize) does it in ~30 s under TCG — the message says so.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azimg.disk.convert import _copy, _data_extents, convert  # kernel-side, sparse-aware
from azimg.disk.guest import GuestPartition, open_guest
from azimg.disk.guestfs import GuestFS, GuestStat
from azimg.errors import AzimgError, InvalidArgument, ToolMissing

# Paths whose *contents* go (the directory stays, as waagent and cloud-init leave it).
EMPTY_DIRS = (
    ("/var/lib/cloud", "cloud-init instance state, seed and data (cloud-init clean --seed)"),
    ("/var/lib/waagent", "waagent state: provisioned marker, goal state, ovf-env, certificates"),
    ("/var/log/azure", "extension logs (waagent -deprovision)"),
    ("/var/lib/dhclient", "DHCP leases"),
    ("/var/lib/dhcp", "DHCP leases"),
    ("/var/lib/dhcpcd", "DHCP leases"),
    ("/var/log/journal", "journal of the build VM (its directory is named by the machine-id)"),
    ("/tmp", "temporary files"),
    ("/var/tmp", "temporary files"),
)
DELETE_FILES = (
    ("/var/log/cloud-init.log", "cloud-init log (cloud-init clean --logs)"),
    ("/var/log/cloud-init-output.log", "cloud-init log (cloud-init clean --logs)"),
    ("/var/log/waagent.log", "waagent log"),
    ("/etc/resolv.conf", "build-time resolver (waagent -deprovision)"),
    ("/var/lib/systemd/random-seed", "random seed"),
    ("/var/lib/urandom/random-seed", "random seed"),
    ("/etc/udev/rules.d/70-persistent-net.rules", "persistent net rules (MAC addresses)"),
    ("/root/.ssh/authorized_keys", "root's SSH keys"),
    ("/lib/systemd/system/walinuxagent-network-setup.service", "waagent network setup"),
)
EMPTY_FILES = (
    ("/etc/machine-id", "machine-id emptied (systemd makes a new one on first boot)"),
    ("/var/log/wtmp", "login records"),
    ("/var/log/btmp", "failed-login records"),
    ("/var/log/lastlog", "login records"),
)
HISTORY_NAMES = (".bash_history", ".sh_history", ".zsh_history", ".history", ".ash_history")
AGENT_PATHS = (
    "/usr/bin/cloud-init",
    "/usr/sbin/waagent",
    "/usr/bin/waagent",
    "/usr/lib/python3/dist-packages/azurelinuxagent",
)
LEASE_GLOBS = (("/var/lib/NetworkManager", "lease"), ("/var/db", "dhclient.leases"))
SUDOERS_FILES = ("/etc/sudoers.d/90-cloud-init-users", "/etc/sudoers.d/waagent")
HOSTNAME = "localhost.localdomain"
LOCKED_ROOT = "*LOCK*"
MOUNTABLE = ("/var", "/var/lib", "/var/log", "/home", "/tmp", "/var/tmp")


class Refused(AzimgError):
    """The image cannot be generalized as asked (no agent, a filesystem we cannot write)."""


@dataclass(frozen=True)
class Action:
    """One thing done to the image, as the report shows it."""

    path: str
    done: str  # deleted, emptied, rewrote, removed user, ...
    why: str
    entries: int = 1  # files and directories a tree delete removed

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "done": self.done, "why": self.why, "entries": self.entries}


@dataclass(frozen=True)
class GeneralizeResult:
    source: str
    output: str
    in_place: bool
    root: str
    agents: tuple[str, ...]
    actions: tuple[Action, ...]
    users_removed: tuple[str, ...]
    users_kept: tuple[str, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "output": self.output,
            "inPlace": self.in_place,
            "root": self.root,
            "agents": list(self.agents),
            "usersRemoved": list(self.users_removed),
            "usersKept": list(self.users_kept),
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
            "actions": [a.to_json() for a in self.actions],
        }


# ----------------------------------------------------------------------------------------------
# Volumes: which ext4 partition holds a guest path


@dataclass
class Volume:
    mountpoint: str
    gp: GuestPartition
    offset: int  # byte offset of the partition in the guest disk

    @property
    def fs(self) -> GuestFS:
        assert self.gp.fs is not None
        return self.gp.fs


def _is_ext(gp: GuestPartition) -> bool:
    return gp.fs_type in ("ext2", "ext3", "ext4")


def _lstat(fs: GuestFS, path: str) -> GuestStat | None:
    try:
        return fs.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read(fs: GuestFS, path: str) -> str | None:
    st = _lstat(fs, path)
    if st is None or not st.is_file:
        return None
    return fs.read_file(path, limit=4 * 1024 * 1024).decode("utf-8", "surrogateescape")


def _find_root(img: Any) -> GuestPartition:
    def score(gp: GuestPartition) -> int:
        if gp.fs is None:
            return 0
        return sum(2 for p in ("/etc/fstab", "/etc/os-release", "/etc/passwd") if _lstat(gp.fs, p))

    best = max(img.partitions, key=score, default=None)
    if best is not None and score(best) >= 4:
        return best
    kinds = sorted({gp.fs_type or "unknown" for gp in img.partitions if gp.fs_type != "vfat"})
    raise Refused(
        "no Linux root filesystem found (partitions hold: "
        + (", ".join(kinds) or "nothing")
        + "); LVM, btrfs and LUKS roots cannot be generalized offline by azimg — "
        "virt-sysprep (libguestfs, ~30 s under TCG) can"
    )


def _volumes(img: Any, root: GuestPartition) -> list[Volume]:
    """The root plus separate /var, /home, /tmp… partitions its fstab names (by id)."""
    vols = [Volume("/", root, root.partition.start if root.partition else 0)]
    text = _read(root.fs, "/etc/fstab") if root.fs else None
    by_id: dict[str, GuestPartition] = {}
    for gp in img.partitions:
        p = gp.partition
        if gp.uuid:
            by_id[f"UUID={gp.uuid.lower()}"] = gp
        if gp.label:
            by_id[f"LABEL={gp.label}"] = gp
        if p is not None and p.uuid:
            by_id[f"PARTUUID={p.uuid.lower()}"] = gp
    for line in (text or "").splitlines():
        f = line.split()
        if len(f) < 3 or f[0].startswith("#") or f[1] not in MOUNTABLE:
            continue
        key, _, val = f[0].partition("=")
        val = val.strip("\"'")
        spec = f"{key.upper()}={val.lower() if key.upper() != 'LABEL' else val}"
        gp = by_id.get(spec)
        if gp is None or gp is root:
            continue
        if not _is_ext(gp) or gp.fs is None:
            raise Refused(
                f"{f[1]} is {gp.fs_type or 'unreadable'} (fstab: {f[0]}); azimg generalize "
                "writes ext2/3/4 only — use virt-sysprep (libguestfs, slower) for this image"
            )
        assert gp.partition is not None
        vols.append(Volume(f[1], gp, gp.partition.start))
    return vols


def _locate(vols: list[Volume], path: str) -> tuple[Volume, str]:
    best = vols[0]
    for v in vols[1:]:
        if (path == v.mountpoint or path.startswith(v.mountpoint + "/")) and len(
            v.mountpoint
        ) > len(best.mountpoint):
            best = v
    if best.mountpoint == "/":
        return best, path
    return best, path[len(best.mountpoint) :] or "/"


# ----------------------------------------------------------------------------------------------
# Planning (reads only)


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    # per volume mountpoint: debugfs command lines
    commands: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)  # guest paths that must be gone after
    emptied: list[str] = field(default_factory=list)  # guest paths that must be size 0 after
    writes: dict[str, bytes] = field(default_factory=dict)  # guest path -> new content
    skipped: list[str] = field(default_factory=list)


_UNSAFE_NAME = re.compile(r'["\n\r\\]')


def _q(path: str) -> str:
    return f'"{path}"'


class Planner:
    def __init__(self, vols: list[Volume]) -> None:
        self.vols = vols
        self.plan = Plan()

    def _cmd(self, path: str, line: str) -> None:
        vol, _ = _locate(self.vols, path)
        self.plan.commands.setdefault(vol.mountpoint, []).append(line)

    def stat(self, path: str) -> GuestStat | None:
        vol, inner = _locate(self.vols, path)
        return _lstat(vol.fs, inner)

    def listdir(self, path: str) -> list[str]:
        vol, inner = _locate(self.vols, path)
        try:
            return vol.fs.listdir(inner)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def read(self, path: str) -> str | None:
        vol, inner = _locate(self.vols, path)
        return _read(vol.fs, inner)

    def inner(self, path: str) -> str:
        return _locate(self.vols, path)[1]

    def _is_mountpoint(self, path: str) -> bool:
        return any(v.mountpoint == path for v in self.vols[1:])

    def delete(self, path: str, why: str) -> None:
        """Delete a file, link or whole tree (bottom-up: debugfs rmdir wants empty dirs)."""
        st = self.stat(path)
        if st is None:
            return
        if _UNSAFE_NAME.search(path):
            self.plan.skipped.append(path)
            self.plan.actions.append(Action(path, "skipped", "name debugfs cannot quote", 0))
            return
        count = self._delete_tree(path, st)
        self.plan.deleted.append(path)
        done = "deleted tree" if st.is_dir else "deleted"
        self.plan.actions.append(Action(path, done, why, count))

    def _delete_tree(self, path: str, st: GuestStat) -> int:
        count = 1
        if st.is_dir:
            for name in self.listdir(path):
                child = f"{path.rstrip('/')}/{name}"
                cst = self.stat(child)
                if cst is None:
                    continue
                if _UNSAFE_NAME.search(child):
                    raise Refused(f"{child}: a name debugfs cannot quote; rename it first")
                count += self._delete_tree(child, cst)
            self._cmd(path, f"rmdir {_q(self.inner(path))}")
        else:
            self._cmd(path, f"rm {_q(self.inner(path))}")
        return count

    def empty_dir(self, path: str, why: str) -> None:
        st = self.stat(path)
        if st is None or not st.is_dir:
            return
        for name in self.listdir(path):
            child = f"{path.rstrip('/')}/{name}"
            if self._is_mountpoint(child) or name == "lost+found":
                continue
            self.delete(child, why)

    def empty_file(self, path: str, why: str) -> None:
        st = self.stat(path)
        if st is None or not st.is_file or st.size == 0:
            return
        inner = _q(self.inner(path))
        self._cmd(path, f"punch {inner} 0")
        self._cmd(path, f"sif {inner} size 0")
        self.plan.emptied.append(path)
        self.plan.actions.append(Action(path, "emptied", why))

    def rewrite(self, path: str, content: bytes, why: str, host_file: Path) -> None:
        """Replace a file's content, keeping its mode and owner (rm + write + set_inode)."""
        st = self.stat(path)
        if st is None or not st.is_file:
            return
        inner = _q(self.inner(path))
        host_file.write_bytes(content)
        for line in (
            f"rm {inner}",
            f"write {_q(str(host_file))} {inner}",
            f"sif {inner} mode 0{st.mode:o}",
            f"sif {inner} uid {st.uid}",
            f"sif {inner} gid {st.gid}",
        ):
            self._cmd(path, line)
        self.plan.writes[path] = content
        self.plan.actions.append(Action(path, "rewrote", why))


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    home: str
    shell: str


def _accounts(passwd: str) -> list[Account]:
    out = []
    for line in passwd.splitlines():
        f = line.split(":")
        if len(f) >= 7 and f[2].isdigit():
            out.append(Account(f[0], int(f[2]), f[5], f[6]))
    return out


def _can_login(a: Account) -> bool:
    return not a.shell.endswith(("nologin", "false")) and a.shell != ""


def _drop_lines(text: str, keep: Any) -> str:
    lines = [ln for ln in text.splitlines() if keep(ln)]
    return "\n".join(lines) + ("\n" if lines else "")


def _without_users(group_text: str, users: set[str]) -> str:
    """Remove each user's own group (same name, no other members) and its memberships."""
    out = []
    for line in group_text.splitlines():
        f = line.split(":")
        if len(f) < 4:
            out.append(line)
            continue
        members = [m for m in f[3].split(",") if m and m not in users]
        if f[0] in users and not members:
            continue
        f[3] = ",".join(members)
        out.append(":".join(f))
    return "\n".join(out) + ("\n" if out else "")


def _plan(
    pl: Planner,
    tmpdir: Path,
    *,
    remove_users: bool,
    keep_users: tuple[str, ...],
) -> tuple[list[str], list[str]]:
    """Fill ``pl.plan``; return (users removed, login users kept)."""
    for n in sorted(pl.listdir("/etc/ssh")):
        st = pl.stat(f"/etc/ssh/{n}")
        if n.startswith("ssh_host_") and "key" in n and st is not None and st.is_file:
            pl.delete(f"/etc/ssh/{n}", "SSH host key (regenerated at first boot)")
    st = pl.stat("/var/lib/dbus/machine-id")
    if st is not None and st.is_file:
        pl.delete("/var/lib/dbus/machine-id", "D-Bus copy of the machine-id")
    for path, why in EMPTY_DIRS:
        pl.empty_dir(path, why)
    for base, needle in LEASE_GLOBS:
        for n in pl.listdir(base):
            if needle in n and not n.endswith(".conf"):
                pl.delete(f"{base}/{n}", "DHCP lease")
    for path, why in DELETE_FILES:
        pl.delete(path, why)
    for path, why in EMPTY_FILES:
        pl.empty_file(path, why)

    passwd = pl.read("/etc/passwd") or ""
    accounts = _accounts(passwd)
    humans = [a for a in accounts if 1000 <= a.uid < 65534 and _can_login(a)]
    homes = {"/root"} | {f"/home/{n}" for n in pl.listdir("/home")} | {a.home for a in humans}
    gone: list[str] = []
    if remove_users:
        gone = [a.name for a in humans if a.name not in keep_users]
    missing = [u for u in keep_users if u not in {a.name for a in humans}]
    if missing:
        raise InvalidArgument(
            f"--keep-user {', '.join(missing)}: no such login user (UID >= 1000) in the image"
        )
    kept = [a.name for a in humans if a.name not in gone]
    for home in sorted(homes):
        if any(home == a.home for a in humans if a.name in gone):
            continue
        for n in HISTORY_NAMES:
            st = pl.stat(f"{home}/{n}")
            if st is not None and st.is_file:
                pl.delete(f"{home}/{n}", "shell history")

    hostname = pl.read("/etc/hostname")
    if hostname is not None and hostname.strip() not in ("", "localhost", HOSTNAME):
        pl.rewrite(
            "/etc/hostname",
            f"{HOSTNAME}\n".encode(),
            f"was {hostname.strip()!r} (waagent -deprovision)",
            tmpdir / "hostname",
        )
    shadow = pl.read("/etc/shadow")
    lock_root = False
    if shadow is not None:
        for line in shadow.splitlines():
            f = line.split(":")
            if f[0] == "root" and len(f) > 1 and not f[1].startswith(("!", "*")):
                lock_root = True
    if shadow is not None and (lock_root or gone):
        lines = []
        for line in shadow.splitlines():
            f = line.split(":")
            if f[0] in gone:
                continue
            if f[0] == "root" and lock_root:
                f[1] = LOCKED_ROOT
            lines.append(":".join(f))
        why = ("root password locked" if lock_root else "") + (
            ("; " if lock_root else "") + f"users {', '.join(gone)} removed" if gone else ""
        )
        pl.rewrite("/etc/shadow", ("\n".join(lines) + "\n").encode(), why, tmpdir / "shadow")
    if gone:
        users = set(gone)
        pl.rewrite(
            "/etc/passwd",
            _drop_lines(passwd, lambda ln: ln.split(":", 1)[0] not in users).encode(),
            f"users {', '.join(gone)} removed",
            tmpdir / "passwd",
        )
        for path in ("/etc/group", "/etc/gshadow"):
            text = pl.read(path)
            if text is not None:
                new = _without_users(text, users)
                if new != text:
                    name = path.rsplit("/", 1)[1]
                    pl.rewrite(path, new.encode(), "groups of removed users", tmpdir / name)
        for path in ("/etc/subuid", "/etc/subgid"):
            text = pl.read(path)
            if text is not None:
                new = _drop_lines(text, lambda ln: ln.split(":", 1)[0] not in users)
                if new != text:
                    pl.rewrite(path, new.encode(), "removed users", tmpdir / path[5:])
        for path in SUDOERS_FILES:
            text = pl.read(path)
            if text is None:
                continue
            new = _drop_lines(
                text,
                lambda ln: not (ln.split() and ln.split()[0] in users),
            )
            if not any(ln.strip() and not ln.startswith("#") for ln in new.splitlines()):
                pl.delete(path, "sudo rules of removed users only")
            elif new != text:
                pl.rewrite(path, new.encode(), "sudo rules of removed users", tmpdir / "sudo")
        for a in humans:
            if a.name in users:
                if a.home.startswith("/home/"):
                    pl.delete(a.home, f"home of removed user {a.name}")
                pl.delete(f"/var/mail/{a.name}", f"mail of removed user {a.name}")
                pl.plan.actions.append(Action(a.name, "removed user", f"UID {a.uid}"))
    return gone, kept


# ----------------------------------------------------------------------------------------------
# Applying (debugfs on the temporary copy) and verifying


def _debugfs() -> str:
    exe = shutil.which("debugfs") or shutil.which("debugfs", path="/usr/sbin:/sbin")
    if exe is None:
        raise ToolMissing("debugfs not found: install e2fsprogs")
    return exe


def _run_debugfs(image: Path, offset: int, commands: list[str], tmpdir: Path) -> None:
    script = tmpdir / f"debugfs-{offset}.cmds"
    script.write_text("\n".join(commands) + "\n")
    proc = subprocess.run(
        [_debugfs(), "-w", "-f", str(script), f"{image}?offset={offset}"],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [
        ln
        for ln in proc.stderr.splitlines()
        if ln.strip() and not ln.startswith("debugfs ") and "Allocated inode" not in ln
    ]
    if proc.returncode != 0 or errors:
        raise AzimgError(
            "debugfs failed on the copy (the input is untouched): "
            + ("; ".join(errors[:3]) or f"exit {proc.returncode}")
        )


def _verify(out: Path, root_number: int, plan: Plan) -> None:
    with open_guest(out) as img:
        root = img.partition(root_number)
        vols = _volumes(img, root)
        for path in plan.deleted:
            vol, inner = _locate(vols, path)
            if _lstat(vol.fs, inner) is not None:
                raise AzimgError(f"verification failed: {path} is still in the image")
        for path in plan.emptied:
            vol, inner = _locate(vols, path)
            st = _lstat(vol.fs, inner)
            if st is None or st.size != 0:
                raise AzimgError(f"verification failed: {path} is not empty")
        for path, content in plan.writes.items():
            vol, inner = _locate(vols, path)
            if vol.fs.read_file(inner) != content:
                raise AzimgError(f"verification failed: {path} does not hold what was written")


def _writable_root(img: Any) -> GuestPartition:
    root = _find_root(img)
    if not _is_ext(root) or root.fs is None:
        raise Refused(
            f"the root filesystem is {root.fs_type}: azimg generalize writes ext2/3/4 only "
            "(offline, with debugfs); for XFS use virt-sysprep or virt-customize "
            "(libguestfs: an appliance boot, ~30 s under TCG)"
        )
    return root


_SB = struct.Struct("<H")  # ext4 superblock s_state at 0x3A (1 = cleanly unmounted, 2 = errors)
_INCOMPAT_RECOVER = 0x4  # s_feature_incompat at 0x60: the journal holds unreplayed blocks


def _needs_recovery(image: Path, offset: int) -> bool:
    with open(image, "rb") as fh:
        fh.seek(offset + 1024)
        sb = fh.read(1024)
    state = _SB.unpack_from(sb, 0x3A)[0]
    incompat = struct.unpack_from("<I", sb, 0x60)[0]
    return bool(incompat & _INCOMPAT_RECOVER) or not state & 1 or bool(state & 2)


def _copy_extents(src: Path, src_off: int, dst: Path, dst_off: int, length: int) -> None:
    """Copy the data extents of ``src[src_off:src_off+length]`` (holes stay holes)."""
    mode = "r+b" if dst.exists() else "w+b"
    with open(src, "rb") as fin, open(dst, mode) as fout:
        if mode == "w+b":
            fout.truncate(length)
        for start, n in _data_extents(fin.fileno(), src_off, src_off + length):
            _copy(fin.fileno(), fout.fileno(), start, dst_off + start - src_off, n)


def _recover(image: Path, vol: Volume, workdir: Path) -> Action:
    """Replay the journal (e2fsck -p) of a filesystem whose VM was not shut down cleanly.

    e2fsck loses ``?offset=`` when it re-opens the device after the replay, so the partition
    is copied out (data extents only), preened, and its data copied back into the copy."""
    assert vol.gp.partition is not None
    size = vol.gp.partition.size
    part = workdir / f"partition-{vol.gp.number}.img"
    _copy_extents(image, vol.offset, part, 0, size)
    e2fsck = shutil.which("e2fsck") or shutil.which("e2fsck", path="/usr/sbin:/sbin")
    if e2fsck is None:
        raise ToolMissing("e2fsck not found: install e2fsprogs")
    proc = subprocess.run([e2fsck, "-p", str(part)], capture_output=True, text=True, check=False)
    if proc.returncode >= 4:
        why = (proc.stdout + proc.stderr).strip().splitlines()[-1:]
        raise AzimgError(
            f"partition {vol.gp.number} ({vol.mountpoint}) has errors e2fsck -p cannot repair "
            f"(the input is untouched): {' '.join(why)}"
        )
    _copy_extents(part, 0, image, vol.offset, size)
    part.unlink()
    return Action(
        f"partition {vol.gp.number} ({vol.mountpoint})",
        "replayed journal",
        "not cleanly unmounted (a VM stopped hard): e2fsck -p on the copy before reading it",
    )


@contextlib.contextmanager
def _temporary_beside(dst: Path) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".generalize", dir=dst.parent)
    os.close(fd)
    os.unlink(name)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _agents(pl: Planner) -> list[str]:
    found = []
    if pl.stat("/usr/bin/cloud-init") is not None:
        found.append("cloud-init")
    if any(pl.stat(p) is not None for p in AGENT_PATHS[1:]):
        found.append("waagent")
    return found


def generalize(
    image: Path,
    output: Path | None = None,
    *,
    in_place: bool = False,
    remove_users: bool = False,
    keep_users: tuple[str, ...] = (),
    force: bool = False,
) -> GeneralizeResult:
    """Deprovision ``image`` offline into ``output`` (an Azure-ready fixed VHD), or in place."""
    started = time.monotonic()
    image = Path(image)
    if not image.exists():
        raise InvalidArgument(f"{image}: no such file")
    if (output is None) == (not in_place):
        raise InvalidArgument("name the output with -o OUT, or pass --in-place to change IMAGE")
    dst = image if in_place else Path(output)  # type: ignore[arg-type]
    if not in_place and dst.exists() and os.path.samefile(image, dst):
        raise InvalidArgument("-o names the input itself; use --in-place for that")
    if dst.is_dir():
        raise InvalidArgument(f"{dst} is a directory; name the output file")
    if keep_users:
        remove_users = True
    notes: list[str] = []
    with open_guest(image) as img:  # refusals before a byte is copied
        _writable_root(img)
    recovered: list[Action] = []
    with (
        tempfile.TemporaryDirectory(prefix="azimg-generalize-") as td,
        _temporary_beside(dst) as tmp,
    ):
        convert(image, tmp)
        with open_guest(tmp) as img:
            vols = _volumes(img, _writable_root(img))
            dirty = [v for v in vols if _needs_recovery(tmp, v.offset)]
        for vol in dirty:  # a VM stopped hard: replay its journal before reading
            recovered.append(_recover(tmp, vol, Path(td)))
        with open_guest(tmp) as img:
            root = _writable_root(img)
            vols = _volumes(img, root)
            pl = Planner(vols)
            agents = _agents(pl)
            if not agents and not force:
                raise Refused(
                    "no provisioning agent (cloud-init or waagent) in the image: a VM from "
                    "it would never report Ready (OSProvisioningTimedOut after 20 "
                    "minutes); install one, or pass --force"
                )
            if not agents:
                notes.append("no provisioning agent: generalized anyway (--force)")
            gone, kept = _plan(pl, Path(td), remove_users=remove_users, keep_users=keep_users)
        plan = pl.plan
        if kept:
            notes.append(f"login users kept: {', '.join(kept)} (--remove-users removes them)")
        for vol in vols:
            cmds = plan.commands.get(vol.mountpoint)
            if cmds:
                _run_debugfs(tmp, vol.offset, cmds, Path(td))
        _verify(tmp, root.number, plan)
        os.replace(tmp, dst)
    return GeneralizeResult(
        source=str(image),
        output=str(dst),
        in_place=in_place,
        root=f"{root.fs_type} on partition {root.number}",
        agents=tuple(agents),
        actions=(*recovered, *plan.actions),
        users_removed=tuple(gone),
        users_kept=tuple(kept),
        seconds=time.monotonic() - started,
        notes=tuple(notes),
    )
