"""`az vm create --attach-os-disk`, run by the real, unmodified az CLI: az looks up the group,
the VNets and the disk, then submits the VM as a template (VNet, NSG, public IP, NIC, VM) to
``Microsoft.Resources/deployments`` at api-version 2024-11-01, polls it, and reads the VM, NIC
and public IP back for its output (reference templates.md §4). The OS disk is a blank 1 GiB
disk: QEMU runs firmware only, so the test costs one short-lived guest and checks the control
plane, not a login (issue 12's SSH flow needs gallery images through az and is left for later).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.api.az import Az, login
from tests.api.conftest import PlatformServer, trusted
from tests.e2e.test_vm import _start_server

pytestmark = pytest.mark.slow
CHUNK = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformServer]:
    srv = _start_server(tmp_path_factory.mktemp("azvm"), 600)
    with trusted(srv):
        yield srv


@pytest.fixture(scope="module")
def az(server: PlatformServer, tmp_path_factory: pytest.TempPathFactory) -> Az:
    return login(server.info, tmp_path_factory.mktemp("azhome"))


def test_az_vm_create_attach_os_disk_through_a_deployment(az: Az, tmp_path: Path) -> None:
    az.json("group", "create", "-n", "rg-azvm", "-l", "eastus")
    az.json("disk", "create", "-g", "rg-azvm", "-n", "osd", "--size-gb", "1")
    vm = az.json(
        "vm", "create", "-g", "rg-azvm", "-n", "vm1", "--attach-os-disk", "osd",
        "--os-type", "linux",
    )  # fmt: skip
    assert vm["powerState"] == "VM running"
    assert vm["privateIpAddress"] == "10.0.0.4" and vm["publicIpAddress"]
    assert vm["macAddress"].count("-") == 5

    (deployment,) = az.json("deployment", "group", "list", "-g", "rg-azvm")
    assert deployment["name"].startswith("vm_deploy_")
    assert deployment["properties"]["provisioningState"] == "Succeeded"
    ops = az.json(
        "deployment", "operation", "group", "list", "-g", "rg-azvm", "-n", deployment["name"]
    )
    created = {
        o["properties"]["targetResource"]["resourceType"]: o["properties"]["provisioningState"]
        for o in ops
    }
    assert created == {
        "Microsoft.Network/virtualNetworks": "Succeeded",
        "Microsoft.Network/networkSecurityGroups": "Succeeded",
        "Microsoft.Network/publicIPAddresses": "Succeeded",
        "Microsoft.Network/networkInterfaces": "Succeeded",
        "Microsoft.Compute/virtualMachines": "Succeeded",
    }
    shown = az.json("vm", "show", "-d", "-g", "rg-azvm", "-n", "vm1")
    assert shown["publicIps"] == vm["publicIpAddress"]

    az.run("vm", "delete", "-g", "rg-azvm", "-n", "vm1", "--yes")
    az.run("group", "delete", "-n", "rg-azvm", "--yes")


def _ssh(host: str, key: Path, command: str, *, deadline_s: float = 240) -> str:
    """``command`` over SSH to ``host``:22, retrying until sshd answers (or the deadline)."""
    argv = [
        "ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
        "-o", "LogLevel=ERROR", f"azureuser@{host}", command,
    ]  # fmt: skip
    deadline = time.monotonic() + deadline_s
    while True:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if proc.returncode == 0:
            return proc.stdout
        if time.monotonic() > deadline:
            pytest.fail(f"ssh {command!r} to {host} failed: {proc.stderr.strip()}")
        time.sleep(3)


def test_az_flow_from_upload_to_ssh(
    az: Az, built_image: Callable[..., Path], tmp_path: Path
) -> None:
    """Issue 12's first "done when" line, with the upload through azure-storage-blob (az's own
    `storage blob upload --type page` is issue 12 item 5)."""
    from azure.storage.blob import BlobClient

    vhd = built_image(generation="1", agent="cloud-init")
    size = vhd.stat().st_size
    rg = "rg-azflow"
    az.json("group", "create", "-n", rg, "-l", "eastus")
    az.json(
        "disk", "create", "-g", rg, "-n", "src", "--upload-type", "Upload",
        "--upload-size-bytes", str(size), "--os-type", "Linux", "--hyper-v-generation", "V1",
    )  # fmt: skip
    access = az.json(
        "disk", "grant-access", "-g", rg, "-n", "src", "--access-level", "Write",
        "--duration-in-seconds", "3600",
    )  # fmt: skip
    sas = next(v for k, v in access.items() if k.lower() == "accesssas")
    blob = BlobClient.from_blob_url(sas)
    with vhd.open("rb") as fh:
        for off in range(0, size, CHUNK):
            chunk = fh.read(CHUNK)
            if any(chunk):
                blob.upload_page(chunk, offset=off, length=len(chunk))
    az.run("disk", "revoke-access", "-g", rg, "-n", "src")
    image = az.json(
        "image", "create", "-g", rg, "-n", "img", "--source", "src", "--os-type", "linux",
        "--hyper-v-generation", "V1",
    )  # fmt: skip
    az.json("sig", "create", "-g", rg, "-r", "gal")
    az.json(
        "sig", "image-definition", "create", "-g", rg, "-r", "gal", "-i", "debian",
        "-p", "azimg", "-f", "debian-12", "-s", "12", "--os-type", "linux",
        "--hyper-v-generation", "V1",
    )  # fmt: skip
    version = az.json(
        "sig", "image-version", "create", "-g", rg, "-r", "gal", "-i", "debian", "-e", "1.0.0",
        "--managed-image", image["id"],
    )  # fmt: skip
    vm = az.json(
        "vm", "create", "-g", rg, "-n", "azvm1", "--image", version["id"],
        "--admin-username", "azureuser", "--generate-ssh-keys", "--size", "Standard_B1s",
    )  # fmt: skip
    assert vm["powerState"] == "VM running" and vm["publicIpAddress"]
    key = az.cwd / ".ssh" / "id_rsa"
    assert _ssh(vm["publicIpAddress"], key, "hostname").strip() == "azvm1"
    az.run("vm", "deallocate", "-g", rg, "-n", "azvm1")
    shown = az.json("vm", "get-instance-view", "-g", rg, "-n", "azvm1")
    codes = [s["code"] for s in shown["instanceView"]["statuses"]]
    assert "PowerState/deallocated" in codes
    az.run("group", "delete", "-n", rg, "--yes")
