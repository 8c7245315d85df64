"""How the NIC is configured (every network stack's files), udev naming rules, DHCP leases."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from azimg.disk.guestfs import GuestFS, exists, read_text
from azimg.image.facts.files import Guard, Located, lines, listdir, lstat


@dataclass(frozen=True)
class NetworkFacts:
    dhcp: tuple[Located, ...] = ()  # configs that ask for DHCP on an interface
    static: tuple[Located, ...] = ()  # static addresses / gateways
    mac_bound: tuple[Located, ...] = ()  # profiles bound to a MAC address
    persistent_net_rules: tuple[str, ...] = ()  # 70-persistent-net.rules etc. present
    generator_disabled: bool = False  # 75-persistent-net-generator.rules -> /dev/null
    generator_present: bool = False  # the packaged generator exists
    interfaces_named: tuple[Located, ...] = ()  # eth0/ens3 names configs refer to
    leases: tuple[str, ...] = ()  # DHCP leases from the build VM
    resolv_conf: bool = False
    hostname: str | None = None


def read_network(fs: GuestFS, guard: Guard) -> NetworkFacts:
    config = guard("network", lambda: _read_config(fs), NetworkFacts())
    hostname = guard("network", lambda: read_text(fs, "/etc/hostname"), None)
    return replace(
        config,
        leases=guard("network", lambda: _read_leases(fs), ()),
        resolv_conf=guard("network", lambda: lstat(fs, "/etc/resolv.conf") is not None, False),
        hostname=hostname.strip() if hostname else None,
    )


def _is_ifcfg(name: str) -> bool:
    return name.startswith("ifcfg-") and name != "ifcfg-lo"


# Each network stack: where its files live, which names count, and the lines that mark DHCP, a
# static address, a MAC binding and (ifupdown) an interface named after one NIC.
_IFUPDOWN_MARKS = (
    (r"^iface\s+\S+\s+inet6?\s+dhcp", "dhcp"),
    (r"^iface\s+\S+\s+inet\s+static", "static"),
    (r"^\s*hwaddress\s", "mac"),
    (r"^(auto|allow-hotplug|iface)\s+(eth\d|en\w+)", "named"),
)


_IFCFG_MARKS = (
    (r"^BOOTPROTO=['\"]?dhcp", "dhcp"),
    (r"^(IPADDR|GATEWAY)\d*=", "static"),
    (r"^(HWADDR|MACADDR)=", "mac"),
)


_NETWORK_DIRS: tuple[tuple[str, Callable[[str], bool], tuple[tuple[str, str], ...]], ...] = (
    ("/etc/network/interfaces.d", lambda _n: True, _IFUPDOWN_MARKS),
    (
        "/etc/netplan",
        lambda _n: True,
        (
            (r"dhcp4:\s*(true|yes)", "dhcp"),
            (r"^\s*(addresses|gateway4|gateway6):\s*\S", "static"),
            (r"macaddress:", "mac"),
        ),
    ),
    (
        "/etc/systemd/network",
        lambda _n: True,
        (
            (r"^DHCP\s*=\s*(yes|true|ipv4|both)", "dhcp"),
            (r"^(Address|Gateway)\s*=", "static"),
            (r"^MACAddress\s*=", "mac"),
        ),
    ),
    ("/etc/sysconfig/network-scripts", _is_ifcfg, _IFCFG_MARKS),
    ("/etc/sysconfig/network", _is_ifcfg, _IFCFG_MARKS),
    (
        "/etc/NetworkManager/system-connections",
        lambda _n: True,
        (
            (r"^method\s*=\s*auto", "dhcp"),
            (r"^address\d*\s*=", "static"),
            (r"^mac-address\s*=", "mac"),
        ),
    ),
)


def _network_config_files(fs: GuestFS) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """Every network config file in the guest, in stack order, with the marks to look for."""
    found = [("/etc/network/interfaces", _IFUPDOWN_MARKS)]
    for directory, counts, marks in _NETWORK_DIRS:
        found += [(f"{directory}/{n}", marks) for n in listdir(fs, directory) if counts(n)]
    return found


def _read_config(fs: GuestFS) -> NetworkFacts:
    dhcp, static, mac, named = [], [], [], []
    buckets = {"dhcp": dhcp, "static": static, "mac": mac, "named": named}
    for path, marks in _network_config_files(fs):
        text = read_text(fs, path)
        for n, line in lines(text or ""):
            for pattern, bucket in marks:
                if re.search(pattern, line, re.I):
                    buckets[bucket].append(Located(line, f"{path}:{n}"))
    persistent = tuple(
        f"/etc/udev/rules.d/{n}"
        for n in ("70-persistent-net.rules", "85-persistent-net-cloud-init.rules")
        if exists(fs, f"/etc/udev/rules.d/{n}")
    )
    gen = "/etc/udev/rules.d/75-persistent-net-generator.rules"
    st = lstat(fs, gen)
    disabled = False
    if st is not None and st.is_symlink:
        disabled = fs.readlink(gen) == "/dev/null"
    present = any(
        exists(fs, f"{d}/75-persistent-net-generator.rules")
        for d in ("/lib/udev/rules.d", "/usr/lib/udev/rules.d")
    ) or (st is not None and not disabled)
    return NetworkFacts(
        tuple(dhcp), tuple(static), tuple(mac), persistent, disabled, present, tuple(named)
    )


def _read_leases(fs: GuestFS) -> tuple[str, ...]:
    out = []
    for d in (
        "/var/lib/dhclient",
        "/var/lib/dhcp",
        "/var/lib/dhcpcd",
        "/var/lib/NetworkManager",
        "/var/db",
    ):
        for name in listdir(fs, d):
            if "lease" in name and not name.endswith(".conf"):
                out.append(f"{d}/{name}")
    for name in listdir(fs, "/run/systemd/netif/leases"):
        out.append(f"/run/systemd/netif/leases/{name}")
    return tuple(out)
