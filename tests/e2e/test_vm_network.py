"""VMs on their NICs, with a tiny specialized image that never boots an OS (QEMU runs
firmware; iPXE asks our DHCP for an address through the VM's tap).

Through the real SDKs: one VM per NIC (``NicInUse``), the NIC's ``virtualMachine``
back-reference, the tap with the NIC's MAC instead of slirp, IMDS ``network`` reporting the
NIC's private and public address and MAC, and the host-side public-IP table following an NSG
Deny within seconds. Needs root (the VNet fabric), as the platform does for VNets.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.network import models as m

from tests.api.conftest import PlatformServer, trusted
from tests.e2e.test_vm import LOCATION, _start_server, publish_version
from tests.e2e.test_vm_api import from_image, tiny_vhd  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformServer]:
    assert os.geteuid() == 0, "VNets need root (CAP_NET_ADMIN), as the platform does"
    srv = _start_server(tmp_path_factory.mktemp("vmnet"), 600)
    with trusted(srv):
        yield srv


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def imds(vmhost_json: Path) -> dict[str, Any]:
    """IMDS as the VM's guest would get it (its Unix socket, which the VNet relays to)."""
    conn = _UnixHTTP(json.loads(vmhost_json.read_text())["sockets"]["imds"])
    conn.request("GET", "/metadata/instance?api-version=2021-02-01", headers={"Metadata": "true"})
    return json.loads(conn.getresponse().read())


def pip_table(server: PlatformServer) -> str:
    """This server's host-side public-IP table (its tag: compute/controller._vnet_fabric)."""
    root = (server.data_dir / "fabric").resolve()
    table = "azimg_pip_" + hashlib.sha256(str(root).encode()).hexdigest()[:6]
    out = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_vm_on_its_nic(server: PlatformServer, tiny_vhd: Path) -> None:  # noqa: F811
    compute, network = server.compute_client(), server.network_client()
    group = f"rg-vmnet-{uuid.uuid4().hex[:6]}"
    server.resource_client().resource_groups.create_or_update(group, {"location": LOCATION})
    version_id = publish_version(compute, group, tiny_vhd, generation="V1", os_state="Specialized")
    vnet = network.virtual_networks.begin_create_or_update(
        group, "vnet1",
        m.VirtualNetwork(location=LOCATION,
                         address_space=m.AddressSpace(address_prefixes=["10.7.0.0/16"]),
                         subnets=[m.Subnet(name="s1", address_prefix="10.7.0.0/24")]),
    ).result()  # fmt: skip
    nsg = network.network_security_groups.begin_create_or_update(
        group, "nsg1",
        m.NetworkSecurityGroup(location=LOCATION, security_rules=[m.SecurityRule(
            name="ssh", protocol="Tcp", access="Allow", direction="Inbound", priority=1000,
            source_address_prefix="*", source_port_range="*", destination_address_prefix="*",
            destination_port_range="22")]),
    ).result()  # fmt: skip
    pip = network.public_ip_addresses.begin_create_or_update(
        group, "pip1",
        m.PublicIPAddress(location=LOCATION, sku=m.PublicIPAddressSku(name="Standard"),
                          public_ip_allocation_method="Static"),
    ).result()  # fmt: skip
    nic = network.network_interfaces.begin_create_or_update(
        group, "nic1",
        m.NetworkInterface(location=LOCATION,
                           network_security_group=m.NetworkSecurityGroup(id=nsg.id),
                           ip_configurations=[m.NetworkInterfaceIPConfiguration(
                               name="ipconfig1", subnet=m.Subnet(id=vnet.subnets[0].id),
                               public_ip_address=m.PublicIPAddress(id=pip.id))]),
    ).result()  # fmt: skip
    body = from_image(version_id, deleteOption="Delete")
    body["properties"]["networkProfile"] = {"networkInterfaces": [{"id": nic.id}]}
    vm = compute.virtual_machines.begin_create_or_update(group, "vm-net", body).result()
    assert vm.network_profile.network_interfaces[0].id == nic.id
    # the NIC knows its VM; it can neither be deleted nor serve a second VM
    assert network.network_interfaces.get(group, "nic1").virtual_machine.id == vm.id
    with pytest.raises(HttpResponseError) as err:
        network.network_interfaces.begin_delete(group, "nic1").result()
    assert err.value.error.code == "NicInUse"
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machines.begin_create_or_update(group, "vm-thief", body).result()
    assert err.value.error.code == "NicInUse"
    # the VM's NIC is a tap with the NIC's MAC, not slirp
    host = server.data_dir / "fabric" / vm.vm_id / "vmhost.json"
    argv = " ".join(json.loads(host.read_text())["qemu_argv"])
    guest_mac = nic.mac_address.replace("-", ":").lower()
    assert f"mac={guest_mac}" in argv and "tap,id=n0,fd=" in argv and "user,id=n0" not in argv
    # IMDS reports the NIC
    iface = imds(host)["network"]["interface"][0]
    assert iface["macAddress"] == nic.mac_address.replace("-", "")
    assert iface["ipv4"]["ipAddress"][0] == {
        "privateIpAddress": "10.7.0.4", "publicIpAddress": pip.ip_address,
    }  # fmt: skip
    assert iface["ipv4"]["subnet"][0] == {"address": "10.7.0.0", "prefix": "24"}
    # the public IP lets 22 in while the NSG allows it, and not once a Deny comes first
    assert f"{pip.ip_address} . 22" in pip_table(server)
    network.security_rules.begin_create_or_update(
        group, "nsg1", "deny-ssh",
        m.SecurityRule(protocol="Tcp", access="Deny", direction="Inbound", priority=900,
                       source_address_prefix="*", source_port_range="*",
                       destination_address_prefix="*", destination_port_range="22"),
    ).result()  # fmt: skip
    deadline = time.monotonic() + 30  # the 10 s bound under three guests: test_vm_vnet.py
    while f"{pip.ip_address} . 22" in pip_table(server):
        assert time.monotonic() < deadline, "the Deny did not reach the public IP"
        time.sleep(0.2)
    # deleting the VM frees the NIC
    compute.virtual_machines.begin_delete(group, "vm-net").result()
    assert network.network_interfaces.get(group, "nic1").virtual_machine is None
    network.network_interfaces.begin_delete(group, "nic1").result()
    server.resource_client().resource_groups.begin_delete(group).result()


def test_a_basic_dynamic_public_ip_lives_while_its_vm_is_allocated(
    server: PlatformServer,
    tiny_vhd: Path,  # noqa: F811
) -> None:
    """Azure §4.2: no address until the VM runs, released on deallocate, back on start."""
    compute, network = server.compute_client(), server.network_client()
    group = f"rg-dyn-{uuid.uuid4().hex[:6]}"
    server.resource_client().resource_groups.create_or_update(group, {"location": LOCATION})
    version_id = publish_version(compute, group, tiny_vhd, generation="V1", os_state="Specialized")
    vnet = network.virtual_networks.begin_create_or_update(
        group, "v",
        m.VirtualNetwork(location=LOCATION,
                         address_space=m.AddressSpace(address_prefixes=["10.8.0.0/16"]),
                         subnets=[m.Subnet(name="s", address_prefix="10.8.0.0/24")]),
    ).result()  # fmt: skip
    pip = network.public_ip_addresses.begin_create_or_update(
        group, "dyn",
        m.PublicIPAddress(location=LOCATION, sku=m.PublicIPAddressSku(name="Basic"),
                          public_ip_allocation_method="Dynamic"),
    ).result()  # fmt: skip
    assert pip.ip_address is None
    nic = network.network_interfaces.begin_create_or_update(
        group, "n",
        m.NetworkInterface(location=LOCATION, ip_configurations=[m.NetworkInterfaceIPConfiguration(
            name="ipconfig1", subnet=m.Subnet(id=vnet.subnets[0].id),
            public_ip_address=m.PublicIPAddress(id=pip.id))]),
    ).result()  # fmt: skip
    body = from_image(version_id, deleteOption="Delete")
    body["properties"]["networkProfile"] = {"networkInterfaces": [{"id": nic.id}]}
    compute.virtual_machines.begin_create_or_update(group, "vm-dyn", body).result()
    running = network.public_ip_addresses.get(group, "dyn").ip_address
    assert running is not None and running.startswith("127.100.")
    compute.virtual_machines.begin_deallocate(group, "vm-dyn").result()
    assert network.public_ip_addresses.get(group, "dyn").ip_address is None
    compute.virtual_machines.begin_start(group, "vm-dyn").result()
    assert network.public_ip_addresses.get(group, "dyn").ip_address is not None
    compute.virtual_machines.begin_delete(group, "vm-dyn").result()
    server.resource_client().resource_groups.begin_delete(group).result()
