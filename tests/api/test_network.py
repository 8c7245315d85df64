"""Microsoft.Network through the real azure-mgmt-network SDK: VNets and subnets, NICs, public
IPs, NSGs and their rules, with Azure's validation rules and error codes
(reference/network.md §2-§6). One test per rule, each asserting the code Azure sends."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import models as m

LOC = "eastus"


def _code(err: pytest.ExceptionInfo[HttpResponseError]) -> str:
    return err.value.error.code  # type: ignore[union-attr]


def vnet(
    network: Any,
    rg: str,
    name: str = "vnet1",
    *,
    prefixes: tuple[str, ...] = ("10.1.0.0/16",),
    subnets: tuple[tuple[str, str], ...] = (("s1", "10.1.0.0/24"),),
    **props: Any,
) -> Any:
    body = m.VirtualNetwork(
        location=LOC,
        address_space=m.AddressSpace(address_prefixes=list(prefixes)),
        subnets=[m.Subnet(name=n, address_prefix=p) for n, p in subnets],
        **props,
    )
    return network.virtual_networks.begin_create_or_update(rg, name, body).result()


def nic(network: Any, rg: str, subnet_id: str, name: str = "nic1", **ipconfig: Any) -> Any:
    body = m.NetworkInterface(
        location=LOC,
        ip_configurations=[
            m.NetworkInterfaceIPConfiguration(
                name="ipconfig1", subnet=m.Subnet(id=subnet_id), **ipconfig
            )
        ],
    )
    return network.network_interfaces.begin_create_or_update(rg, name, body).result()


def pip_body(**kw: Any) -> Any:
    sku = kw.pop("sku", None)
    label = kw.pop("label", None)
    return m.PublicIPAddress(
        location=LOC,
        sku=m.PublicIPAddressSku(name=sku) if sku else None,
        dns_settings=m.PublicIPAddressDnsSettings(domain_name_label=label) if label else None,
        **kw,
    )


def _named(name: str, r: Any) -> Any:
    r.name = name
    return r


def nsg_body(*rules: tuple[str, Any]) -> Any:
    return m.NetworkSecurityGroup(
        location=LOC,
        security_rules=[_named(n, r) for n, r in rules] if rules else None,
    )


def rule(priority: int = 100, **over: Any) -> dict[str, Any]:
    body = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": priority,
        "source_address_prefix": "*",
        "source_port_range": "*",
        "destination_address_prefix": "*",
        "destination_port_range": "22",
    }
    body.update(over)
    return m.SecurityRule(**{k: v for k, v in body.items() if v is not None})


# --- virtual networks and subnets -------------------------------------------------------------


def test_vnet_create_get_list_delete(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group, dhcp_options=m.DhcpOptions(dns_servers=["10.1.0.53"]))
    assert v.provisioning_state == "Succeeded"
    assert v.address_space.address_prefixes == ["10.1.0.0/16"]
    assert [s.name for s in v.subnets] == ["s1"]
    assert v.subnets[0].id == f"{v.id}/subnets/s1"
    assert v.etag.startswith('W/"')
    got = network.virtual_networks.get(resource_group, "vnet1")
    assert got.resource_guid == v.resource_guid
    assert got.dhcp_options.dns_servers == ["10.1.0.53"]
    assert [x.name for x in network.virtual_networks.list(resource_group)] == ["vnet1"]
    assert "vnet1" in [x.name for x in network.virtual_networks.list_all()]
    network.virtual_networks.begin_delete(resource_group, "vnet1").result()
    with pytest.raises(ResourceNotFoundError) as err:
        network.virtual_networks.get(resource_group, "vnet1")
    assert _code(err) == "ResourceNotFound"


def test_subnet_outside_vnet_refused(network: Any, resource_group: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        vnet(network, resource_group, subnets=(("s1", "10.2.0.0/24"),))
    assert _code(err) == "NetcfgSubnetRangeOutsideVnet"
    assert "'s1'" in err.value.error.message


def test_overlapping_subnets_refused(network: Any, resource_group: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        vnet(network, resource_group, subnets=(("s1", "10.1.0.0/24"), ("s2", "10.1.0.128/25")))
    assert _code(err) == "NetcfgSubnetRangesOverlap"


def test_child_subnet_overlapping_sibling_refused(network: Any, resource_group: str) -> None:
    vnet(network, resource_group)
    with pytest.raises(HttpResponseError) as err:
        network.subnets.begin_create_or_update(
            resource_group, "vnet1", "s2", m.Subnet(address_prefix="10.1.0.0/25")
        ).result()
    assert _code(err) == "NetcfgSubnetRangesOverlap"


def test_host_bits_set_refused_with_fixed_prefix(network: Any, resource_group: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        vnet(network, resource_group, prefixes=("10.10.10.0/16",), subnets=())
    assert _code(err) == "InvalidCIDRNotation"
    assert "10.10.0.0/16" in err.value.error.message


def test_reserved_ranges_refused(network: Any, resource_group: str) -> None:
    for prefix in ("127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4"):
        with pytest.raises(HttpResponseError) as err:
            vnet(network, resource_group, prefixes=(prefix,), subnets=())
        assert _code(err) == "InvalidAddressPrefix", prefix


def test_subnet_size_limits(network: Any, resource_group: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        vnet(network, resource_group, subnets=(("tiny", "10.1.0.0/30"),))
    assert _code(err) == "NetcfgInvalidSubnet"


def test_child_subnets_appear_in_vnet_and_list(network: Any, resource_group: str) -> None:
    vnet(network, resource_group)
    s2 = network.subnets.begin_create_or_update(
        resource_group, "vnet1", "s2", m.Subnet(address_prefix="10.1.1.0/24")
    ).result()
    assert s2.address_prefix == "10.1.1.0/24"
    assert s2.private_endpoint_network_policies == "Disabled"
    got = network.virtual_networks.get(resource_group, "vnet1")
    assert sorted(s.name for s in got.subnets) == ["s1", "s2"]
    assert sorted(s.name for s in network.subnets.list(resource_group, "vnet1")) == ["s1", "s2"]
    network.subnets.begin_delete(resource_group, "vnet1", "s2").result()
    with pytest.raises(ResourceNotFoundError):
        network.subnets.get(resource_group, "vnet1", "s2")


def test_vnet_put_without_subnets_deletes_them(network: Any, resource_group: str) -> None:
    """A VNet PUT replaces the subnet list: child subnets it omits are gone afterwards."""
    vnet(network, resource_group)
    network.subnets.begin_create_or_update(
        resource_group, "vnet1", "s2", m.Subnet(address_prefix="10.1.1.0/24")
    ).result()
    vnet(network, resource_group, subnets=())
    assert network.virtual_networks.get(resource_group, "vnet1").subnets == []


def test_in_use_subnet_cannot_be_deleted(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group)
    n = nic(network, resource_group, v.subnets[0].id)
    ipconfig_id = n.ip_configurations[0].id
    # child DELETE
    with pytest.raises(HttpResponseError) as err:
        network.subnets.begin_delete(resource_group, "vnet1", "s1").result()
    assert _code(err) == "InUseSubnetCannotBeDeleted"
    assert ipconfig_id in err.value.error.message
    # VNet PUT that omits it
    with pytest.raises(HttpResponseError) as err:
        vnet(network, resource_group, subnets=())
    assert _code(err) == "InUseSubnetCannotBeDeleted"
    # VNet DELETE
    with pytest.raises(HttpResponseError) as err:
        network.virtual_networks.begin_delete(resource_group, "vnet1").result()
    assert _code(err) == "InUseSubnetCannotBeDeleted"
    # the subnet shows its user; after the NIC goes, everything can go
    s = network.subnets.get(resource_group, "vnet1", "s1")
    assert [c.id for c in s.ip_configurations] == [ipconfig_id]
    network.network_interfaces.begin_delete(resource_group, "nic1").result()
    network.subnets.begin_delete(resource_group, "vnet1", "s1").result()
    network.virtual_networks.begin_delete(resource_group, "vnet1").result()


def test_in_use_subnet_cannot_be_resized(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group)
    nic(network, resource_group, v.subnets[0].id)
    with pytest.raises(HttpResponseError) as err:
        network.subnets.begin_create_or_update(
            resource_group, "vnet1", "s1", m.Subnet(address_prefix="10.1.0.0/23")
        ).result()
    assert _code(err) == "InUseSubnetCannotBeUpdated"


def test_check_ip_address_availability(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group)
    nic(network, resource_group, v.subnets[0].id)
    taken = network.virtual_networks.check_ip_address_availability(
        resource_group, "vnet1", ip_address="10.1.0.4"
    )
    assert taken.available is False
    assert taken.available_ip_addresses[0] == "10.1.0.5"
    assert network.virtual_networks.check_ip_address_availability(
        resource_group, "vnet1", ip_address="10.1.0.9"
    ).available
    reserved = network.virtual_networks.check_ip_address_availability(
        resource_group, "vnet1", ip_address="10.1.0.3"
    )
    assert reserved.available is False and reserved.is_platform_reserved is True


def test_unknown_property_and_wrong_type_refused(platform_server: Any, resource_group: str) -> None:
    path = (
        f"/subscriptions/{platform_server.subscription_id}/resourceGroups/{resource_group}"
        "/providers/Microsoft.Network/virtualNetworks/v?api-version=2024-07-01"
    )
    r = platform_server.arm("PUT", path, json={"location": LOC, "properties": {"bogus": 1}})
    assert r.status_code == 400
    assert r.json()["error"]["target"] == "properties.bogus"
    r = platform_server.arm(
        "PUT", path, json={"location": LOC, "properties": {"addressSpace": {"addressPrefixes": 5}}}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "InvalidRequestContent"
    assert r.json()["error"]["target"] == "properties.addressSpace.addressPrefixes"


# --- network interfaces -----------------------------------------------------------------------


def test_nic_dynamic_addresses_start_at_dot_four(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group)
    a = nic(network, resource_group, v.subnets[0].id, "nic-a")
    b = nic(network, resource_group, v.subnets[0].id, "nic-b")
    assert a.ip_configurations[0].private_ip_address == "10.1.0.4"
    assert b.ip_configurations[0].private_ip_address == "10.1.0.5"
    assert a.ip_configurations[0].private_ip_allocation_method == "Dynamic"
    assert a.ip_configurations[0].primary is True
    assert a.mac_address.startswith("00-0D-3A-") and len(a.mac_address) == 17
    # an update (GET + PUT as az does) keeps address and MAC
    again = network.network_interfaces.begin_create_or_update(resource_group, "nic-a", a).result()
    assert again.ip_configurations[0].private_ip_address == "10.1.0.4"
    assert again.mac_address == a.mac_address


def test_nic_static_address_rules(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group)
    sid = v.subnets[0].id
    static: dict[str, Any] = {"private_ip_allocation_method": "Static"}
    n = nic(network, resource_group, sid, "n1", private_ip_address="10.1.0.10", **static)
    assert n.ip_configurations[0].private_ip_address == "10.1.0.10"
    cases = {
        "10.1.1.10": "PrivateIPAddressNotInSubnet",
        "10.1.0.3": "PrivateIPAddressInReservedRange",
        "10.1.0.255": "PrivateIPAddressInReservedRange",
        "10.1.0.10": "PrivateIPAddressIsAllocated",
    }
    for ip, code in cases.items():
        with pytest.raises(HttpResponseError) as err:
            nic(network, resource_group, sid, "n2", private_ip_address=ip, **static)
        assert _code(err) == code, ip
    # a Dynamic NIC skips the static one's address
    d = nic(network, resource_group, sid, "n3")
    assert d.ip_configurations[0].private_ip_address == "10.1.0.4"


def test_nic_subnet_full(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group, subnets=(("s1", "10.1.0.0/29"),))
    sid = v.subnets[0].id
    for i in range(3):  # a /29 has 8 - 5 = 3 assignable addresses
        nic(network, resource_group, sid, f"n{i}")
    with pytest.raises(HttpResponseError) as err:
        nic(network, resource_group, sid, "n3")
    assert _code(err) == "SubnetIsFull"


def test_nic_missing_subnet_reference(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group)
    with pytest.raises(HttpResponseError) as err:
        nic(network, resource_group, v.id + "/subnets/nope")
    assert _code(err) == "InvalidResourceReference"


def test_nic_with_public_ip_and_nsg(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group)
    pip = network.public_ip_addresses.begin_create_or_update(
        resource_group, "pip1", pip_body(sku="Standard")
    ).result()
    nsg = network.network_security_groups.begin_create_or_update(
        resource_group, "nsg1", nsg_body()
    ).result()
    body = m.NetworkInterface(
        location=LOC,
        network_security_group=m.NetworkSecurityGroup(id=nsg.id),
        ip_configurations=[
            m.NetworkInterfaceIPConfiguration(
                name="ipconfig1",
                subnet=m.Subnet(id=v.subnets[0].id),
                public_ip_address=m.PublicIPAddress(id=pip.id),
            )
        ],
    )
    n = network.network_interfaces.begin_create_or_update(resource_group, "nic1", body).result()
    assert n.network_security_group.id == nsg.id
    assert n.ip_configurations[0].public_ip_address.id == pip.id
    # back-references, in the target's canonical casing
    got_pip = network.public_ip_addresses.get(resource_group, "pip1")
    assert got_pip.ip_configuration.id == n.ip_configurations[0].id
    got_nsg = network.network_security_groups.get(resource_group, "nsg1")
    assert [x.id for x in got_nsg.network_interfaces] == [n.id]
    # the same public IP on a second NIC is refused
    body.ip_configurations[0].name = "other"
    with pytest.raises(HttpResponseError) as err:
        network.network_interfaces.begin_create_or_update(resource_group, "nic2", body).result()
    assert _code(err) == "PublicIPAddressInUse"
    # neither the attached public IP nor the associated NSG can be deleted
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_addresses.begin_delete(resource_group, "pip1").result()
    assert _code(err) == "PublicIPAddressCannotBeDeleted"
    with pytest.raises(HttpResponseError) as err:
        network.network_security_groups.begin_delete(resource_group, "nsg1").result()
    assert _code(err) == "InUseNetworkSecurityGroupCannotBeDeleted"
    # the effective rules of the NIC: its NSG, defaults expanded for the VNet
    eff = network.network_interfaces.begin_list_effective_network_security_groups(
        resource_group, "nic1"
    ).result()
    assert eff.value[0].network_security_group.id == nsg.id
    names = [r.name for r in eff.value[0].effective_security_rules]
    assert "defaultSecurityRules/AllowVnetInBound" in names
    vnet_rule = eff.value[0].effective_security_rules[0]
    assert "10.1.0.0/16" in vnet_rule.expanded_source_address_prefix


def test_nic_ipconfigurations_read_only_children(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group)
    n = nic(network, resource_group, v.subnets[0].id)
    got = network.network_interface_ip_configurations.get(resource_group, "nic1", "ipconfig1")
    assert got.id == n.ip_configurations[0].id
    assert got.private_ip_address == "10.1.0.4"
    listed = list(network.network_interface_ip_configurations.list(resource_group, "nic1"))
    assert [c.name for c in listed] == ["ipconfig1"]


# --- public IP addresses ----------------------------------------------------------------------


def test_public_ip_static_standard_gets_a_loopback_address(
    network: Any, resource_group: str
) -> None:
    body = pip_body(
        sku="Standard", public_ip_allocation_method="Static", label=f"lbl{resource_group[3:]}"
    )
    pip = network.public_ip_addresses.begin_create_or_update(resource_group, "p1", body).result()
    assert pip.ip_address.startswith("127.100.")
    assert pip.dns_settings.fqdn == f"lbl{resource_group[3:]}.eastus.cloudapp.azure.com"
    other = network.public_ip_addresses.begin_create_or_update(
        resource_group, "p2", pip_body(sku="Standard")
    ).result()
    assert other.ip_address != pip.ip_address
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_addresses.begin_create_or_update(resource_group, "p3", body).result()
    assert _code(err) == "DnsRecordInUse"


def test_public_ip_standard_must_be_static(network: Any, resource_group: str) -> None:
    body = pip_body(sku="Standard", public_ip_allocation_method="Dynamic")
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_addresses.begin_create_or_update(resource_group, "p", body).result()
    assert _code(err) == "StandardSkuPublicIPAddressesMustBeStatic"


def test_public_ip_basic_dynamic_has_no_address_until_a_vm_runs(
    network: Any, resource_group: str
) -> None:
    body = pip_body(sku="Basic", public_ip_allocation_method="Dynamic")
    pip = network.public_ip_addresses.begin_create_or_update(resource_group, "p", body).result()
    assert pip.ip_address is None
    assert pip.sku.name == "Basic"


def test_public_ip_bad_label(network: Any, resource_group: str) -> None:
    body = pip_body(sku="Standard", label="A_b")
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_addresses.begin_create_or_update(resource_group, "p", body).result()
    assert _code(err) == "InvalidDomainNameLabel"


def test_attached_public_ip_cannot_become_dynamic(network: Any, resource_group: str) -> None:
    v = vnet(network, resource_group)
    body = pip_body(sku="Basic", public_ip_allocation_method="Static")
    pip = network.public_ip_addresses.begin_create_or_update(resource_group, "p", body).result()
    nic(network, resource_group, v.subnets[0].id, public_ip_address=m.PublicIPAddress(id=pip.id))
    body.public_ip_allocation_method = "Dynamic"
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_addresses.begin_create_or_update(resource_group, "p", body).result()
    assert _code(err) == "PublicIPAddressInUseCannotUpdateToDynamic"


# --- network security groups ------------------------------------------------------------------


def test_nsg_default_rules_and_inline_rules(network: Any, resource_group: str) -> None:
    nsg = network.network_security_groups.begin_create_or_update(
        resource_group,
        "nsg1",
        nsg_body(("ssh", rule(1000))),
    ).result()
    assert [r.name for r in nsg.default_security_rules] == [
        "AllowVnetInBound",
        "AllowAzureLoadBalancerInBound",
        "DenyAllInBound",
        "AllowVnetOutBound",
        "AllowInternetOutBound",
        "DenyAllOutBound",
    ]
    assert nsg.default_security_rules[2].priority == 65500
    assert [r.name for r in nsg.security_rules] == ["ssh"]
    assert nsg.security_rules[0].id == f"{nsg.id}/securityRules/ssh"
    got = network.default_security_rules.get(resource_group, "nsg1", "DenyAllOutBound")
    assert got.access == "Deny" and got.direction == "Outbound"


def test_child_rules_with_lower_case_enums(network: Any, resource_group: str) -> None:
    """az vm open-port sends ``allow``/``inbound``: accepted, stored in canonical casing."""
    network.network_security_groups.begin_create_or_update(
        resource_group, "nsg1", nsg_body()
    ).result()
    r = network.security_rules.begin_create_or_update(
        resource_group,
        "nsg1",
        "open-port-80",
        rule(900, access="allow", direction="inbound", protocol="*", destination_port_range="80"),
    ).result()
    assert (r.access, r.direction, r.protocol) == ("Allow", "Inbound", "*")
    nsg = network.network_security_groups.get(resource_group, "nsg1")
    assert [x.name for x in nsg.security_rules] == ["open-port-80"]
    assert [x.name for x in network.security_rules.list(resource_group, "nsg1")] == ["open-port-80"]
    network.security_rules.begin_delete(resource_group, "nsg1", "open-port-80").result()
    assert network.network_security_groups.get(resource_group, "nsg1").security_rules == []


def test_rule_priority_conflicts_across_inline_and_child(network: Any, resource_group: str) -> None:
    network.network_security_groups.begin_create_or_update(
        resource_group, "nsg1", nsg_body(("a", rule(100)))
    ).result()
    with pytest.raises(HttpResponseError) as err:
        network.security_rules.begin_create_or_update(
            resource_group, "nsg1", "b", rule(100)
        ).result()
    assert _code(err) == "SecurityRuleConflict"
    assert "a" in err.value.error.message and "b" in err.value.error.message
    # same priority in the other direction is fine
    network.security_rules.begin_create_or_update(
        resource_group, "nsg1", "c", rule(100, direction="Outbound")
    ).result()
    with pytest.raises(HttpResponseError) as err:
        network.network_security_groups.begin_create_or_update(
            resource_group,
            "nsg2",
            nsg_body(("x", rule(200)), ("y", rule(200))),
        ).result()
    assert _code(err) == "SecurityRuleConflict"


def test_rule_priority_range(network: Any, resource_group: str) -> None:
    network.network_security_groups.begin_create_or_update(
        resource_group, "nsg1", nsg_body()
    ).result()
    for bad in (99, 4097):
        with pytest.raises(HttpResponseError) as err:
            network.security_rules.begin_create_or_update(
                resource_group, "nsg1", "r", rule(bad)
            ).result()
        assert _code(err) == "SecurityRuleInvalidPriority"
        assert str(bad) in err.value.error.message


def test_rule_without_source_or_ports(network: Any, resource_group: str) -> None:
    network.network_security_groups.begin_create_or_update(
        resource_group, "nsg1", nsg_body()
    ).result()
    no_source = rule(source_address_prefix=None)
    with pytest.raises(HttpResponseError) as err:
        network.security_rules.begin_create_or_update(
            resource_group, "nsg1", "r", no_source
        ).result()
    assert _code(err) == "SecurityRuleParametersMissing"
    assert "SourceAddressPrefix" in err.value.error.message
    with pytest.raises(HttpResponseError) as err:
        network.security_rules.begin_create_or_update(
            resource_group, "nsg1", "r", rule(destination_port_range="70000")
        ).result()
    assert _code(err) == "SecurityRuleInvalidPortRange"


def test_subnet_nsg_association_shows_and_blocks_delete(network: Any, resource_group: str) -> None:
    nsg = network.network_security_groups.begin_create_or_update(
        resource_group, "nsg1", nsg_body()
    ).result()
    v = vnet(network, resource_group)
    network.subnets.begin_create_or_update(
        resource_group,
        "vnet1",
        "s2",
        m.Subnet(
            address_prefix="10.1.1.0/24", network_security_group=m.NetworkSecurityGroup(id=nsg.id)
        ),
    ).result()
    got = network.network_security_groups.get(resource_group, "nsg1")
    assert [s.id for s in got.subnets] == [f"{v.id}/subnets/s2"]
    with pytest.raises(HttpResponseError) as err:
        network.network_security_groups.begin_delete(resource_group, "nsg1").result()
    assert _code(err) == "InUseNetworkSecurityGroupCannotBeDeleted"


def test_subnet_nsg_reference_must_exist(network: Any, resource_group: str) -> None:
    vnet(network, resource_group)
    missing = (
        f"/subscriptions/{network._config.subscription_id}/resourceGroups/{resource_group}"
        "/providers/Microsoft.Network/networkSecurityGroups/nope"
    )
    with pytest.raises(HttpResponseError) as err:
        network.subnets.begin_create_or_update(
            resource_group,
            "vnet1",
            "s2",
            m.Subnet(
                address_prefix="10.1.1.0/24",
                network_security_group=m.NetworkSecurityGroup(id=missing),
            ),
        ).result()
    assert _code(err) == "InvalidResourceReference"


def test_double_slash_paths(platform_server: Any, network: Any, resource_group: str) -> None:
    """az sends ``.../providers/Microsoft.Network//virtualNetworks/x`` (reference summary 5)."""
    sub = platform_server.subscription_id
    vnet(network, resource_group)
    r = platform_server.arm(
        "GET",
        f"/subscriptions/{sub}/resourceGroups/{resource_group}/providers/Microsoft.Network/"
        "/virtualNetworks/vnet1?api-version=2024-11-01",
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "vnet1"


def test_overlapping_vnets_allocate_independently(network: Any, resource_group: str) -> None:
    """Separate VNets may overlap (only peering refuses); each has its own addresses."""
    a = vnet(network, resource_group, "va")
    b = vnet(network, resource_group, "vb")
    assert (
        nic(network, resource_group, a.subnets[0].id, "na").ip_configurations[0].private_ip_address
        == "10.1.0.4"
    )
    assert (
        nic(network, resource_group, b.subnets[0].id, "nb").ip_configurations[0].private_ip_address
        == "10.1.0.4"
    )
