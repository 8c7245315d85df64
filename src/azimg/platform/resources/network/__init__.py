"""Microsoft.Network: virtual networks and subnets, network interfaces, public IP addresses,
network security groups, and NSG evaluation (reference/network.md)."""
