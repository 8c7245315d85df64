# ruff: noqa: E501  (templates written out as JSON, one expression per line)
"""`az vm create --attach-os-disk`, run by the real, unmodified az CLI: az looks up the group,
the VNets and the disk, then submits the VM as a template (VNet, NSG, public IP, NIC, VM) to
``Microsoft.Resources/deployments`` at api-version 2024-11-01, polls it, and reads the VM, NIC
and public IP back for its output (reference templates.md §4). The OS disk is a blank 1 GiB
disk: QEMU runs firmware only, so the test costs one short-lived guest and checks the control
plane, not a login (issue 12's SSH flow needs gallery images through az and is left for later).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def _publish(az: Az, rg: str, vhd: Path) -> str:
    """VHD → Upload disk → managed image → gallery, definition, version 1.0.0, all through az
    (the bytes through azure-storage-blob, as az's own `storage blob upload --type page` is
    issue 12 item 5); the version's id."""
    from azure.storage.blob import BlobClient

    size = vhd.stat().st_size
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
    return str(version["id"])


def test_az_flow_from_upload_to_ssh(az: Az, built_image: Callable[..., Path]) -> None:
    """Issue 12's first "done when" line."""
    rg = "rg-azflow"
    version_id = _publish(az, rg, built_image(generation="1", agent="cloud-init"))
    vm = az.json(
        "vm", "create", "-g", rg, "-n", "azvm1", "--image", version_id,
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


def two_vm_template() -> dict[str, Any]:
    """Issue 12's second "done when" template: parameters, variables, a copy loop of two VMs
    with NICs and public IPs in one VNet (serial, so one guest boots at a time), a nested
    deployment, outputs."""
    nic_id = "[resourceId('Microsoft.Network/networkInterfaces', concat('nic', copyIndex()))]"
    pip_id = "[resourceId('Microsoft.Network/publicIPAddresses', concat('pip', copyIndex()))]"
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "imageId": {"type": "string"},
            "sshKey": {"type": "securestring"},
            "count": {"type": "int", "defaultValue": 2, "minValue": 1, "maxValue": 2},
            "adminUsername": {"type": "string", "defaultValue": "azureuser"},
        },
        "variables": {
            "subnetId": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]",
            "prefix": "tplvm",
        },
        "resources": [
            {
                "type": "Microsoft.Network/virtualNetworks",
                "apiVersion": "2022-01-01",
                "name": "vnet",
                "location": "[resourceGroup().location]",
                "properties": {
                    "addressSpace": {"addressPrefixes": ["10.2.0.0/16"]},
                    "subnets": [
                        {"name": "default", "properties": {"addressPrefix": "10.2.0.0/24"}}
                    ],
                },
            },
            {
                "type": "Microsoft.Network/networkSecurityGroups",
                "apiVersion": "2022-01-01",
                "name": "nsg",
                "location": "[resourceGroup().location]",
                "properties": {
                    "securityRules": [
                        {
                            "name": "ssh",
                            "properties": {
                                "priority": 1000,
                                "protocol": "Tcp",
                                "access": "Allow",
                                "direction": "Inbound",
                                "sourceAddressPrefix": "*",
                                "sourcePortRange": "*",
                                "destinationAddressPrefix": "*",
                                "destinationPortRange": "22",
                            },
                        }
                    ]
                },
            },
            {
                "type": "Microsoft.Network/publicIPAddresses",
                "apiVersion": "2022-01-01",
                "name": "[concat('pip', copyIndex())]",
                "location": "[resourceGroup().location]",
                "copy": {"name": "pips", "count": "[parameters('count')]"},
                "sku": {"name": "Standard"},
                "properties": {"publicIPAllocationMethod": "Static"},
            },
            {
                "type": "Microsoft.Network/networkInterfaces",
                "apiVersion": "2022-01-01",
                "name": "[concat('nic', copyIndex())]",
                "location": "[resourceGroup().location]",
                "copy": {"name": "nics", "count": "[parameters('count')]"},
                "dependsOn": ["vnet", "nsg", pip_id],
                "properties": {
                    "ipConfigurations": [
                        {
                            "name": "ipconfig1",
                            "properties": {
                                "subnet": {"id": "[variables('subnetId')]"},
                                "publicIPAddress": {"id": pip_id},
                            },
                        }
                    ],
                    "networkSecurityGroup": {
                        "id": "[resourceId('Microsoft.Network/networkSecurityGroups', 'nsg')]"
                    },
                },
            },
            {
                "type": "Microsoft.Compute/virtualMachines",
                "apiVersion": "2024-11-01",
                "name": "[concat(variables('prefix'), copyIndex())]",
                "location": "[resourceGroup().location]",
                "copy": {
                    "name": "vms",
                    "count": "[parameters('count')]",
                    "mode": "serial",
                    "batchSize": 1,
                },
                "dependsOn": [nic_id],
                "properties": {
                    "hardwareProfile": {"vmSize": "Standard_B1s"},
                    "storageProfile": {
                        "imageReference": {"id": "[parameters('imageId')]"},
                        "osDisk": {
                            "createOption": "FromImage",
                            "managedDisk": {"storageAccountType": "Standard_LRS"},
                        },
                    },
                    "osProfile": {
                        "computerName": "[concat(variables('prefix'), copyIndex())]",
                        "adminUsername": "[parameters('adminUsername')]",
                        "linuxConfiguration": {
                            "disablePasswordAuthentication": True,
                            "ssh": {
                                "publicKeys": [
                                    {
                                        "path": "[format('/home/{0}/.ssh/authorized_keys', parameters('adminUsername'))]",
                                        "keyData": "[parameters('sshKey')]",
                                    }
                                ]
                            },
                        },
                    },
                    "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
                },
            },
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "summary",
                "dependsOn": ["vms"],
                "properties": {
                    "mode": "Incremental",
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "parameters": {"n": {"value": "[parameters('count')]"}},
                    "template": {
                        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                        "contentVersion": "1.0.0.0",
                        "parameters": {"n": {"type": "int"}},
                        "resources": [],
                        "outputs": {
                            "vms": {
                                "type": "string",
                                "value": "[format('{0} VMs', parameters('n'))]",
                            }
                        },
                    },
                },
            },
        ],
        "outputs": {
            "ips": {
                "type": "array",
                "copy": {
                    "count": "[parameters('count')]",
                    "input": "[reference(resourceId('Microsoft.Network/publicIPAddresses', concat('pip', copyIndex())), '2022-01-01').ipAddress]",
                },
            },
            "summary": {"type": "string", "value": "[reference('summary').outputs.vms.value]"},
        },
    }


def test_two_vm_template_with_az_deployment_group_create(
    az: Az, built_image: Callable[..., Path], tmp_path: Path
) -> None:
    """Issue 12's second "done when" line: both VMs answer SSH at the outputs' public IPs."""
    rg = "rg-aztpl"
    version_id = _publish(az, rg, built_image(generation="1", agent="cloud-init"))
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    template = tmp_path / "vms.json"
    template.write_text(json.dumps(two_vm_template(), indent=2))
    params = tmp_path / "vms.parameters.json"
    params.write_text(
        json.dumps(
            {
                "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
                "contentVersion": "1.0.0.0",
                "parameters": {
                    "imageId": {"value": version_id},
                    "sshKey": {"value": key.with_suffix(".pub").read_text().strip()},
                },
            }
        )
    )
    out = az.json(
        "deployment", "group", "create", "-g", rg, "-n", "vms", "-f", str(template),
        "-p", f"@{params}",
    )  # fmt: skip
    props = out["properties"]
    assert props["provisioningState"] == "Succeeded"
    assert props["outputs"]["summary"]["value"] == "2 VMs"
    assert "value" not in props["parameters"]["sshKey"]  # secure: never echoed
    ips = props["outputs"]["ips"]["value"]
    assert len(ips) == 2 and len(set(ips)) == 2
    for i, ip in enumerate(ips):
        assert _ssh(ip, key, "hostname").strip() == f"tplvm{i}"
    az.run("group", "delete", "-n", rg, "--yes")
