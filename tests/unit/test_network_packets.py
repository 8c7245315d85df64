"""From network resources to what the packet layer enforces (real SQLite store, no server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from azimg.fabric.network_nft import render
from azimg.platform.identity import SUBSCRIPTION_TYPE
from azimg.platform.network_errors import InvalidResourceReference, NicInUse, NicNotInVmLocation
from azimg.platform.resources import resource_groups
from azimg.platform.resources.network import network_interfaces as nics
from azimg.platform.resources.network import network_security_groups as nsgs
from azimg.platform.resources.network import packets, virtual_networks
from azimg.platform.resources.network import public_ip_addresses as pips
from azimg.platform.resources.network.network_security_groups import SecurityRuleSpec
from azimg.platform.settings import Settings
from azimg.platform.store import Document, Store, open_store

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg"
WHERE = {"subscription_id": SUB, "resource_group": RG}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(Settings(data_dir=tmp_path, regions=("eastus",)))
    s.meta.put(Document(id=f"/subscriptions/{SUB}", type=SUBSCRIPTION_TYPE, body={}))
    resource_groups.create_or_update(s, subscription_id=SUB, name=RG, location="eastus")
    yield s
    s.close()


def ssh(priority: int = 1000, access: str = "Allow") -> SecurityRuleSpec:
    return SecurityRuleSpec(
        name=f"r{priority}", protocol="Tcp", access=access, priority=priority,
        direction="Inbound", source_address_prefix="*", source_port_range="*",
        destination_address_prefix="*", destination_port_range="22",
    )  # fmt: skip


def make_nic(
    store: Store, *, sku: str = "Standard", rules: tuple[SecurityRuleSpec, ...] | None = None
) -> str:
    vnet, _ = virtual_networks.create_or_update(
        store, **WHERE, name="v",
        spec=virtual_networks.VirtualNetworkSpec(
            "eastus", ("10.1.0.0/16",), (virtual_networks.SubnetSpec("s", "10.1.0.0/24"),)
        ),
    )  # fmt: skip
    spec = pips.PublicIpSpec("eastus", sku=sku, allocation_method="Static")
    pip, _ = pips.create_or_update(store, **WHERE, name="p", spec=spec)
    nsg_id = None
    if rules is not None:
        nsg, _ = nsgs.create_or_update(store, **WHERE, name="n", location="eastus", rules=rules)
        nsg_id = nsg.id
    nic, _ = nics.create_or_update(
        store, **WHERE, name="nic",
        spec=nics.NetworkInterfaceSpec(
            "eastus",
            (nics.IpConfigSpec("ipc", vnet.subnet_id("s"), public_ip_id=pip.id),),
            nsg_id=nsg_id,
        ),
    )  # fmt: skip
    return nic.id


def test_plug_carries_address_mac_and_public_ip(store: Store) -> None:
    nic_id = make_nic(store)
    p = packets.plug(store, nic_id, endpoints={"imds": "/run/x.sock"})
    nic = nics.get_by_id(store, nic_id)
    assert str(p.port.address) == "10.1.0.4"
    assert str(p.port.subnet) == "10.1.0.0/24"
    assert p.port.mac == nic.mac_address.replace("-", ":").lower()
    assert p.imds_mac == nic.mac_address.replace("-", "")
    assert p.public_ip is not None and p.public_ip.startswith("127.100.")
    assert p.port.endpoints == {"imds": "/run/x.sock"}


def test_forward_ports_follow_the_nsg(store: Store) -> None:
    nic_id = make_nic(store, rules=(ssh(),))
    f = packets.forward(store, nic_id)
    assert f is not None and f.private_ip == "10.1.0.4"
    assert f.tcp_ports == ((22, 22),)
    # a higher-priority Deny for 22 closes it
    nsgs.create_or_update(
        store, **WHERE, name="n", location="eastus", rules=(ssh(), ssh(900, "Deny"))
    )
    f = packets.forward(store, nic_id)
    assert f is not None and f.tcp_ports == ()


def test_standard_without_nsg_is_closed_basic_is_open(store: Store) -> None:
    f = packets.forward(store, make_nic(store))
    assert f is not None and f.tcp_ports == ()


def test_basic_without_nsg_is_open(store: Store) -> None:
    f = packets.forward(store, make_nic(store, sku="Basic"))
    assert f is not None and f.tcp_ports == ((0, 65535),)


def test_port_policy_renders_the_nsg_with_defaults(store: Store) -> None:
    nic_id = make_nic(store, rules=(ssh(),))
    policy = packets.port_policy(store, nic_id)
    assert policy.address == "10.1.0.4"
    assert len(policy.inbound) == 1 and len(policy.outbound) == 1
    inbound = policy.inbound[0]
    assert inbound[0].allow and inbound[0].destination_ports == ((22, 22),)
    # AllowVnetInBound: the VNet's prefix and 168.63.129.16; DenyAllInBound last
    assert inbound[1].sources == ("10.1.0.0/16", "168.63.129.16/32")
    assert inbound[-1].allow is False and inbound[-1].sources == ()
    script = render([policy])
    assert "th dport 22 return" in script


def test_desired_groups_policies_by_vnet_and_skips_vanished_nics(store: Store) -> None:
    nic_id = make_nic(store, rules=(ssh(),))
    want = packets.desired(store, [nic_id, nic_id.replace("/nic", "/gone")])
    vnet = virtual_networks.get(store, **WHERE, name="v")
    assert list(want.policies) == [packets.vnet_key(vnet.id)]
    assert [p.address for p in want.policies[packets.vnet_key(vnet.id)]] == ["10.1.0.4"]
    assert [(f.private_ip, f.tcp_ports) for f in want.forwards] == [("10.1.0.4", ((22, 22),))]


VM = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/vm"


def test_vm_nic_references_checked_as_compute_does(store: Store) -> None:
    nic_id = make_nic(store)
    (ref,) = nics.check_for_vm(
        store, vm_id=VM, location="eastus", refs=(nics.VmNic(nic_id.upper()),)
    )
    assert ref == nics.VmNic(nic_id, True)  # canonical casing, the only NIC is primary
    with pytest.raises(InvalidResourceReference):
        nics.check_for_vm(store, vm_id=VM, location="eastus", refs=(nics.VmNic(nic_id + "x"),))
    with pytest.raises(NicNotInVmLocation):
        nics.check_for_vm(store, vm_id=VM, location="westus", refs=(nics.VmNic(nic_id),))
    nics.attach(store, nic_id=nic_id, vm_id=VM, primary=True)
    with pytest.raises(NicInUse):
        nics.check_for_vm(store, vm_id=VM + "2", location="eastus", refs=(nics.VmNic(nic_id),))
    with pytest.raises(NicInUse):  # and it cannot be deleted now
        nics.delete(store, **WHERE, name="nic")
    nics.detach(store, nic_id=nic_id)
    assert nics.delete(store, **WHERE, name="nic")


def test_imds_fields_of_the_primary_nic(store: Store) -> None:
    nic_id = make_nic(store)
    fields = packets.imds_fields(store, nic_id)
    nic = nics.get_by_id(store, nic_id)
    assert fields["private_ip"] == "10.1.0.4"
    assert fields["mac_address"] == nic.mac_address.replace("-", "")
    assert fields["public_ip"].startswith("127.100.")
    assert (fields["subnet_address"], fields["subnet_prefix"]) == ("10.1.0.0", "24")
