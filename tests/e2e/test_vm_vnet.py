"""The done-when of VNets with real packets, with three real cloud-init guests booted together.

Two VMs in one VNet reach each other at their private IPs (bash's /dev/tcp to port 22); a VM
in another VNet with the same address space cannot; ``ssh <admin>@<publicIp>`` works; a Deny
rule for 22 at a higher priority cuts it within 10 s and removing it restores it; inside the
guest ``ip addr`` shows the NIC's private IP and IMDS reports it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.network import models as m

from tests.api.conftest import PlatformServer, trusted
from tests.e2e.test_vm import LOCATION, _start_server, connection, publish_version, vm_body

pytestmark = pytest.mark.slow
TIMEOUT_S = 1500  # three TCG guests at once on a shared 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformServer]:
    assert os.geteuid() == 0, "VNets need root (CAP_NET_ADMIN), as the platform does"
    srv = _start_server(tmp_path_factory.mktemp("vnetvms"), TIMEOUT_S)
    with trusted(srv):
        yield srv


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("sshkey") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def ssh_argv(key: Path, host: str, port: int, command: str) -> list[str]:
    return [
        "ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
        "-o", "LogLevel=ERROR", f"opsadmin@{host}", command,
    ]  # fmt: skip


def run(key: Path, host: str, port: int, command: str, *, deadline_s: float = 300) -> str:
    deadline = time.monotonic() + deadline_s
    while True:
        proc = subprocess.run(ssh_argv(key, host, port, command), capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        if proc.returncode == 0:
            return proc.stdout
        if time.monotonic() > deadline:
            pytest.fail(f"ssh {host}:{port} {command!r} failed: {proc.stderr.strip()}")
        time.sleep(3)


def ssh_works(key: Path, host: str) -> bool:
    proc = subprocess.run(ssh_argv(key, host, 22, "true"), capture_output=True, timeout=60)
    return proc.returncode == 0


def rule(priority: int, access: str) -> Any:
    return m.SecurityRule(
        protocol="Tcp", access=access, direction="Inbound", priority=priority,
        source_address_prefix="*", source_port_range="*", destination_address_prefix="*",
        destination_port_range="22",
    )  # fmt: skip


def make_vnet(network: Any, group: str, name: str) -> str:
    """10.20.0.0/16 with one subnet; returns the subnet id (every VNet here overlaps)."""
    v = network.virtual_networks.begin_create_or_update(
        group, name,
        m.VirtualNetwork(location=LOCATION,
                         address_space=m.AddressSpace(address_prefixes=["10.20.0.0/16"]),
                         subnets=[m.Subnet(name="default", address_prefix="10.20.0.0/24")]),
    ).result()  # fmt: skip
    return str(v.subnets[0].id)


def make_nic(network: Any, group: str, name: str, subnet: str, nsg: str, pip: str | None) -> str:
    ipconfig = m.NetworkInterfaceIPConfiguration(
        name="ipconfig1", subnet=m.Subnet(id=subnet),
        public_ip_address=m.PublicIPAddress(id=pip) if pip else None,
    )  # fmt: skip
    n = network.network_interfaces.begin_create_or_update(
        group, name,
        m.NetworkInterface(location=LOCATION, ip_configurations=[ipconfig],
                           network_security_group=m.NetworkSecurityGroup(id=nsg)),
    ).result()  # fmt: skip
    return str(n.id)


def test_vms_on_vnets_with_real_packets(
    server: PlatformServer, built_image: Callable[..., Path], ssh_key: Path
) -> None:
    compute, network = server.compute_client(), server.network_client()
    group = f"rg-vnet-{uuid.uuid4().hex[:6]}"
    server.resource_client().resource_groups.create_or_update(group, {"location": LOCATION})
    version_id = publish_version(
        compute, group, built_image(generation="1", agent="cloud-init"), generation="V1"
    )
    nsg = network.network_security_groups.begin_create_or_update(
        group, "nsg", m.NetworkSecurityGroup(location=LOCATION, security_rules=[
            _named("default-allow-ssh", rule(1000, "Allow"))]),
    ).result()  # fmt: skip
    pip = network.public_ip_addresses.begin_create_or_update(
        group, "pip-a",
        m.PublicIPAddress(location=LOCATION, sku=m.PublicIPAddressSku(name="Standard"),
                          public_ip_allocation_method="Static"),
    ).result()  # fmt: skip
    s1, s2 = make_vnet(network, group, "vnet1"), make_vnet(network, group, "vnet2")
    nics = {
        "vm-a": make_nic(network, group, "nic-a", s1, nsg.id, pip.id),
        "vm-b": make_nic(network, group, "nic-b", s1, nsg.id, None),
        "vm-c": make_nic(network, group, "nic-c", s2, nsg.id, None),  # same addresses, vnet2
    }
    pollers = {}
    for name, nic_id in nics.items():
        body = vm_body(version_id, name, "opsadmin", ssh_key)
        body["properties"]["networkProfile"] = {"networkInterfaces": [{"id": nic_id}]}
        pollers[name] = compute.virtual_machines.begin_create_or_update(group, name, body)
    vms = {name: p.result() for name, p in pollers.items()}
    assert all(vm.provisioning_state == "Succeeded" for vm in vms.values())
    private = {
        name: network.network_interfaces.get(group, f"nic-{name[-1]}")
        .ip_configurations[0]
        .private_ip_address
        for name in vms
    }
    assert private == {"vm-a": "10.20.0.4", "vm-b": "10.20.0.5", "vm-c": "10.20.0.4"}
    # ssh to the public IP, as on Azure; the guest has the NIC's address and IMDS says so
    assert pip.ip_address
    addr = run(ssh_key, pip.ip_address, 22, "ip -4 -o addr show")
    assert "inet 10.20.0.4/24" in addr
    imds = (
        'python3 -c "import urllib.request as u; print(u.urlopen(u.Request('
        "'http://169.254.169.254/metadata/instance/network?api-version=2021-02-01', "
        "headers={'Metadata': 'true'})).read().decode())\""
    )
    meta = json.loads(run(ssh_key, pip.ip_address, 22, imds))
    ip4 = meta["interface"][0]["ipv4"]["ipAddress"][0]
    assert ip4 == {"privateIpAddress": "10.20.0.4", "publicIpAddress": pip.ip_address}
    # vm-a reaches vm-b at its private IP; vm-c (vnet2, same addresses) reaches no vm-b
    probe = "timeout 5 bash -c 'echo > /dev/tcp/10.20.0.5/22' && echo open || echo closed"
    assert run(ssh_key, pip.ip_address, 22, probe).strip() == "open"
    c_port = int(connection(server, vms["vm-c"].vm_id)["sshPort"])
    assert run(ssh_key, "127.0.0.1", c_port, probe).strip() == "closed"
    # a Deny for 22 at a higher priority cuts ssh to the public IP within 10 s; removing it
    # restores it
    network.security_rules.begin_create_or_update(
        group, "nsg", "deny-ssh", rule(900, "Deny")
    ).result()
    cut = time.monotonic()
    while ssh_works(ssh_key, pip.ip_address):
        assert time.monotonic() - cut < 10, "ssh still works 10 s after the Deny"
        time.sleep(0.5)
    network.security_rules.begin_delete(group, "nsg", "deny-ssh").result()
    back = time.monotonic()
    while not ssh_works(ssh_key, pip.ip_address):
        assert time.monotonic() - back < 30, "ssh did not come back after removing the Deny"
        time.sleep(0.5)
    for name in vms:
        compute.virtual_machines.begin_delete(group, name)
    server.resource_client().resource_groups.begin_delete(group).result()


def _named(name: str, r: Any) -> Any:
    r.name = name
    return r
