"""Turn a fresh copy of the bootstrapped tree into an Azure image (prerequisites.md §6, §7.1).

Runs on an unpacked tree on the host (no mounts). Only two steps enter the tree with ``chroot``:
``dpkg --purge`` of the agent this variant does not use, and ``useradd`` for a specialized
image's user, because both maintain files (dpkg database, passwd/shadow/group/gshadow) whose
consistency the guest's own tools know best.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from azimg.image.build.spec import Account, Agent, BuildSpec
from azimg.image.build.tools import run

MARK = "written by azimg build"


@dataclass(frozen=True)
class Identity:
    """The filesystem ids fstab and GRUB refer to (chosen before the filesystems exist)."""

    root_uuid: str
    esp_volume_id: str | None  # "ABCD-1234"; None without an ESP (generation 1)


def apply(tree: Path, spec: BuildSpec, ids: Identity, grub_cfg: str, cmdline: str) -> None:
    """All of the Azure configuration, in one pass over the tree."""
    _purge_unused_agents(tree, spec.agent)
    _write_fstab(tree, ids)
    _write_grub_config(tree, grub_cfg, cmdline)
    _write_network(tree, spec)
    _write_sshd(tree, spec)
    if spec.agent is Agent.cloud_init:
        _configure_cloud_init(tree, disabled=spec.specialized is not None)
    if spec.agent in (Agent.cloud_init, Agent.waagent):
        _configure_waagent(tree, spec)
    _generalize(tree)
    if spec.agent is not Agent.cloud_init or spec.specialized is not None:
        # Only an active cloud-init makes host keys before sshd starts. waagent makes them
        # during provisioning, after sshd has failed for want of them, and its
        # `try-reload-or-restart ssh` skips a failed unit: nothing would listen on port 22.
        _install_hostkey_unit(tree)
    if spec.specialized is not None:
        _bake_account(tree, spec.specialized)


def _write(tree: Path, guest_path: str, text: str, mode: int = 0o644) -> None:
    path = tree / guest_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Replace, never write through: the old file may be a link into the bootstrap cache.
    path.unlink(missing_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def _purge_unused_agents(tree: Path, agent: Agent) -> None:
    unused = {Agent.cloud_init: [], Agent.waagent: ["cloud-init"]}.get(
        agent, ["cloud-init", "waagent"]
    )
    if not unused:
        return
    # Maintainer scripts must not try to stop services on the build host's behalf (waagent's
    # prerm runs invoke-rc.d): policy-rc.d exit 101 is Debian's "not in a chroot" switch.
    policy = tree / "usr/sbin/policy-rc.d"
    _write(tree, "/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755)
    try:
        run(["chroot", tree, "dpkg", "--purge", *unused], what=f"removing {' '.join(unused)}")
    finally:
        policy.unlink()


def _write_fstab(tree: Path, ids: Identity) -> None:
    # FS-01..03: by UUID only; no swap line (SWP-01).
    lines = [
        f"# {MARK}: mount by UUID (device names move between Hyper-V controllers)",
        f"UUID={ids.root_uuid}\t/\text4\trw,discard,errors=remount-ro\t0\t1",
    ]
    if ids.esp_volume_id is not None:
        (tree / "boot/efi").mkdir(parents=True, exist_ok=True)
        lines.append(f"UUID={ids.esp_volume_id}\t/boot/efi\tvfat\tumask=0077,nofail\t0\t2")
    _write(tree, "/etc/fstab", "\n".join(lines) + "\n")


def _write_grub_config(tree: Path, grub_cfg: str, cmdline: str) -> None:
    _write(tree, "/boot/grub/grub.cfg", grub_cfg)
    # CMD-08: the configured arguments equal the generated ones.
    _write(
        tree,
        "/etc/default/grub",
        f"# {MARK}; /boot/grub/grub.cfg carries the same command line\n"
        "GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_DISTRIBUTOR=Debian\n"
        'GRUB_CMDLINE_LINUX_DEFAULT=""\n'
        f'GRUB_CMDLINE_LINUX="{cmdline}"\n'
        'GRUB_TERMINAL="serial console"\n'
        'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1"\n',
    )


def _write_network(tree: Path, spec: BuildSpec) -> None:
    # NET-01/02: DHCP on the first NIC, named eth0 (net.ifnames=0), bound to no MAC.
    # allow-hotplug, not auto: boot does not wait for a NIC that is not there.
    # An active cloud-init's renderer writes this stanza itself from IMDS (fallback: eth0
    # DHCP); on a specialized image cloud-init is disabled, so the image carries it.
    if spec.agent is not Agent.cloud_init or spec.specialized is not None:
        _write(
            tree,
            "/etc/network/interfaces.d/eth0",
            f"# {MARK}\nallow-hotplug eth0\niface eth0 inet dhcp\n",
        )
    rules = tree / "etc/udev/rules.d/70-persistent-net.rules"
    rules.unlink(missing_ok=True)


def _write_sshd(tree: Path, spec: BuildSpec) -> None:
    text = f"# {MARK}\n# SSH-02: Azure's load balancers drop idle flows after 4 minutes.\n"
    text += "ClientAliveInterval 180\n"
    if spec.specialized is not None:
        text += "PasswordAuthentication no\n"
    _write(tree, "/etc/ssh/sshd_config.d/50-azure.conf", text)


def _configure_cloud_init(tree: Path, *, disabled: bool) -> None:
    _write(
        tree,
        "/etc/cloud/cloud.cfg.d/90-azure.cfg",
        f"# {MARK}\n"
        "# AGT-07: only the Azure datasource (ds-identify then needs no guessing).\n"
        "datasource_list: [ Azure ]\n"
        "datasource:\n  Azure:\n    apply_network_config: true\n"
        "# /etc/hosts follows the hostname the platform provisions.\n"
        "manage_etc_hosts: true\n",
        # No KVP telemetry (AGT-12, advice only): outside Hyper-V every event would print a
        # warning on the serial console.
    )
    if disabled:
        # A specialized disk is already provisioned: cloud-init would treat the new VM as a
        # new instance (new host keys, default user). waagent (Provisioning.Agent=disabled)
        # still reports Ready.
        _write(tree, "/etc/cloud/cloud-init.disabled", f"# {MARK}: specialized image\n")


def set_conf_keys(text: str, values: dict[str, str]) -> str:
    """Set ``Key=Value`` lines of waagent.conf, replacing existing (even commented) ones."""
    out = []
    pending = dict(values)
    for line in text.splitlines():
        match = re.match(r"^#?\s*([A-Za-z][\w.]*)\s*=", line)
        if match and match.group(1) in pending:
            key = match.group(1)
            out.append(f"{key}={pending.pop(key)}")
        else:
            out.append(line)
    out += [f"{k}={v}" for k, v in pending.items()]
    return "\n".join(out) + "\n"


def waagent_settings(spec: BuildSpec) -> dict[str, str]:
    """waagent.conf per Azure's guidance for who owns provisioning and the resource disk."""
    if spec.specialized is not None:
        provisioning = "disabled"  # provisioning.md §7.2: the documented specialized setting
    elif spec.agent is Agent.waagent:
        provisioning = "waagent"
    else:
        provisioning = "cloud-init"
    if spec.agent is Agent.waagent:
        # waagent owns the resource disk: ext4 on /mnt/resource with swap there, never on the
        # OS disk (SWP-01, SWP-03).
        disk = {
            "ResourceDisk.Format": "y",
            "ResourceDisk.Filesystem": "ext4",
            "ResourceDisk.MountPoint": "/mnt/resource",
            "ResourceDisk.EnableSwap": "y",
            "ResourceDisk.SwapSizeMB": "2048",
        }
    else:
        # SWP-02: cloud-init owns the resource disk; waagent keeps its hands off.
        disk = {"ResourceDisk.Format": "n", "ResourceDisk.EnableSwap": "n"}
    return {
        "Provisioning.Agent": provisioning,
        "Provisioning.DeleteRootPassword": "y",
        "Provisioning.RegenerateSshHostKeyPair": "y",
        "Provisioning.MonitorHostName": "y",
        **disk,
    }


def _configure_waagent(tree: Path, spec: BuildSpec) -> None:
    conf = tree / "etc/waagent.conf"
    text = conf.read_text() if conf.is_file() else ""
    _write(tree, "/etc/waagent.conf", set_conf_keys(text, waagent_settings(spec)))


def _generalize(tree: Path) -> None:
    """What deprovisioning removes (SEC-05, SEC-09, NET-08/09, SEC-01): nothing of the build."""
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(tree, "/etc/machine-id", "")
    (tree / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    resolv = tree / "etc/resolv.conf"
    if resolv.is_file() or resolv.is_symlink():
        resolv.unlink()
    _write(tree, "/etc/hostname", "localhost\n")
    _write(
        tree,
        "/etc/hosts",
        "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"
        "ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n",
    )
    for lease_dir in ("var/lib/dhcp", "var/lib/dhclient"):
        for lease in (tree / lease_dir).glob("*.lease*"):
            lease.unlink()
    _lock_root(tree)


def _lock_root(tree: Path) -> None:
    shadow = tree / "etc/shadow"
    lines = shadow.read_text().splitlines()
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == "root" and not fields[1].startswith(("*", "!")):
            fields[1] = "*"
            lines[i] = ":".join(fields)
    _write(tree, "/etc/shadow", "\n".join(lines) + "\n", 0o640)
    os.chown(shadow, 0, _gid(tree, "shadow"))


def _gid(tree: Path, group: str) -> int:
    for line in (tree / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return int(fields[2])
    return 0


HOSTKEY_UNIT = f"""# {MARK}: sshd needs host keys before any agent could make them
[Unit]
Description=Generate the SSH host keys this image ships without
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
"""


def _install_hostkey_unit(tree: Path) -> None:
    _write(tree, "/etc/systemd/system/azimg-ssh-hostkeys.service", HOSTKEY_UNIT)
    wants = tree / "etc/systemd/system/ssh.service.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "azimg-ssh-hostkeys.service"
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/systemd/system/azimg-ssh-hostkeys.service")


def _bake_account(tree: Path, account: Account) -> None:
    _write(tree, "/etc/hostname", f"{account.hostname}\n")
    hosts = (tree / "etc/hosts").read_text()
    _write(tree, "/etc/hosts", f"127.0.1.1\t{account.hostname}\n" + hosts)
    run(
        ["chroot", tree, "useradd", "--create-home", "--shell", "/bin/bash",
         "--groups", "adm,sudo", "--user-group", account.username],
        what=f"creating user {account.username}",
    )  # fmt: skip
    passwd = {
        f[0]: f for f in (ln.split(":") for ln in (tree / "etc/passwd").read_text().splitlines())
    }
    uid, gid = int(passwd[account.username][2]), int(passwd[account.username][3])
    home = tree / passwd[account.username][5].lstrip("/")
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(account.ssh_public_key.strip() + "\n")
    os.chmod(keys, 0o600)
    for path in (ssh_dir, keys):
        os.chown(path, uid, gid)
    _write(
        tree,
        "/etc/sudoers.d/90-azimg-users",
        f"# {MARK}\n{account.username} ALL=(ALL) NOPASSWD:ALL\n",
        0o440,
    )
