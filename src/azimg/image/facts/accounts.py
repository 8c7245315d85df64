"""Accounts and what they leave behind: passwords, homes, shell histories, SSH, sudoers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from azimg.disk.guestfs import GuestFS, exists, read_text
from azimg.image.facts.files import Guard, Located, lines, listdir, lstat

HISTORY_FILES = (".bash_history", ".sh_history", ".zsh_history", ".history", ".ash_history")


SSHD_PATHS = ("/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd")


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
class AccountFacts:
    users: tuple[Account, ...] = ()
    histories: tuple[Located, ...] = ()  # value = size in bytes
    root_authorized_keys: Located | None = None
    user_authorized_keys: tuple[str, ...] = ()
    ssh_host_keys: tuple[str, ...] = ()
    sshd_installed: bool = False
    sshd_enabled: bool = False
    sshd_config: Mapping[str, Located] = field(default_factory=dict)
    sudoers: tuple[Located, ...] = ()  # "Defaults targetpw" / "ALL ALL=(ALL) ALL" lines


def read_accounts(fs: GuestFS, guard: Guard, units_enabled: frozenset[str]) -> AccountFacts:
    """``units_enabled`` says whether sshd starts at boot."""
    users = guard("accounts", lambda: _read_users(fs), ())
    homes = guard("accounts", lambda: _read_homes(fs, users), ["/root"])
    root_keys = None
    text = guard("ssh", lambda: read_text(fs, "/root/.ssh/authorized_keys"), None)
    if text is not None:
        root_keys = Located(text.strip()[:200], "/root/.ssh/authorized_keys")
    user_keys = tuple(
        f"{h}/.ssh/authorized_keys"
        for h in homes
        if h != "/root" and guard("ssh", lambda h=h: exists(fs, f"{h}/.ssh/authorized_keys"), False)
    )
    host_keys = tuple(
        f"/etc/ssh/{n}"
        for n in guard("ssh", lambda: listdir(fs, "/etc/ssh"), [])
        if n.startswith("ssh_host_") and n.endswith("_key")
    )
    return AccountFacts(
        users=users,
        histories=guard("histories", lambda: _read_histories(fs, homes), ()),
        root_authorized_keys=root_keys,
        user_authorized_keys=user_keys,
        ssh_host_keys=host_keys,
        sshd_installed=guard("ssh", lambda: any(exists(fs, p) for p in SSHD_PATHS), False),
        sshd_enabled=any(
            u in units_enabled for u in ("ssh.service", "sshd.service", "ssh.socket", "sshd.socket")
        ),
        sshd_config=guard("ssh", lambda: _read_sshd_config(fs), {}),
        sudoers=guard("sudoers", lambda: _read_sudoers(fs), ()),
    )


def _read_users(fs: GuestFS) -> tuple[Account, ...]:
    shadow: dict[str, tuple[str, str]] = {}
    for n, line in lines(read_text(fs, "/etc/shadow") or ""):
        f = line.split(":")
        if len(f) >= 2:
            shadow[f[0]] = (f[1], f"/etc/shadow:{n}")
    for n, line in lines(read_text(fs, "/etc/master.passwd") or ""):
        f = line.split(":")
        if len(f) >= 2:
            shadow[f[0]] = (f[1], f"/etc/master.passwd:{n}")
    out = []
    for n, line in lines(read_text(fs, "/etc/passwd") or ""):
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


def _read_homes(fs: GuestFS, accounts: tuple[Account, ...]) -> list[str]:
    homes = {"/root"}
    homes.update(f"/home/{n}" for n in listdir(fs, "/home"))
    homes.update(a.home for a in accounts if a.uid >= 1000 and a.home not in ("/", ""))
    return sorted(homes)


def _read_histories(fs: GuestFS, homes: list[str]) -> tuple[Located, ...]:
    out = []
    for home in homes:
        for name in HISTORY_FILES:
            path = f"{home}/{name}"
            st = lstat(fs, path)
            if st is not None and st.is_file:
                out.append(Located(str(st.size), path))
    return tuple(out)


def _read_sshd_config(fs: GuestFS) -> dict[str, Located]:
    out: dict[str, Located] = {}
    files = ["/etc/ssh/sshd_config"] + [
        f"/etc/ssh/sshd_config.d/{n}"
        for n in sorted(listdir(fs, "/etc/ssh/sshd_config.d"))
        if n.endswith(".conf")
    ]
    # sshd takes the FIRST value it reads; Include of sshd_config.d comes first on Debian.
    ordered = files[1:] + files[:1]
    for path in ordered:
        for n, line in lines(read_text(fs, path) or ""):
            if line.lower().startswith("match "):
                break
            parts = line.split(None, 1)
            if len(parts) == 2:
                out.setdefault(parts[0].lower(), Located(parts[1].strip(), f"{path}:{n}"))
    return out


def _read_sudoers(fs: GuestFS) -> tuple[Located, ...]:
    out = []
    paths = ["/etc/sudoers"] + [f"/etc/sudoers.d/{n}" for n in listdir(fs, "/etc/sudoers.d")]
    for path in paths:
        for n, line in lines(read_text(fs, path) or ""):
            norm = " ".join(line.split())
            if norm.startswith("Defaults targetpw") or norm == "ALL ALL=(ALL) ALL":
                out.append(Located(norm, f"{path}:{n}"))
    return tuple(out)
