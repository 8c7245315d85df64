"""Request bodies of the Microsoft.Network types (pydantic, ``extra="forbid"``), and the
rendering helpers the routers share. Read-only properties that clients send back from a GET
(az's update is GET + full PUT) are accepted and ignored; anything else unknown is refused by
name (house rule 9)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SubResource(_Strict):
    id: str | None = None


class _Envelope(_Strict):
    """Read-only envelope fields every resource may carry back from a GET."""

    id: str | None = None
    name: str | None = None
    type: str | None = None
    etag: str | None = None


# --- virtual networks and subnets -------------------------------------------------------------


class AddressSpace(_Strict):
    addressPrefixes: list[str] | None = None


class DhcpOptions(_Strict):
    dnsServers: list[str] | None = None


class SubnetProperties(_Strict):
    addressPrefix: str | None = None
    addressPrefixes: list[str] | None = None
    networkSecurityGroup: SubResource | None = None
    privateEndpointNetworkPolicies: str | None = None
    privateLinkServiceNetworkPolicies: str | None = None
    defaultOutboundAccess: bool | None = None
    routeTable: SubResource | None = None
    natGateway: SubResource | None = None
    serviceEndpoints: list[dict[str, Any]] | None = None
    delegations: list[dict[str, Any]] | None = None
    # read-only
    provisioningState: str | None = None
    ipConfigurations: list[dict[str, Any]] | None = None
    purpose: str | None = None


class SubnetBody(_Envelope):
    properties: SubnetProperties | None = None


class VirtualNetworkProperties(_Strict):
    addressSpace: AddressSpace | None = None
    dhcpOptions: DhcpOptions | None = None
    subnets: list[SubnetBody] | None = None
    enableDdosProtection: bool | None = None
    enableVmProtection: bool | None = None
    virtualNetworkPeerings: list[dict[str, Any]] | None = None
    # read-only
    provisioningState: str | None = None
    resourceGuid: str | None = None


class VirtualNetworkBody(_Envelope):
    location: str | None = None
    tags: dict[str, Any] | None = None
    properties: VirtualNetworkProperties | None = None


class TagsBody(_Strict):
    tags: dict[str, Any] | None = None


# --- network security groups ------------------------------------------------------------------


class SecurityRuleProperties(_Strict):
    description: str | None = None
    protocol: str | None = None
    sourcePortRange: str | None = None
    sourcePortRanges: list[str] | None = None
    destinationPortRange: str | None = None
    destinationPortRanges: list[str] | None = None
    sourceAddressPrefix: str | None = None
    sourceAddressPrefixes: list[str] | None = None
    sourceApplicationSecurityGroups: list[SubResource] | None = None
    destinationAddressPrefix: str | None = None
    destinationAddressPrefixes: list[str] | None = None
    destinationApplicationSecurityGroups: list[SubResource] | None = None
    access: str | None = None
    priority: int | None = None
    direction: str | None = None
    provisioningState: str | None = None  # read-only


class SecurityRuleBody(_Envelope):
    properties: SecurityRuleProperties | None = None


class NetworkSecurityGroupProperties(_Strict):
    securityRules: list[SecurityRuleBody] | None = None
    flushConnection: bool | None = None
    # read-only
    defaultSecurityRules: list[dict[str, Any]] | None = None
    networkInterfaces: list[dict[str, Any]] | None = None
    subnets: list[dict[str, Any]] | None = None
    provisioningState: str | None = None
    resourceGuid: str | None = None


class NetworkSecurityGroupBody(_Envelope):
    location: str | None = None
    tags: dict[str, Any] | None = None
    properties: NetworkSecurityGroupProperties | None = None


# --- public IP addresses ----------------------------------------------------------------------


class PublicIpSku(_Strict):
    name: str | None = None
    tier: str | None = None


class PublicIpDnsSettings(_Strict):
    domainNameLabel: str | None = None
    fqdn: str | None = None  # read-only
    reverseFqdn: str | None = None
    domainNameLabelScope: str | None = None


class PublicIpProperties(_Strict):
    publicIPAllocationMethod: str | None = None
    publicIPAddressVersion: str | None = None
    idleTimeoutInMinutes: int | None = None
    dnsSettings: PublicIpDnsSettings | None = None
    ipTags: list[dict[str, Any]] | None = None
    # read-only
    ipAddress: str | None = None
    ipConfiguration: dict[str, Any] | None = None
    provisioningState: str | None = None
    resourceGuid: str | None = None


class PublicIpBody(_Envelope):
    location: str | None = None
    tags: dict[str, Any] | None = None
    sku: PublicIpSku | None = None
    zones: list[str] | None = None
    properties: PublicIpProperties | None = None


# --- network interfaces -----------------------------------------------------------------------


class IpConfigurationProperties(_Strict):
    privateIPAddress: str | None = None
    privateIPAllocationMethod: str | None = None
    privateIPAddressVersion: str | None = None
    subnet: SubResource | None = None
    primary: bool | None = None
    publicIPAddress: SubResource | None = None
    applicationSecurityGroups: list[SubResource] | None = None
    loadBalancerBackendAddressPools: list[SubResource] | None = None
    loadBalancerInboundNatRules: list[SubResource] | None = None
    provisioningState: str | None = None  # read-only


class IpConfigurationBody(_Envelope):
    properties: IpConfigurationProperties | None = None


class NicDnsSettings(_Strict):
    dnsServers: list[str] | None = None
    internalDnsNameLabel: str | None = None
    # read-only
    appliedDnsServers: list[str] | None = None
    internalFqdn: str | None = None
    internalDomainNameSuffix: str | None = None


class NetworkInterfaceProperties(_Strict):
    ipConfigurations: list[IpConfigurationBody] | None = None
    networkSecurityGroup: SubResource | None = None
    dnsSettings: NicDnsSettings | None = None
    enableAcceleratedNetworking: bool | None = None
    enableIPForwarding: bool | None = None
    disableTcpStateTracking: bool | None = None
    nicType: str | None = None
    # read-only
    macAddress: str | None = None
    primary: bool | None = None
    virtualMachine: SubResource | None = None
    provisioningState: str | None = None
    resourceGuid: str | None = None
    vnetEncryptionSupported: bool | None = None
    hostedWorkloads: list[str] | None = None
    tapConfigurations: list[dict[str, Any]] | None = None
    auxiliaryMode: str | None = None
    auxiliarySku: str | None = None


class NetworkInterfaceBody(_Envelope):
    location: str | None = None
    tags: dict[str, Any] | None = None
    properties: NetworkInterfaceProperties | None = None


# --- rendering --------------------------------------------------------------------------------


def etag(value: str) -> str:
    """The store's ETag in the service's weak form ``W/"<guid>"``."""
    return f'W/"{value.strip(chr(34))}"'


def ref(rid: str | None) -> dict[str, str] | None:
    return {"id": rid} if rid else None


def rg_base(collection: str) -> str:
    return (
        "/subscriptions/{subscription_id}/resourcegroups/{resource_group}/providers/"
        f"microsoft.network/{collection}"
    )


def sub_base(collection: str) -> str:
    return f"/subscriptions/{{subscription_id}}/providers/microsoft.network/{collection}"
