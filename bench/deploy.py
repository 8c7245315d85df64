# ruff: noqa: E501  (resource bodies written out whole)
"""Template deployment overhead: a 6-resource template vs the same resources created directly.

Run: .venv/bin/python bench/deploy.py [--rounds 5]

Both sides create the same six resources (NSG, VNet, subnet, public IP, NIC, a 1 GiB Empty
disk; everything a VM template has except the guest boot) in a fresh resource group of one
``azimg serve``:
  * template: ``deployments.begin_create_or_update(...).result()`` (azure-mgmt-resource-
    deployments): validation, the job, one HTTPS PUT per resource through the platform's own
    endpoint, the waves the dependency graph allows, outputs, and the client's polling;
  * direct (the peer): the SDK calls a script would make, one ``begin_create_or_update`` after
    another in dependency order, each awaited.
Rounds are interleaved (template, direct, template, ...) so load on this shared 2-core machine
hits both alike; the medians and the ratio template/direct are printed, with the load average.
The issue's second number (``az vm create`` vs a direct SDK create) needs ``az vm create``
to work end to end, which it does not yet.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCOPE = "https://management.core.windows.net//.default"
NET_API = "2022-01-01"
DISK_API = "2023-04-02"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    cmd = [sys.executable, "-m", "azimg.cli.main", "serve", "--data-dir", str(data_dir)]
    cmd += ["--port", str(port), "-o", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines = []
    while (line := proc.stdout.readline()) and line.rstrip() != "}":
        lines.append(line)
    info = json.loads("".join([*lines, "}"]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, info
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("azimg serve did not listen in time")


def rid(sub: str, rg: str, rtype: str, *names: str) -> str:
    ns, *types = rtype.split("/")
    parts = [p for pair in zip(types, names, strict=True) for p in pair]
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/" + "/".join(parts)


def template() -> dict[str, Any]:
    loc = "[resourceGroup().location]"
    subnet = "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]"
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Network/networkSecurityGroups",
                "apiVersion": NET_API,
                "name": "nsg",
                "location": loc,
                "properties": {"securityRules": []},
            },
            {
                "type": "Microsoft.Network/virtualNetworks",
                "apiVersion": NET_API,
                "name": "vnet",
                "location": loc,
                "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}},
            },
            {
                "type": "Microsoft.Network/virtualNetworks/subnets",
                "apiVersion": NET_API,
                "name": "vnet/default",
                "dependsOn": ["vnet"],
                "properties": {"addressPrefix": "10.0.0.0/24"},
            },
            {
                "type": "Microsoft.Network/publicIPAddresses",
                "apiVersion": NET_API,
                "name": "pip",
                "location": loc,
                "sku": {"name": "Standard"},
                "properties": {"publicIPAllocationMethod": "Static"},
            },
            {
                "type": "Microsoft.Network/networkInterfaces",
                "apiVersion": NET_API,
                "name": "nic",
                "location": loc,
                "dependsOn": ["nsg", subnet, "pip"],
                "properties": {
                    "ipConfigurations": [
                        {
                            "name": "ipconfig1",
                            "properties": {
                                "subnet": {"id": subnet},
                                "publicIPAddress": {
                                    "id": "[resourceId('Microsoft.Network/publicIPAddresses', 'pip')]"
                                },
                            },
                        }
                    ],
                    "networkSecurityGroup": {
                        "id": "[resourceId('Microsoft.Network/networkSecurityGroups', 'nsg')]"
                    },
                },
            },
            {
                "type": "Microsoft.Compute/disks",
                "apiVersion": DISK_API,
                "name": "disk",
                "location": loc,
                "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
            },
        ],
    }


def direct(clients: dict[str, Any], sub: str, rg: str) -> None:
    """The same six bodies as the template's, as REST JSON (the SDKs send dicts as given)."""
    net, compute = clients["network"], clients["compute"]
    loc = "eastus"
    net.network_security_groups.begin_create_or_update(
        rg, "nsg", {"location": loc, "properties": {"securityRules": []}}
    ).result()
    net.virtual_networks.begin_create_or_update(
        rg,
        "vnet",
        {"location": loc, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}},
    ).result()
    net.subnets.begin_create_or_update(
        rg, "vnet", "default", {"properties": {"addressPrefix": "10.0.0.0/24"}}
    ).result()
    net.public_ip_addresses.begin_create_or_update(
        rg,
        "pip",
        {
            "location": loc,
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static"},
        },
    ).result()
    subnet = rid(sub, rg, "Microsoft.Network/virtualNetworks/subnets", "vnet", "default")
    pip = rid(sub, rg, "Microsoft.Network/publicIPAddresses", "pip")
    nsg = rid(sub, rg, "Microsoft.Network/networkSecurityGroups", "nsg")
    net.network_interfaces.begin_create_or_update(
        rg,
        "nic",
        {
            "location": loc,
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ipconfig1",
                        "properties": {"subnet": {"id": subnet}, "publicIPAddress": {"id": pip}},
                    }
                ],
                "networkSecurityGroup": {"id": nsg},
            },
        },
    ).result()
    compute.disks.begin_create_or_update(
        rg,
        "disk",
        {
            "location": loc,
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        },
    ).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from azure.identity import ClientSecretCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    with tempfile.TemporaryDirectory(prefix="azimg-bench-deploy-") as tmp:
        port = free_port()
        proc, info = start_server(Path(tmp) / "data", port)
        try:
            os.environ["REQUESTS_CA_BUNDLE"] = info["REQUESTS_CA_BUNDLE"]
            base = f"https://127.0.0.1:{port}"
            cred = ClientSecretCredential(
                info["AZURE_TENANT_ID"],
                info["AZURE_CLIENT_ID"],
                info["AZURE_CLIENT_SECRET"],
                authority=base,
                disable_instance_discovery=True,
            )
            sub = info["AZURE_SUBSCRIPTION_ID"]
            kw = {"base_url": base, "credential_scopes": [SCOPE]}
            clients = {
                "network": NetworkManagementClient(cred, sub, **kw),
                "compute": ComputeManagementClient(cred, sub, **kw),
                "deployments": DeploymentsMgmtClient(cred, sub, **kw),
                "resources": ResourceManagementClient(cred, sub, **kw),
            }
            body = {"properties": {"mode": "Incremental", "template": template()}}
            times: dict[str, list[float]] = {"template": [], "direct": []}
            server: list[float] = []
            print(f"load average before: {os.getloadavg()[0]:.2f}")
            for _ in range(args.rounds):
                for side in ("template", "direct"):
                    rg = f"bench-{uuid.uuid4().hex[:8]}"
                    clients["resources"].resource_groups.create_or_update(
                        rg, {"location": "eastus"}
                    )
                    start = time.perf_counter()
                    if side == "template":
                        result = (
                            clients["deployments"]
                            .deployments.begin_create_or_update(rg, "bench", body)
                            .result()
                        )
                        assert result.properties.provisioning_state == "Succeeded"
                        server.append(float(result.properties.duration[2:-1]))
                    else:
                        direct(clients, sub, rg)
                    times[side].append(time.perf_counter() - start)
            print(f"load average after: {os.getloadavg()[0]:.2f}")
            t, d = statistics.median(times["template"]), statistics.median(times["direct"])
            print(f"6 resources, {args.rounds} rounds each, medians:")
            print(f"  template deployment : {t:6.2f} s  {[round(x, 2) for x in times['template']]}")
            print(f"  direct SDK creates  : {d:6.2f} s  {[round(x, 2) for x in times['direct']]}")
            print(f"  ratio template/direct: {t / d:.2f}  (overhead {t - d:+.2f} s)")
            srv = statistics.median(server)
            print(
                f"  of which the deployment itself (its recorded duration, Accepted to "
                f"Succeeded): {srv:.2f} s; the rest is the client's first poll after "
                "Retry-After: 1"
            )
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
