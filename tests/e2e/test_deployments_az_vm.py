"""`az vm create --attach-os-disk`, run by the real, unmodified az CLI: az looks up the group,
the VNets and the disk, then submits the VM as a template (VNet, NSG, public IP, NIC, VM) to
``Microsoft.Resources/deployments`` at api-version 2024-11-01, polls it, and reads the VM, NIC
and public IP back for its output (reference templates.md §4). The OS disk is a blank 1 GiB
disk: QEMU runs firmware only, so the test costs one short-lived guest and checks the control
plane, not a login (issue 12's SSH flow needs gallery images through az and is left for later).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.az import Az, login
from tests.api.conftest import PlatformServer, trusted
from tests.e2e.test_vm import _start_server

pytestmark = pytest.mark.slow


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
