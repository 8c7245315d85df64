"""`azimg vm` — reach the VMs a local `azimg serve` runs: list, serial console, SSH.

These commands read the platform's data directory on this machine (the fabric writes one
``connection.json`` per booted VM: its ARM id, admin user, the 127.0.0.1 SSH port and the serial
log), so they need no credentials; the same serial log is served through the ARM API as boot
diagnostics (``retrieveBootDiagnosticsData``).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import typer

from azimg.cli.output import OUTPUT_OPTION, OutputFormat, emit
from azimg.errors import InvalidArgument

DATA_DIR_OPTION = typer.Option(
    None,
    "--data-dir",
    help="platform data directory (default $AZIMG_DATA_DIR or ~/.local/share/azimg)",
)
GROUP_OPTION = typer.Option(None, "--resource-group", "-g", help="the VM's resource group")


def _data_dir(data_dir: Path | None) -> Path:
    if data_dir is not None:
        return data_dir
    from azimg.platform.settings import default_data_dir

    return Path(os.environ.get("AZIMG_DATA_DIR") or default_data_dir())


def known_vms(data_dir: Path) -> list[dict[str, Any]]:
    """Every VM the platform in ``data_dir`` has booted, with whether it runs now."""
    out = []
    for conn in sorted((data_dir / "fabric").glob("*/connection.json")):
        try:
            info = json.loads(conn.read_text())
        except (OSError, ValueError):
            continue
        info["running"] = (conn.parent / "vmhost.pid").exists()
        info["runtimeDir"] = str(conn.parent)
        out.append(info)
    return out


def ssh_endpoint(vm: dict[str, Any], *, probe_s: float = 3.0) -> tuple[str, int]:
    """The public IP's port 22 when it accepts a connection, else the forwarded port (which
    reaches the VM through its VNet, or its private network, whatever its NSG says)."""
    public = vm.get("publicIp")
    if public:
        try:
            socket.create_connection((public, 22), timeout=probe_s).close()
            return public, 22
        except OSError:
            pass
    return "127.0.0.1", int(vm["sshPort"])


def find_vm(data_dir: Path, name: str, resource_group: str | None) -> dict[str, Any]:
    matches = [
        vm
        for vm in known_vms(data_dir)
        if vm["name"].lower() == name.lower()
        and (resource_group is None or vm["resourceGroup"].lower() == resource_group.lower())
    ]
    if not matches:
        raise InvalidArgument(
            f"no VM named {name!r} has run on the platform in {data_dir}",
            hint="azimg vm list shows the VMs it knows",
        )
    if len(matches) > 1:
        groups = ", ".join(sorted(vm["resourceGroup"] for vm in matches))
        raise InvalidArgument(
            f"several VMs are named {name!r} (resource groups {groups})", hint="pass -g GROUP"
        )
    return matches[0]


def register(app: typer.Typer) -> None:
    from azimg.cli.vm_create import register_create

    vm_app = typer.Typer(
        help="Create VMs; reach those a local azimg serve runs.", no_args_is_help=True
    )
    app.add_typer(vm_app, name="vm")
    register_create(vm_app)

    @vm_app.command("list")
    def list_vms(
        data_dir: Path | None = DATA_DIR_OPTION, output: OutputFormat = OUTPUT_OPTION
    ) -> None:
        """The VMs this machine's platform has booted."""
        vms = known_vms(_data_dir(data_dir))

        def text(items: list[dict[str, Any]]) -> str:
            rows = [
                f"{vm['name']:<24} {vm['resourceGroup']:<24} "
                f"{'running' if vm['running'] else 'stopped':<8} ssh 127.0.0.1:{vm['sshPort']}"
                + (f" public {vm['publicIp']}" if vm.get("publicIp") else "")
                for vm in items
            ]
            return "\n".join(rows) if rows else "no VMs"

        emit(vms, output, text)

    @vm_app.command()
    def console(
        name: str = typer.Argument(..., help="VM name"),
        resource_group: str | None = GROUP_OPTION,
        follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new output"),
        data_dir: Path | None = DATA_DIR_OPTION,
    ) -> None:
        """Print the VM's serial console log (boot diagnostics)."""
        vm = find_vm(_data_dir(data_dir), name, resource_group)
        log = Path(vm["serialLog"])
        if not log.exists():
            raise InvalidArgument(f"VM {name} has no serial log yet")
        with log.open("rb") as fh:
            while True:
                chunk = fh.read(65536)
                if chunk:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                    continue
                if not follow:
                    return
                time.sleep(0.5)

    @vm_app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def ssh(
        ctx: typer.Context,
        name: str = typer.Argument(..., help="VM name; anything after it goes to ssh"),
        resource_group: str | None = GROUP_OPTION,
        user: str | None = typer.Option(None, "--user", "-l", help="default: adminUsername"),
        identity: Path | None = typer.Option(None, "--identity", "-i", help="private key file"),
        data_dir: Path | None = DATA_DIR_OPTION,
    ) -> None:
        """SSH into the VM: at its public IP when it has one that lets port 22 in (as on
        Azure), else through its forwarded port on 127.0.0.1."""
        vm = find_vm(_data_dir(data_dir), name, resource_group)
        if not vm["running"]:
            raise InvalidArgument(f"VM {name} is not running", hint="start it first")
        login = user or vm.get("adminUsername")
        if not login:
            raise InvalidArgument(f"VM {name} has no admin user on record", hint="pass -l USER")
        host, port = ssh_endpoint(vm)
        argv = ["ssh", "-p", str(port)]
        # Each VM keeps its own known_hosts: ports are reused, host keys are per VM.
        argv += ["-o", f"UserKnownHostsFile={Path(vm['runtimeDir']) / 'known_hosts'}"]
        argv += ["-o", "StrictHostKeyChecking=accept-new"]
        if identity is not None:
            argv += ["-i", str(identity)]
        argv += [f"{login}@{host}", *ctx.args]
        try:
            os.execvp("ssh", argv)
        except FileNotFoundError:
            from azimg.errors import ToolMissing

            raise ToolMissing("ssh", "openssh-client") from None
