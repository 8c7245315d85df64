"""Client-visible errors of Microsoft.Network: one class per failure reason, each a template
filled at the raise site, with the codes and texts the Network provider sends
(reference/network.md §6). All are ``NetworkBadRequest`` (400, mapped in ``arm/errors.py``).
A leaf: it imports only ``errors``.
"""

from azimg.platform.errors import NetworkBadRequest


class InvalidCIDRNotation(NetworkBadRequest):
    code = "InvalidCIDRNotation"
    template = (
        "The address prefix {prefix} in resource {rid} has an invalid CIDR notation. For the "
        "given prefix length, the address prefix should be {fixed}."
    )


class InvalidAddressPrefix(NetworkBadRequest):
    code = "InvalidAddressPrefixFormat"
    template = "Address prefix {prefix} of resource {rid} is not formatted correctly."


class AddressPrefixNotAllowed(NetworkBadRequest):
    code = "InvalidAddressPrefix"
    template = (
        "Address prefix {prefix} of resource {rid} is not allowed: {why}. Use a range outside "
        "224.0.0.0/4, 255.255.255.255/32, 127.0.0.0/8, 169.254.0.0/16 and 168.63.129.16/32."
    )


class VnetAddressSpacesOverlap(NetworkBadRequest):
    code = "VnetAddressSpacesOverlap"
    template = (
        "Address prefixes {a} and {b} of virtual network {vnet} overlap. The address space of "
        "a virtual network cannot contain overlapping prefixes."
    )


class NetcfgSubnetRangeOutsideVnet(NetworkBadRequest):
    code = "NetcfgSubnetRangeOutsideVnet"
    template = (
        "Subnet '{subnet}' is not valid because its IP address range is outside the IP "
        "address range of virtual network '{vnet}'."
    )


class NetcfgSubnetRangesOverlap(NetworkBadRequest):
    code = "NetcfgSubnetRangesOverlap"
    template = (
        "Subnet '{subnet}' is not valid because its IP address range overlaps with that of an "
        "existing subnet in virtual network '{vnet}'."
    )


class InvalidSubnetPrefixLength(NetworkBadRequest):
    code = "NetcfgInvalidSubnet"
    template = (
        "Subnet '{subnet}' is not valid in virtual network '{vnet}': an IPv4 subnet must be "
        "between /8 and /29 (given {prefix})."
    )


class InUseSubnetCannotBeDeleted(NetworkBadRequest):
    code = "InUseSubnetCannotBeDeleted"
    template = (
        "Subnet {subnet} is in use by {ipconfig} and cannot be deleted. In order to delete the "
        "subnet, delete all the resources within the subnet. See aka.ms/deletesubnet."
    )


class InUseSubnetCannotBeUpdated(NetworkBadRequest):
    code = "InUseSubnetCannotBeUpdated"
    template = (
        "Subnet {subnet} is in use by {ipconfig} and its address prefix cannot be changed. "
        "Remove all the resources within the subnet first."
    )


class NicInUse(NetworkBadRequest):
    code = "NicInUse"
    template = (
        "Network Interface {nic} is used by existing resource {vm}. In order to delete the "
        "network interface, it must be dissociated from the resource. To learn more, see "
        "aka.ms/deletenic."
    )


class PublicIPAddressCannotBeDeleted(NetworkBadRequest):
    code = "PublicIPAddressCannotBeDeleted"
    template = (
        "Public IP address {pip} can not be deleted since it is still allocated to resource "
        "{ipconfig}. In order to delete the public IP, disassociate/detach the Public IP "
        "address from the resource.  To learn how to do this, see aka.ms/deletepublicip."
    )


class PublicIPAddressInUse(NetworkBadRequest):
    code = "PublicIPAddressInUse"
    template = (
        "IP configuration {ipconfig} is referencing public IP address {pip} that is already "
        "allocated to resource {other}."
    )


class PublicIPAddressInUseCannotUpdateToDynamic(NetworkBadRequest):
    code = "PublicIPAddressInUseCannotUpdateToDynamic"
    template = (
        "Public IP address {pip} is in use by {ipconfig} and its allocation method cannot be "
        "changed to Dynamic."
    )


class StandardSkuPublicIPAddressesMustBeStatic(NetworkBadRequest):
    code = "StandardSkuPublicIPAddressesMustBeStatic"
    template = "Standard sku publicIp {pip} must have AllocationMethod set to Static."


class InvalidDomainNameLabel(NetworkBadRequest):
    code = "InvalidDomainNameLabel"
    template = (
        "The domain name label {label} is invalid. It must conform to the following regular "
        "expression: ^[a-z][a-z0-9-]{{1,61}}[a-z0-9]$."
    )


class DnsRecordInUse(NetworkBadRequest):
    code = "DnsRecordInUse"
    template = "DNS record {fqdn} is already used by another public IP address {other}."


class PublicIPPoolExhausted(NetworkBadRequest):
    code = "PublicIPCountLimitReached"
    template = "Cannot allocate a public IP address: all {count} addresses of {pool} are in use."


class SecurityRuleConflict(NetworkBadRequest):
    code = "SecurityRuleConflict"
    template = (
        "Security rule {a} conflicts with rule {b}. Rules cannot have the same Priority and "
        "Direction. To learn more, see aka.ms/nsgrules."
    )


class SecurityRuleInvalidPriority(NetworkBadRequest):
    code = "SecurityRuleInvalidPriority"
    template = "Security rule has invalid Priority. Value provided: {value} Allowed range 100-4096."


class SecurityRuleParametersMissing(NetworkBadRequest):
    code = "SecurityRuleParametersMissing"
    template = (
        "Required security rule parameters are missing for security rule with Id: {rule}. "
        "Security rule must specify {what}."
    )


class SecurityRuleInvalidPortRange(NetworkBadRequest):
    code = "SecurityRuleInvalidPortRange"
    template = (
        "Security rule {rule} has invalid Port range. Value provided: {value}. Value should "
        "be an integer OR integer range with '-' delimiter. Valid range 0-65535."
    )


class SecurityRuleInvalidAddressPrefix(NetworkBadRequest):
    code = "SecurityRuleInvalidAddressPrefix"
    template = "Security rule {rule} has invalid Address prefix. Value provided: {value}."


class InvalidSecurityRuleName(NetworkBadRequest):
    code = "InvalidResourceName"
    template = (
        "Resource name {name} is invalid. The name can be up to 80 characters long. It must "
        "begin with a word character, and it must end with a word character or with '_'. The "
        "name may contain word characters or '.', '-', '_'."
    )


class InUseNetworkSecurityGroupCannotBeDeleted(NetworkBadRequest):
    code = "InUseNetworkSecurityGroupCannotBeDeleted"
    template = (
        "Network security group {nsg} cannot be deleted because it is in use by the following "
        "resources: {users}."
    )


class PrivateIPAddressNotInSubnet(NetworkBadRequest):
    code = "PrivateIPAddressNotInSubnet"
    template = (
        "IP configuration {ipconfig} is using the private IP address {ip} which does not "
        "belong to the range {prefix} of subnet {subnet}."
    )


class PrivateIPAddressInReservedRange(NetworkBadRequest):
    code = "PrivateIPAddressInReservedRange"
    template = (
        "IP configuration {ipconfig} is using the private IP address {ip} which falls in the "
        "range reserved by the platform for subnet {subnet} (the first four addresses and the "
        "last one)."
    )


class PrivateIPAddressIsAllocated(NetworkBadRequest):
    code = "PrivateIPAddressIsAllocated"
    template = (
        "IP configuration {ipconfig} is using the private IP address {ip} which is already "
        "allocated to resource {other}."
    )


class SubnetIsFull(NetworkBadRequest):
    code = "SubnetIsFull"
    template = (
        "Subnet {subnet} with address prefix {prefix} does not have enough capacity for 1 IP "
        "address."
    )


class InvalidResourceReference(NetworkBadRequest):
    code = "InvalidResourceReference"
    template = (
        "Resource {ref} referenced by resource {rid} was not found. Please make sure that the "
        "referenced resource exists, and that both resources are in the same region."
    )


class VirtualMachineMustHaveOneNetworkInterfaceAsPrimary(NetworkBadRequest):
    code = "VirtualMachineMustHaveOneNetworkInterfaceAsPrimary"
    template = "Virtual machine {vm} must have one network interface set as the primary."


class NicNotInVmLocation(NetworkBadRequest):
    code = "InvalidParameter"
    template = (
        "Network interface {nic} is in location '{nic_location}', but virtual machine {vm} is "
        "in '{vm_location}'. A virtual machine and its network interfaces must be in the same "
        "location."
    )


class NetworkInterfaceIpConfigurationsInvalid(NetworkBadRequest):
    code = "InvalidRequestFormat"
    template = "Network interface {nic}: {why}"
