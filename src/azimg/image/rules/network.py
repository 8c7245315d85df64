"""Network rules (prerequisites.md §6): DHCP on the primary NIC, no build-network leftovers."""

from __future__ import annotations

import re

from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev, ev_loc
from azimg.image.rules.agents import cloud_init_enabled

NET_01 = Rule(
    "NET-01",
    B,
    "the primary NIC gets IPv4 by DHCP",
    "configure DHCP on eth0 (or let cloud-init render the network config)",
)

NET_02 = Rule(
    "NET-02",
    W,
    "no static addresses or MAC-bound profiles from the build network",
    "remove static addresses and MAC bindings",
)

NET_03 = Rule(
    "NET-03",
    B,
    "no /etc/udev/rules.d/70-persistent-net.rules (the new NIC would become eth1)",
    "rm /etc/udev/rules.d/70-persistent-net.rules",
)

NET_04 = Rule(
    "NET-04",
    W,
    "the persistent-net generator is disabled",
    "ln -s /dev/null /etc/udev/rules.d/75-persistent-net-generator.rules",
)

NET_05 = Rule(
    "NET-05",
    W,
    "no 85-persistent-net-cloud-init.rules from the build VM",
    "rm /etc/udev/rules.d/85-persistent-net-cloud-init.rules",
)

NET_06 = Rule(
    "NET-06",
    W,
    "network config naming eth0 is backed by net.ifnames=0",
    "add net.ifnames=0 to the kernel command line or configure by match",
)

NET_08 = Rule(
    "NET-08",
    A,
    "no build-time resolv.conf or hostname baked in",
    "waagent -deprovision removes them",
)

NET_09 = Rule("NET-09", A, "no DHCP leases from the build VM", "delete the lease files")


def check_network(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    why = blocked(g, "network")
    if why:
        return [NET_01.unreadable(why), NET_03.unreadable(why)]
    n = g.network
    out = []
    renders = cloud_init_enabled(g) and g.agents.cloud_init.network_disabled is None
    if n.dhcp:
        out.append(NET_01.passed(*(ev_loc(x) for x in n.dhcp[:3])))
    elif renders:
        out.append(
            NET_01.passed(ev(g.agents.cloud_init.where, "cloud-init renders DHCP network config"))
        )
    elif g.os.family == "flat":
        out.append(NET_01.passed(ev("/usr/lib/systemd/network", "Flatcar default DHCP")))
    else:
        found = [ev_loc(x) for x in n.static[:3]] or [
            ev("/etc/network, /etc/netplan, /etc/systemd/network, NM, ifcfg", "no DHCP config")
        ]
        out.append(NET_01.failed(*found))
    bad = list(n.static) + list(n.mac_bound)
    out.append(NET_02.check(not bad, *(ev_loc(x) for x in bad[:5])))
    p70 = [p for p in n.persistent_net_rules if "70-persistent-net" in p]
    out.append(NET_03.check(not p70, *(ev(p, "present") for p in p70)))
    if n.generator_present:
        out.append(
            NET_04.check(
                n.generator_disabled,
                ev(
                    "/etc/udev/rules.d/75-persistent-net-generator.rules",
                    "linked to /dev/null" if n.generator_disabled else "active",
                ),
            )
        )
    p85 = [p for p in n.persistent_net_rules if "85-persistent-net" in p]
    out.append(NET_05.check(not p85, *(ev(p, "present") for p in p85)))
    eth = [x for x in n.interfaces_named if re.search(r"\beth0\b", x.value)]
    if eth and g.boot.cmdline.args is not None:
        out.append(
            NET_06.check(
                g.boot.cmdline.has("net.ifnames=0") or g.boot.cmdline.has("net.ifnames=0"),
                ev_loc(eth[0]),
                ev(
                    g.boot.cmdline.where,
                    "net.ifnames=0 "
                    + ("present" if g.boot.cmdline.has("net.ifnames=0") else "absent"),
                ),
            )
        )
    if ctx.generalized:
        out.append(
            NET_08.check(
                not g.network.resolv_conf,
                ev("/etc/resolv.conf", "present" if g.network.resolv_conf else "absent"),
            )
        )
        out.append(NET_09.check(not g.network.leases, *(ev(p) for p in g.network.leases[:5])))
    return out


NET_07 = Rule(
    "NET-07",
    A,
    "NetworkManager leaves the accelerated-networking VF unmanaged",
    "add /etc/udev/rules.d/68-azure-sriov-nm-unmanaged.rules",
)


def check_vf_unmanaged(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    """NET-07: NetworkManager must leave the accelerated-networking VF alone."""
    g = facts.guest
    if not (
        "/usr/sbin/NetworkManager" in g.system.present
        or "network-manager" in (g.packages.installed or {})
    ):
        return []
    ok = (
        bool(
            {"68-azure-sriov-nm-unmanaged.rules", "10-azure-unmanaged-sriov.rules"}
            & g.services.udev_rules
        )
        or "/etc/NetworkManager/conf.d/99-azure-unmanaged-devices.conf" in g.system.present
    )
    return [NET_07.check(ok, ev("/etc/udev/rules.d", "VF unmanaged" if ok else "absent"))]
