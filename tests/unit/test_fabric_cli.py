"""`azimg vm list|console|ssh` over a data directory laid out as the fabric writes it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from azimg.cli.vm import ssh_endpoint


def make_vm_dir(data: Path, uid: str, *, name: str, group: str, running: bool) -> Path:
    rundir = data / "fabric" / uid
    rundir.mkdir(parents=True)
    serial = data / f"serial-{uid}.log"
    serial.write_bytes(f"Linux version 6.1 on {name}\n".encode())
    (rundir / "connection.json").write_text(
        json.dumps(
            {
                "id": f"/subscriptions/s/resourceGroups/{group}/providers/"
                f"Microsoft.Compute/virtualMachines/{name}",
                "name": name,
                "resourceGroup": group,
                "sshPort": 40022,
                "adminUsername": "opsadmin",
                "serialLog": str(serial),
            }
        )
    )
    if running:
        (rundir / "vmhost.pid").write_text('{"pid": 1}')
    return rundir


def azimg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", "vm", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    make_vm_dir(tmp_path, "a", name="web", group="rg1", running=True)
    make_vm_dir(tmp_path, "b", name="db", group="rg1", running=False)
    make_vm_dir(tmp_path, "c", name="db", group="rg2", running=True)
    return tmp_path


def test_list_as_json(data: Path) -> None:
    out = azimg("list", "--data-dir", str(data), "-o", "json")
    assert out.returncode == 0
    vms = json.loads(out.stdout)
    assert sorted((v["name"], v["resourceGroup"], v["running"]) for v in vms) == [
        ("db", "rg1", False),
        ("db", "rg2", True),
        ("web", "rg1", True),
    ]


def test_console_prints_the_serial_log(data: Path) -> None:
    out = azimg("console", "WEB", "--data-dir", str(data))
    assert (out.returncode, out.stdout) == (0, "Linux version 6.1 on web\n")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["console", "nope"], "no VM named 'nope'"),
        (["console", "db"], "several VMs are named 'db'"),
        (["ssh", "db", "-g", "rg1"], "VM db is not running"),
    ],
)
def test_errors_are_one_line_exit_2(data: Path, args: list[str], words: str) -> None:
    out = azimg(*args, "--data-dir", str(data))
    assert out.returncode == 2
    assert words in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_ssh_prefers_a_public_ip_that_lets_22_in() -> None:
    """`azimg vm ssh` goes to the public IP when port 22 answers there, else the forwarded
    port (needs root to listen on port 22, as the platform's VNets need root anyway)."""
    vm = {"sshPort": 40022, "publicIp": "127.100.255.254"}
    assert ssh_endpoint(vm) == ("127.0.0.1", 40022)  # nothing listens there: refused
    assert ssh_endpoint({"sshPort": 40022}) == ("127.0.0.1", 40022)
    with socket.socket() as s:
        s.bind(("127.100.255.254", 22))
        s.listen(1)
        assert ssh_endpoint(vm) == ("127.100.255.254", 22)
