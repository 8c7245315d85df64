"""General Linux rules (prerequisites.md §6): kernel, command line, agents, swap, network,
fstab, accounts, SSH, time and udev.

Image type matters (``CheckContext.generalized``): provisioning and "traces of the build VM"
rules apply to generalized images only; a specialized disk is attached as is and keeps them.
"""

from __future__ import annotations

import re

from azimg.image.findings import Finding, Severity
from azimg.image.inspect import GuestFacts, ImageFacts, KernelInfo
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev, ev_loc

HV_CORE = ("hv_vmbus", "hv_storvsc", "hv_netvsc")
CLOUD_INIT_UNITS = (
    "cloud-init-local.service",
    "cloud-init.service",
    "cloud-init-main.service",
    "cloud-init-network.service",
    "cloud-init.target",
    "cloud-config.service",
    "cloud-final.service",
)
WAAGENT_UNITS = ("walinuxagent.service", "waagent.service")
WAAGENT_TRACES = re.compile(
    r"(ovf-env\.xml|GoalState\.\d+\.xml|\.prv$|\.crt$|SharedConfig\.xml|Incarnation|"
    r"HostingEnvironmentConfig\.xml|Certificates\.|ExtensionsConfig\.)"
)

KRN_01 = Rule(
    "KRN-01",
    B,
    "the kernel has the Hyper-V VMBus, storage and network drivers (=y or =m)",
    "use the distribution's cloud kernel (e.g. linux-image-cloud-amd64) or enable CONFIG_HYPERV*",
)
KRN_02 = Rule(
    "KRN-02",
    B,
    "hv_vmbus and hv_storvsc are in the initramfs (or built in)",
    "initramfs-tools: add the modules to /etc/initramfs-tools/modules, update-initramfs -u; "
    'dracut: add_drivers+=" hv_vmbus hv_netvsc hv_storvsc ", dracut -f',
)
KRN_03 = Rule(
    "KRN-03",
    W,
    "hv_netvsc is in the initramfs (or built in)",
    "add hv_netvsc to the initramfs driver list and rebuild it",
)
KRN_04 = Rule(
    "KRN-04",
    W,
    "the Hyper-V driver list is persisted in initramfs config (future kernels keep it)",
    "add hv_vmbus hv_storvsc hv_netvsc to /etc/initramfs-tools/modules or a dracut.conf.d file",
)
KRN_06 = Rule(
    "KRN-06",
    W,
    "hv_utils and hv_balloon are available (time sync, KVP, shutdown)",
    "use the distribution's kernel",
)
KRN_07 = Rule(
    "KRN-07", B, "vfat is available and not disabled", "remove the modprobe.d override for vfat"
)
KRN_08 = Rule(
    "KRN-08",
    B,
    "udf is available and not disabled (waagent reads the provisioning media from UDF)",
    "remove the modprobe.d override for udf (CIS hardening disables it)",
)
KRN_09 = Rule(
    "KRN-09", W, "kernel 2.6.37 or later, or numa=off", "update the kernel or add numa=off"
)
KRN_10 = Rule(
    "KRN-10",
    A,
    "CONFIG_PCI_HYPERV available (accelerated networking)",
    "use the distribution's kernel",
)
KRN_11 = Rule(
    "KRN-11", W, "CONFIG_WATCHDOG and CONFIG_CIFS enabled", "use the distribution's kernel"
)
CMD_01 = Rule(
    "CMD-01",
    W,
    "the kernel command line has console=ttyS0 (Azure serial console, boot diagnostics)",
    "add console=ttyS0,115200n8 to GRUB_CMDLINE_LINUX in /etc/default/grub, regenerate grub.cfg",
)
CMD_02 = Rule("CMD-02", A, "the kernel command line has earlyprintk=ttyS0", "add it")
CMD_03 = Rule(
    "CMD-03",
    A,
    "no long rootdelay (an unconditional pause at every boot); prefer rootwait",
    "drop rootdelay=300, use rootwait",
)
CMD_04 = Rule(
    "CMD-04",
    W,
    "neither libata.atapi_enabled=0 nor reserve=0x1f0,0x8 on the command line",
    "remove them",
)
CMD_05 = Rule(
    "CMD-05", A, "no rhgb, quiet or splash (logs must reach the serial console)", "remove them"
)
CMD_08 = Rule(
    "CMD-08",
    W,
    "/etc/default/grub arguments match the generated boot configuration",
    "regenerate: update-grub / grub2-mkconfig -o ... / grubby --update-kernel=ALL",
)
CMD_10 = Rule(
    "CMD-10",
    B,
    "root= on the command line names a filesystem in the image",
    "regenerate the boot configuration for this disk's root filesystem",
)
AGT_01 = Rule(
    "AGT-01",
    B,
    "a provisioning agent is installed and enabled (waagent, or cloud-init with the Azure "
    "datasource)",
    "install and enable waagent (walinuxagent) or cloud-init",
)
AGT_02 = Rule(
    "AGT-02",
    W,
    "waagent 2.2.53.1 or later, or AutoUpdate enabled",
    "update the agent package or set AutoUpdate.Enabled=y",
)
AGT_03 = Rule(
    "AGT-03",
    B,
    "waagent's Provisioning.Agent agrees with whether cloud-init is enabled",
    "set Provisioning.Agent=auto in /etc/waagent.conf",
)
AGT_04 = Rule(
    "AGT-04",
    W,
    "waagent.conf uses the provisioning keys of the installed agent version",
    "use Provisioning.Agent on agents >= 2.2.45",
)
AGT_05 = Rule(
    "AGT-05",
    B,
    "no /var/lib/waagent/provisioned (the agent would skip provisioning: no user, no key)",
    "waagent -force -deprovision+user, or delete /var/lib/waagent",
)
AGT_06 = Rule(
    "AGT-06",
    W,
    "no agent state from the build VM under /var/lib/waagent",
    "waagent -force -deprovision+user",
)
AGT_07 = Rule(
    "AGT-07",
    B,
    "cloud-init config parses and its datasource_list includes Azure",
    "write 'datasource_list: [ Azure ]' to /etc/cloud/cloud.cfg.d/91-azure_datasource.cfg "
    "and fix YAML errors",
)
AGT_08 = Rule(
    "AGT-08",
    B,
    "cloud-init is not disabled (cloud-init.disabled, cloud-init=disabled, ds-identify policy)",
    "rm /etc/cloud/cloud-init.disabled /etc/cloud/ds-identify.cfg; drop cloud-init=disabled",
)
AGT_11 = Rule(
    "AGT-11",
    W,
    "no cloud-init instance state from the build VM",
    "cloud-init clean --logs --seed",
)
AGT_13 = Rule(
    "AGT-13",
    A,
    "all cloud-init stages are enabled",
    "systemctl enable cloud-init-local cloud-init cloud-config cloud-final",
)
AGT_15 = Rule(
    "AGT-15",
    W,
    "66-azure-ephemeral.rules present when cloud-init manages the resource disk",
    "install the distribution's cloud-init package (it ships the rule)",
)
SWP_01 = Rule(
    "SWP-01",
    W,
    "no swap partition, swap entry or swap file on the OS disk",
    "remove the swap (and its fstab line); put swap on the resource disk",
)
SWP_02 = Rule(
    "SWP-02",
    W,
    "one owner of the resource disk: with cloud-init, ResourceDisk.Format=n and EnableSwap=n",
    "set ResourceDisk.Format=n and ResourceDisk.EnableSwap=n in /etc/waagent.conf",
)
SWP_05 = Rule(
    "SWP-05", W, "no leftover swap file under /mnt or /mnt/resource", "delete the swap file"
)
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
FS_01 = Rule(
    "FS-01",
    B,
    "/etc/fstab has no /dev/vd*, /dev/xvd* or /dev/hd* (they never exist on Azure)",
    "use UUID=, LABEL= or PARTUUID=",
)
FS_02 = Rule(
    "FS-02",
    W,
    "/etc/fstab has no /dev/sd* or /dev/nvme* (names move with disk order)",
    "use UUID=, LABEL= or PARTUUID=",
)
FS_03 = Rule(
    "FS-03",
    B,
    "every UUID=/LABEL=/PARTUUID= in fstab for /, /boot, /boot/efi, /usr, /var exists",
    "fix the ids in /etc/fstab",
)
FS_04 = Rule(
    "FS-04",
    W,
    "fstab parses and non-system entries carry nofail",
    "add nofail to data-disk and network mounts",
)
FS_05 = Rule(
    "FS-05",
    W,
    "no fstab entry mounts the resource disk by device name",
    "remove it; waagent or cloud-init mounts the resource disk",
)
SEC_01 = Rule(
    "SEC-01",
    W,
    "no account has a usable or empty password; root is locked",
    "passwd -l root (deprovision writes root:*LOCK*:...)",
)
SEC_02 = Rule(
    "SEC-02",
    W,
    "no leftover login users (UID >= 1000) from the build",
    "waagent -deprovision+user",
)
SEC_03 = Rule("SEC-03", W, "no /root/.ssh/authorized_keys", "rm /root/.ssh/authorized_keys")
SEC_04 = Rule("SEC-04", W, "shell histories absent or empty", "delete the history files")
SEC_05 = Rule(
    "SEC-05",
    W,
    "no SSH host keys in a generalized image (regenerated at provisioning)",
    "rm /etc/ssh/ssh_host_*_key* (waagent -deprovision does it)",
)
SEC_06 = Rule(
    "SEC-06",
    W,
    "sudoers has no 'Defaults targetpw' and no 'ALL ALL=(ALL) ALL'",
    "comment the lines out",
)
SEC_09 = Rule(
    "SEC-09", A, "/etc/machine-id empty or 'uninitialized'", "truncate -s0 /etc/machine-id"
)
SEC_11 = Rule(
    "SEC-11",
    W,
    "the image is generalized: no traces of the build VM remain",
    "cloud-init clean --logs --seed; waagent -force -deprovision+user; clear histories",
)
SSH_01 = Rule(
    "SSH-01",
    B,
    "OpenSSH server installed and enabled at boot",
    "install openssh-server and enable ssh.service / sshd.service",
)
SSH_02 = Rule(
    "SSH-02",
    A,
    "ClientAliveInterval between 30 and 235 (180 recommended)",
    "set ClientAliveInterval 180 in sshd_config",
)
SSH_03 = Rule(
    "SSH-03",
    A,
    "no forced PasswordAuthentication yes in a generalized image",
    "decide explicitly; prefer PasswordAuthentication no",
)
TIM_02 = Rule(
    "TIM-02",
    A,
    "chrony uses the Hyper-V PTP clock (refclock PHC /dev/ptp_hyperv)",
    "add 'refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0' to chrony.conf",
)
UDV_01 = Rule(
    "UDV-01",
    A,
    "Azure udev rules present (66-azure-storage.rules + 99-azure-product-uuid.rules, or "
    "azure-vm-utils)",
    "install waagent or azure-vm-utils",
)
UDV_02 = Rule(
    "UDV-02",
    A,
    "Hyper-V KVP daemon installed and enabled",
    "install hyperv-daemons",
)


AGT_09 = Rule(
    "AGT-09",
    A,
    "Azure datasource apply_network_config: False where the distribution's network stack owns "
    "the NIC",
    "add apply_network_config: False under datasource: Azure: in 91-azure_datasource.cfg",
)
AGT_10 = Rule(
    "AGT-10",
    A,
    "cloud_init_modules lists disk_setup and mounts (resource disk before cloud-init 23.x)",
    "add disk_setup and mounts to cloud_init_modules in /etc/cloud/cloud.cfg",
)
AGT_12 = Rule(
    "AGT-12",
    A,
    "cloud-init KVP telemetry: reporting: {telemetry: {type: hyperv}}",
    "write /etc/cloud/cloud.cfg.d/10-azure-kvp.cfg",
)
AGT_14 = Rule("AGT-14", A, "Python 3 present for waagent", "install python3")
CMD_06 = Rule(
    "CMD-06",
    A,
    "net.ifnames=0 on the command line (the network config expects eth0)",
    "add net.ifnames=0 to GRUB_CMDLINE_LINUX",
)
CMD_07 = Rule(
    "CMD-07",
    A,
    "GRUB on the serial console: GRUB_TERMINAL has serial, GRUB_SERIAL_COMMAND set, "
    "GRUB_TIMEOUT > 0",
    'set GRUB_TERMINAL="serial console", GRUB_SERIAL_COMMAND="serial --speed=115200", '
    "GRUB_TIMEOUT=10",
)
NET_07 = Rule(
    "NET-07",
    A,
    "NetworkManager leaves the accelerated-networking VF unmanaged",
    "add /etc/udev/rules.d/68-azure-sriov-nm-unmanaged.rules",
)
SEC_07 = Rule("SEC-07", W, "OMI absent or 1.6.8.1 or later (OMIGOD)", "update or remove omi")
SEC_08 = Rule("SEC-08", W, "OpenSSL 3.0 or later (or 1.1.1 / 1.0.2)", "update openssl")
SEC_10 = Rule(
    "SEC-10",
    A,
    "no subscription or credential material from the build",
    "subscription-manager unregister; remove /etc/zypp/credentials.d/*",
)
SW_01 = Rule("SW-01", A, "python3 3.9 or later", "update python3")
SWP_04 = Rule(
    "SWP-04",
    W,
    "cloud-init swap mounts carry nofail and x-systemd.requires=cloud-init.service",
    "fix the mount options in the cloud-init swap config",
)
TIM_01 = Rule("TIM-01", W, "hv_utils available (VMICTimeSync)", "use the distribution's kernel")
TIM_03 = Rule(
    "TIM-03",
    W,
    "a udev rule creates /dev/ptp_hyperv when chrony refers to it",
    "add /etc/udev/rules.d/99-ptp_hyperv.rules "
    '(SUBSYSTEM=="ptp", ATTR{clock_name}=="hyperv", SYMLINK+="ptp_hyperv")',
)
TIM_04 = Rule("TIM-04", A, "only one time daemon enabled", "disable the extra time daemons")


GEN_08 = Rule(
    "GEN-08",
    W,
    "remote NVMe: Gen2, nvme in the initramfs (or built in), nvme_core.io_timeout=240, "
    "fstab free of /dev/sd* and /dev/nvme*",
    "add nvme to the initramfs driver list, nvme_core.io_timeout=240 to the command line, "
    "UUID= in fstab; deploy as Gen2",
)


def _ver(v: str) -> tuple[int, ...]:
    v = v.split(":", 1)[-1]
    return tuple(int(x) for x in re.findall(r"\d+", v.split("-", 1)[0])[:4])


def default_kernel(g: GuestFacts) -> KernelInfo | None:
    for k in g.kernels:
        if k.version == g.default_kernel:
            return k
    return g.kernels[0] if g.kernels else None


def cloud_init_enabled(g: GuestFacts) -> bool:
    return g.cloud_init.installed and (
        g.units(*CLOUD_INIT_UNITS) or not any(u in g.units_masked for u in CLOUD_INIT_UNITS)
    )


def waagent_enabled(g: GuestFacts) -> bool:
    return g.waagent.installed and g.units(*WAAGENT_UNITS)


def provisioner(g: GuestFacts) -> str:
    """Who provisions a new VM: "waagent", "cloud-init", "none" (per waagent's own logic)."""
    ci = cloud_init_enabled(g)
    if g.waagent.installed:
        agent = (g.waagent.get("Provisioning.Agent") or "auto").lower()
        if agent == "auto":
            use_ci = g.waagent.get("Provisioning.UseCloudInit", "n") == "y"
            return "cloud-init" if (ci or use_ci) else "waagent"
        if agent in ("waagent", "cloud-init"):
            return agent
        return "none"  # disabled
    return "cloud-init" if ci else "none"


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    if g.os.kind != "linux":
        return []
    out: list[Finding] = []
    out += _kernel(g)
    out += _cmdline(facts, ctx)
    out += _agents(g, ctx)
    out += _swap(facts, ctx)
    out += _network(g, ctx)
    out += _fstab(facts)
    out += _accounts(g, ctx)
    out += _ssh_time_udev(g, ctx)
    out += _extras(g)
    if ctx.nvme:
        out.append(_nvme(facts, ctx))
    return out


def _nvme(facts: ImageFacts, ctx: CheckContext) -> Finding:
    g = facts.guest
    problems = []
    if ctx.generation == "1":
        problems.append(ev("--generation", "remote NVMe needs Gen2"))
    k = default_kernel(g)
    if k is not None and not k.built_in("nvme"):
        if k.initramfs_modules is None:
            return GEN_08.unreadable(k.initramfs_error or "no initramfs listing")
        if "nvme" not in k.initramfs_modules:
            problems.append(ev(k.initramfs or "/boot", "nvme not in the initramfs"))
    if g.cmdline.value("nvme_core.io_timeout") != "240":
        problems.append(ev(g.cmdline.where or "boot config", "nvme_core.io_timeout=240 absent"))
    problems += [
        ev(e.where, e.spec) for e in g.fstab or () if re.match(r"^/dev/(sd[a-z]|nvme\d)", e.spec)
    ]
    return GEN_08.check(not problems, *problems or (ev("initramfs, cmdline, fstab", "ready"),))


def _extras(g: GuestFacts) -> list[Finding]:
    """The catalogue's remaining Linux warnings and advice (packages, time, cloud-init)."""
    out = []
    pk = g.packages or {}
    ci = g.cloud_init
    if ci.installed and ci.config_files:
        # cloud-init YAML is untrusted: anything may sit where a list is expected.
        mods = [
            str(m[0] if isinstance(m, list) else m)
            for m in _as_list(ci.merged.get("cloud_init_modules"))
            if isinstance(m, str) or (isinstance(m, list) and m)
        ]
        if mods:
            lack = [m for m in ("disk_setup", "mounts") if m not in mods]
            out.append(
                AGT_10.check(
                    not lack,
                    ev("/etc/cloud/cloud.cfg", "missing: " + " ".join(lack) if lack else "present"),
                )
            )
        rep = ci.merged.get("reporting")
        ok = isinstance(rep, dict) and any(
            isinstance(v, dict) and v.get("type") == "hyperv" for v in rep.values()
        )
        out.append(AGT_12.check(ok, ev("/etc/cloud/cloud.cfg.d", "reporting telemetry hyperv")))
        if g.os.family in ("rhel", "suse", "ora"):
            out.append(
                AGT_09.check(
                    ci.apply_network_config is False,
                    ev(
                        ci.datasource_where or "/etc/cloud/cloud.cfg.d",
                        f"apply_network_config: {ci.apply_network_config}",
                    ),
                )
            )
        swaps = [
            m
            for m in _as_list(ci.merged.get("mounts"))
            if isinstance(m, list) and len(m) > 3 and "swap" in str(m[2])
        ]
        for m in swaps:
            opts = str(m[3])
            ok = "nofail" in opts and "x-systemd.requires=cloud-init.service" in opts
            out.append(SWP_04.check(ok, ev("cloud-init mounts", " ".join(map(str, m)))))
    if g.waagent.installed:
        ok = "/usr/bin/python3" in g.present or "python3" in pk
        out.append(AGT_14.check(ok, ev("/usr/bin/python3", "present" if ok else "absent")))
    if g.os.family in ("rhel", "ora") and g.cmdline.args is not None:
        out.append(
            CMD_06.check(g.cmdline.has("net.ifnames=0"), ev(g.cmdline.where, "net.ifnames=0"))
        )
    grub = g.files.get("/etc/default/grub")
    if grub is not None:
        kv = _shell_vars(grub)
        timeout = kv.get("GRUB_TIMEOUT", "5")
        ok = "serial" in kv.get("GRUB_TERMINAL", "") + kv.get("GRUB_TERMINAL_OUTPUT", "")
        ok = ok and bool(kv.get("GRUB_SERIAL_COMMAND")) and timeout.isdigit() and int(timeout) > 0
        out.append(
            CMD_07.check(
                ok,
                ev(
                    "/etc/default/grub",
                    f"GRUB_TERMINAL={kv.get('GRUB_TERMINAL', '')!r}, timeout {timeout}",
                ),
            )
        )
    if "/usr/sbin/NetworkManager" in g.present or "network-manager" in pk:
        ok = (
            bool(
                {"68-azure-sriov-nm-unmanaged.rules", "10-azure-unmanaged-sriov.rules"}
                & g.udev_rules
            )
            or "/etc/NetworkManager/conf.d/99-azure-unmanaged-devices.conf" in g.present
        )
        out.append(NET_07.check(ok, ev("/etc/udev/rules.d", "VF unmanaged" if ok else "absent")))
    if "omi" in pk:
        out.append(
            SEC_07.check(
                _ver(pk["omi"]) >= (1, 6, 8, 1), ev("/var/lib/dpkg/status", f"omi {pk['omi']}")
            )
        )
    for name in ("openssl", "libssl3", "libssl1.1"):
        if name in pk:
            v = _ver(pk[name])
            ok = v >= (3, 0) or v[:3] in ((1, 1, 1), (1, 0, 2))
            out.append(SEC_08.check(ok, ev("/var/lib/dpkg/status", f"{name} {pk[name]}")))
            break
    creds = [
        p for p in ("/etc/pki/consumer/cert.pem", "/etc/pki/consumer/key.pem") if p in g.present
    ] + [p for p in g.waagent_state if p.endswith(".prv")]
    out.append(SEC_10.check(not creds, *(ev(p) for p in creds)))
    if "python3" in pk:
        out.append(
            SW_01.check(
                _ver(pk["python3"]) >= (3, 9),
                ev("/var/lib/dpkg/status", f"python3 {pk['python3']}"),
            )
        )
    k = default_kernel(g)
    if k is not None and k.available("hv_utils") is not None:
        out.append(
            TIM_01.check(bool(k.available("hv_utils")), ev(f"/lib/modules/{k.version}", "hv_utils"))
        )
    if g.chrony_refclock_ptp:
        out.append(
            TIM_03.check(
                g.ptp_hyperv_rule,
                ev(
                    "udev rules.d",
                    "ptp_hyperv rule " + ("present" if g.ptp_hyperv_rule else "absent"),
                ),
            )
        )
    daemons = {
        "chrony": ("chrony.service", "chronyd.service"),
        "timesyncd": ("systemd-timesyncd.service",),
        "ntpd": ("ntp.service", "ntpd.service", "ntpsec.service"),
    }
    on = [n for n, units in daemons.items() if g.units(*units)]
    out.append(TIM_04.check(len(on) <= 1, ev("/etc/systemd/system", ", ".join(on) or "none")))
    return out


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _shell_vars(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Z_]+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip().strip("\"'")
    return out


def hv_initramfs_finding(g: GuestFacts, rule: Rule) -> Finding:
    """KRN-02 (and the distro rules that restate it): hv_vmbus + hv_storvsc at early boot."""
    why = blocked(g, "kernel")
    if why:
        return rule.unreadable(why)
    k = default_kernel(g)
    if k is None:
        return rule.failed(ev("/lib/modules, /boot", "no kernel found"))
    where = f"/boot/config-{k.version}" if k.config is not None else f"/lib/modules/{k.version}"
    need = [m for m in ("hv_vmbus", "hv_storvsc") if not k.built_in(m)]
    if not need:
        return rule.passed(ev(where, "hv_vmbus and hv_storvsc built in"))
    if k.initramfs is None and g.os.family == "flat":
        return rule.unreadable("Flatcar links its initramfs into the kernel image; not read")
    if k.initramfs is None:
        return rule.failed(ev("/boot", f"no initramfs for kernel {k.version}"))
    if k.initramfs_error:
        return rule.unreadable(k.initramfs_error)
    if k.initramfs_modules is None:
        return rule.unreadable(f"{k.initramfs}: not read")
    missing = [m for m in need if m not in k.initramfs_modules]
    detail = f"missing: {', '.join(missing)}" if missing else f"{', '.join(need)} present"
    return rule.check(not missing, ev(k.initramfs, detail), kernel=k.version)


def _kernel(g: GuestFacts) -> list[Finding]:
    why = blocked(g, "kernel")
    rules = (KRN_01, KRN_02, KRN_03, KRN_04, KRN_06, KRN_07, KRN_08)
    if why:
        return [r.unreadable(why) for r in rules]
    k = default_kernel(g)
    if k is None:
        return [KRN_01.failed(ev("/lib/modules, /boot", "no kernel found"))]
    out = []
    where = f"/boot/config-{k.version}" if k.config is not None else f"/lib/modules/{k.version}"
    avail = {m: k.available(m) for m in ("hv_vmbus", "hv_storvsc", "hv_netvsc")}
    if None in avail.values():
        out.append(KRN_01.unreadable(f"kernel {k.version}: no config or module lists"))
    else:
        missing = [m for m, ok in avail.items() if not ok]
        out.append(
            KRN_01.check(
                not missing,
                ev(where, f"missing: {', '.join(missing)}" if missing else "all three present"),
                kernel=k.version,
            )
        )
    need_initrd = [m for m in ("hv_vmbus", "hv_storvsc") if not k.built_in(m)]
    net_builtin = k.built_in("hv_netvsc")
    out.append(hv_initramfs_finding(g, KRN_02))
    if net_builtin:
        out.append(KRN_03.passed(ev(where, "hv_netvsc built in")))
    elif k.initramfs_modules is not None and k.initramfs:
        ok = "hv_netvsc" in k.initramfs_modules
        out.append(
            KRN_03.check(ok, ev(k.initramfs, "hv_netvsc " + ("present" if ok else "absent")))
        )
    elif k.initramfs_error:
        out.append(KRN_03.unreadable(k.initramfs_error))
    if not need_initrd:
        out.append(KRN_04.passed(ev(where, "built in")))
    else:
        lines = list(g.initramfs_config)
        ok = any("hv_" in loc.value or "MODULES=most" in loc.value for loc in lines)
        evs = [ev_loc(loc) for loc in lines[:3]] or [ev("/etc", "no driver list persisted")]
        out.append(KRN_04.check(ok, *evs))
    extras = [m for m in ("hv_utils", "hv_balloon") if k.available(m) is False]
    if k.available("hv_utils") is not None:
        out.append(
            KRN_06.check(not extras, ev(where, f"missing: {', '.join(extras)}" if extras else "ok"))
        )
    for rule, mod in ((KRN_07, "vfat"), (KRN_08, "udf")):
        sev = rule.severity
        if mod == "udf" and provisioner(g) == "cloud-init":
            ci_ver = (g.packages or {}).get("cloud-init")
            if ci_ver is None or _ver(ci_ver) >= (21, 2):
                sev = Severity.warning
        off = g.modprobe_disabled.get(mod)
        if off is not None:
            out.append(rule.failed(ev_loc(off), severity=sev))
        elif k.available(mod) is False:
            out.append(rule.failed(ev(where, f"{mod} not built"), severity=sev))
        elif k.available(mod) is None:
            out.append(rule.unreadable(f"kernel {k.version}: no config or module lists"))
        else:
            f = rule.passed(ev(where, f"{mod} available, not disabled"))
            out.append(f)
    kv = _ver(k.version)
    if kv:
        out.append(
            KRN_09.check(kv >= (2, 6, 37) or g.cmdline.has("numa=off"), ev(where, k.version))
        )
    if k.config is not None:
        pci = k.config.get("CONFIG_PCI_HYPERV") in ("y", "m") or k.available("pci_hyperv")
        out.append(KRN_10.check(bool(pci), ev(where, "CONFIG_PCI_HYPERV")))
        miss = [s for s in ("CONFIG_WATCHDOG", "CONFIG_CIFS") if k.config.get(s) not in ("y", "m")]
        out.append(KRN_11.check(not miss, ev(where, ", ".join(miss) or "both enabled")))
    return out


def _cmdline(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    why = blocked(g, "cmdline")
    if why:
        return [CMD_01.unreadable(why), CMD_10.unreadable(why)]
    c = g.cmdline
    if c.args is None:
        return [
            CMD_01.unreadable("no boot loader configuration found (grub.cfg, BLS, kernel/cmdline)"),
            CMD_10.unreadable("no boot loader configuration found"),
        ]
    out = []
    where = c.where
    line = " ".join(c.args)
    arm = g.arch is not None and g.arch.value == "aarch64"
    console = "console=ttyAMA0" if arm else "console=ttyS0"
    sev = Severity.blocker if ctx.marketplace else None
    if c.has(console):
        out.append(CMD_01.passed(ev(where, line)))
    else:
        out.append(CMD_01.failed(ev(where, line), severity=sev))
    out.append(CMD_02.check(c.has("earlyprintk=ttyS0") or arm, ev(where, line)))
    delay = c.value("rootdelay")
    out.append(CMD_03.check(not (delay and delay.isdigit() and int(delay) >= 60), ev(where, line)))
    bad = [a for a in c.args if a in ("libata.atapi_enabled=0", "reserve=0x1f0,0x8")]
    out.append(CMD_04.check(not bad, ev(where, " ".join(bad) or line)))
    noisy = [a for a in c.args if a in ("rhgb", "quiet", "splash") or a.startswith("splash=")]
    out.append(CMD_05.check(not noisy, ev(where, " ".join(noisy) or line)))
    if c.configured is not None:
        ignore = {"$kernelopts", "$tuned_params", "${extra_cmdline}"}
        missing = [a for a in c.configured if a not in c.args and a not in ignore]
        e = ev(c.configured_where, f"not in {where}: {' '.join(missing)}" if missing else "same")
        out.append(CMD_08.check(not missing, e))
    root = c.value("root")
    if root is None:
        if g.os.family != "flat":
            out.append(CMD_10.failed(ev(where, "no root= argument")))
    else:
        out.append(_root_resolves(facts, root, where))
    return out


def _id_known(facts: ImageFacts, spec: str) -> bool | None:
    """Whether UUID=/LABEL=/PARTUUID= spec names something on the disk; None if unknowable."""
    key, _, val = spec.partition("=")
    key = key.upper()
    if key not in ("UUID", "LABEL", "PARTUUID", "PARTLABEL"):
        return None
    if not facts.fs_ids:
        return None
    val = val.strip("\"'")
    if key in ("UUID", "PARTUUID"):
        val = val.lower()
    return f"{key}={val}" in facts.fs_ids


def _root_resolves(facts: ImageFacts, root: str, where: str) -> Finding:
    spec = root
    for prefix in ("/dev/disk/by-uuid/", "/dev/disk/by-label/", "/dev/disk/by-partuuid/"):
        if root.startswith(prefix):
            kind = {"uuid": "UUID", "label": "LABEL", "partuuid": "PARTUUID"}[
                prefix.split("by-")[1].rstrip("/")
            ]
            spec = f"{kind}={root[len(prefix) :]}"
    if "=" in spec:
        known = _id_known(facts, spec)
        if known is None:
            return CMD_10.unreadable(f"filesystem ids of this disk not known ({root})")
        return CMD_10.check(known, ev(where, f"root={root}"))
    if root.startswith(("/dev/mapper/", "/dev/disk/by-id/dm-")) or re.match(
        r"^/dev/[\w-]+/[\w-]+$", root
    ):
        return CMD_10.unreadable(f"root={root} is a device-mapper/LVM name; LVM is not read")
    m = re.match(r"^/dev/(sd[a-z]|nvme\d+n\d+p?|vd[a-z]|xvd[a-z]|hd[a-z])(\d+)$", root)
    if m:
        n = int(m.group(2))
        on_azure = not m.group(1).startswith(("vd", "xvd", "hd"))
        exists = any(p.index == n for p in facts.disk.partitions)
        return CMD_10.check(on_azure and exists, ev(where, f"root={root}"))
    return CMD_10.failed(ev(where, f"root={root} cannot be resolved"))


def _agents(g: GuestFacts, ctx: CheckContext) -> list[Finding]:
    out: list[Finding] = []
    why = blocked(g, "waagent", "cloud-init", "units")
    if why:
        return [r.unreadable(why) for r in (AGT_01, AGT_03, AGT_05, AGT_07, AGT_08)]
    wa, ci = g.waagent, g.cloud_init
    prov = provisioner(g)
    ci_on = cloud_init_enabled(g)
    wa_on = waagent_enabled(g)
    azure_ds = ci.datasource_list is None or "Azure" in ci.datasource_list
    desc = (
        f"waagent {'installed' if wa.installed else 'absent'}"
        f"{' (enabled)' if wa_on else ''}; cloud-init {'installed' if ci.installed else 'absent'}"
        f"{' (enabled)' if ci_on else ''}; provisioning by {prov}"
    )
    if ctx.generalized:
        ok = (prov == "waagent" and wa_on) or (
            prov == "cloud-init" and ci_on and azure_ds and not ci.disabled_marker
        )
        if g.os.family == "flat":
            ok = True  # Flatcar: Ignition + waagent, checked by FLAT-*
        out.append(
            AGT_01.check(ok, ev(wa.where or ci.where or "/usr/sbin", desc), provisioner=prov)
        )
    else:
        out.append(AGT_01.not_applicable("specialized disk: no provisioning"))
    if wa.installed:
        if wa.version:
            auto = (
                wa.get("AutoUpdate.Enabled") or wa.get("AutoUpdate.UpdateToLatestVersion") or "y"
            ).lower()
            ok = _ver(wa.version) >= (2, 2, 53, 1) or auto != "n"
            out.append(AGT_02.check(ok, ev(wa.where, f"version {wa.version}, AutoUpdate {auto}")))
        agent = wa.get("Provisioning.Agent")
        conf_ev = (
            ev(wa.conf["Provisioning.Agent"].where, f"Provisioning.Agent={agent}")
            if agent
            else ev("/etc/waagent.conf", "Provisioning.Agent not set (auto)")
        )
        a = (agent or "auto").lower()
        if a == "waagent" and ci_on:
            out.append(
                AGT_03.failed(
                    conf_ev,
                    fix="set Provisioning.Agent=auto or disable "
                    "cloud-init (waagent aborts when cloud-init is enabled)",
                )
            )
        elif a == "cloud-init" and not ci_on:
            out.append(AGT_03.failed(conf_ev))
        elif a == "disabled" and ctx.generalized:
            out.append(
                AGT_03.failed(
                    conf_ev,
                    fix="Provisioning.Agent=disabled suits specialized disks only; set auto",
                )
            )
        elif a not in ("auto", "waagent", "cloud-init", "disabled"):
            out.append(AGT_03.failed(conf_ev))
        else:
            out.append(AGT_03.passed(conf_ev))
        legacy = [k for k in ("Provisioning.Enabled", "Provisioning.UseCloudInit") if k in wa.conf]
        if legacy and wa.version and _ver(wa.version) >= (2, 2, 45) and not agent:
            out.append(AGT_04.failed(*(ev_loc(wa.conf[k]) for k in legacy)))
    if ctx.generalized:
        marker = "/var/lib/waagent/provisioned"
        present = marker in g.waagent_state
        out.append(AGT_05.check(not present, ev(marker, "present" if present else "absent")))
        traces = [p for p in g.waagent_state if WAAGENT_TRACES.search(p)]
        out.append(AGT_06.check(not traces, *(ev(p) for p in traces[:5])))
        out.append(AGT_11.check(not g.cloud_state, *(ev(p) for p in g.cloud_state[:5])))
    else:
        for r in (AGT_05, AGT_06, AGT_11):
            out.append(r.not_applicable("specialized disk keeps its agent state"))
    if ci.installed and prov != "waagent":
        if ci.yaml_errors:
            out.append(AGT_07.failed(*(ev(e.where, e.value) for e in ci.yaml_errors)))
        elif ci.datasource_list is None:
            out.append(
                AGT_07.passed(
                    ev(
                        "/etc/cloud/cloud.cfg",
                        "no datasource_list: default list includes Azure; [ Azure ] is recommended",
                    )
                )
            )
        else:
            out.append(
                AGT_07.check(
                    "Azure" in ci.datasource_list,
                    ev(ci.datasource_where, f"datasource_list: {list(ci.datasource_list)}"),
                )
            )
        off = []
        if ci.disabled_marker:
            off.append(ev("/etc/cloud/cloud-init.disabled", "present"))
        if g.cmdline.has("cloud-init=disabled"):
            off.append(ev(g.cmdline.where, "cloud-init=disabled"))
        if (
            ci.ds_identify is not None
            and "azure" not in ci.ds_identify.value.lower()
            and ("disabled" in ci.ds_identify.value.lower() or "datasource" in ci.ds_identify.value)
        ):
            off.append(ev_loc(ci.ds_identify))
        masked = [u for u in CLOUD_INIT_UNITS if u in g.units_masked]
        off += [ev(f"/etc/systemd/system/{u}", "masked") for u in masked]
        out.append(AGT_08.check(not off, *off or (ev("/etc/cloud", "not disabled"),)))
        if ctx.generalized and prov == "cloud-init":
            stages = {
                "local": ("cloud-init-local.service",),
                "network": ("cloud-init.service", "cloud-init-network.service"),
                "config": ("cloud-config.service",),
                "final": ("cloud-final.service",),
            }
            missing = [s for s, units in stages.items() if not g.units(*units)]
            if g.units("cloud-init.target") and missing:
                missing = []  # stages pulled in by cloud-init.target's own Wants=
            out.append(
                AGT_13.check(
                    not missing, ev("/etc/systemd/system", ", ".join(missing) or "all enabled")
                )
            )
            rule = "66-azure-ephemeral.rules"
            out.append(AGT_15.check(rule in g.udev_rules, ev("udev rules.d", rule)))
    return out


def _swap(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    out = []
    sev = Severity.blocker if ctx.marketplace else None
    found = []
    for p in facts.disk.partitions:
        if p.is_swap:
            found.append(ev("partition table", f"partition {p.index} is swap ({p.type})"))
    for e in g.fstab or ():
        if e.fstype == "swap":
            found.append(ev(e.where, f"{e.spec} {e.mountpoint} swap"))
    found += [ev(u, "swap unit") for u in g.swap_units]
    found += [ev(f, "swap file") for f in g.swap_files if not f.startswith("/mnt/")]
    why = blocked(g, "fstab", "swap")
    if why and not found:
        out.append(SWP_01.unreadable(why))
    elif found:
        out.append(SWP_01.failed(*found, severity=sev))
    else:
        out.append(SWP_01.passed(ev("partition table, /etc/fstab", "no swap")))
    mnt = [f for f in g.swap_files if f.startswith("/mnt/")]
    out.append(SWP_05.check(not mnt, *(ev(f) for f in mnt)))
    if g.waagent.installed and provisioner(g) == "cloud-init":
        fmt = g.waagent.get("ResourceDisk.Format", "y")
        swp = g.waagent.get("ResourceDisk.EnableSwap", "n")
        ok = (fmt or "").lower() == "n" and (swp or "").lower() == "n"
        out.append(
            SWP_02.check(
                ok, ev("/etc/waagent.conf", f"ResourceDisk.Format={fmt}, EnableSwap={swp}")
            )
        )
    return out


def _network(g: GuestFacts, ctx: CheckContext) -> list[Finding]:
    why = blocked(g, "network")
    if why:
        return [NET_01.unreadable(why), NET_03.unreadable(why)]
    n = g.network
    out = []
    renders = cloud_init_enabled(g) and g.cloud_init.network_disabled is None
    if n.dhcp:
        out.append(NET_01.passed(*(ev_loc(x) for x in n.dhcp[:3])))
    elif renders:
        out.append(NET_01.passed(ev(g.cloud_init.where, "cloud-init renders DHCP network config")))
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
    if eth and g.cmdline.args is not None:
        out.append(
            NET_06.check(
                g.cmdline.has("net.ifnames=0") or g.cmdline.has("net.ifnames=0"),
                ev_loc(eth[0]),
                ev(
                    g.cmdline.where,
                    "net.ifnames=0 " + ("present" if g.cmdline.has("net.ifnames=0") else "absent"),
                ),
            )
        )
    if ctx.generalized:
        out.append(
            NET_08.check(
                not g.resolv_conf, ev("/etc/resolv.conf", "present" if g.resolv_conf else "absent")
            )
        )
        out.append(NET_09.check(not g.leases, *(ev(p) for p in g.leases[:5])))
    return out


SYSTEM_MOUNTS = (
    "/",
    "/boot",
    "/boot/efi",
    "/efi",
    "/usr",
    "/var",
    "/home",
    "/tmp",
    "/var/log",
    "/opt",
    "/srv",
)
PSEUDO_FS = (
    "proc",
    "sysfs",
    "tmpfs",
    "devpts",
    "swap",
    "none",
    "devtmpfs",
    "efivarfs",
    "securityfs",
    "cgroup",
    "cgroup2",
    "debugfs",
    "hugetlbfs",
    "mqueue",
    "bpf",
)


def _fstab(facts: ImageFacts) -> list[Finding]:
    g = facts.guest
    why = blocked(g, "fstab")
    if why:
        return [FS_01.unreadable(why), FS_03.unreadable(why)]
    if g.fstab is None:
        if g.os.family == "flat":
            return []
        return [
            FS_01.passed(ev("/etc/fstab", "absent")),
            FS_04.failed(
                ev("/etc/fstab", "absent"), fix="write /etc/fstab with the root filesystem by UUID"
            ),
        ]
    out = []
    never = [e for e in g.fstab if re.match(r"^/dev/(vd|xvd|hd)[a-z]", e.spec)]
    out.append(FS_01.check(not never, *(ev(e.where, e.spec) for e in never)))
    unstable = [e for e in g.fstab if re.match(r"^/dev/(sd[a-z]|nvme\d)", e.spec)]
    out.append(FS_02.check(not unstable, *(ev(e.where, e.spec) for e in unstable)))
    system = [e for e in g.fstab if e.mountpoint in ("/", "/boot", "/boot/efi", "/usr", "/var")]
    unknown, unknowable = [], False
    for e in system:
        known = _id_known(facts, e.spec)
        if known is None and "=" in e.spec:
            unknowable = True
        elif known is False:
            unknown.append(e)
    if unknown:
        out.append(FS_03.failed(*(ev(e.where, f"{e.spec} not found on the disk") for e in unknown)))
    elif unknowable:
        out.append(FS_03.unreadable("filesystem ids of this disk not known"))
    else:
        out.append(FS_03.passed(*(ev(e.where, e.spec) for e in system[:3])))
    others = [
        e
        for e in g.fstab
        if e.mountpoint not in SYSTEM_MOUNTS
        and e.fstype not in PSEUDO_FS
        and "nofail" not in e.options
        and "noauto" not in e.options
    ]
    problems = [ev(x.where, f"unparsable: {x.value}") for x in g.fstab_errors]
    problems += [ev(e.where, f"{e.mountpoint} without nofail") for e in others]
    out.append(FS_04.check(not problems, *problems))
    res = [
        e
        for e in g.fstab
        if e.mountpoint in ("/mnt", "/mnt/resource") and e.spec.startswith("/dev/sd")
    ]
    out.append(FS_05.check(not res, *(ev(e.where, e.spec) for e in res)))
    return out


def _accounts(g: GuestFacts, ctx: CheckContext) -> list[Finding]:
    why = blocked(g, "accounts")
    if why:
        return [SEC_01.unreadable(why)]
    out = []
    bad = [a for a in g.accounts if a.password in ("hash", "empty")]
    root = next((a for a in g.accounts if a.name == "root"), None)
    evs = [ev(a.where, f"{a.name}: {a.password} password") for a in bad]
    if root is not None and root.password == "none":
        evs.append(ev(root.where, "root has no shadow entry"))
    out.append(SEC_01.check(not evs, *evs or (ev("/etc/shadow", "all locked"),)))
    if ctx.generalized:
        humans = [a for a in g.accounts if 1000 <= a.uid < 65534 and a.can_login]
        out.append(SEC_02.check(not humans, *(ev(a.where, a.name) for a in humans)))
        keys = g.root_authorized_keys
        ok = keys is None or not keys.value or "Please login as the user" in keys.value
        out.append(
            SEC_03.check(ok, ev(keys.where, "present") if keys else ev("/root/.ssh", "no keys"))
        )
        full = [h for h in g.histories if h.value != "0"]
        out.append(SEC_04.check(not full, *(ev(h.where, f"{h.value} bytes") for h in full)))
        out.append(SEC_05.check(not g.ssh_host_keys, *(ev(k) for k in g.ssh_host_keys[:4])))
        mid = g.machine_id
        out.append(
            SEC_09.check(mid in (None, "", "uninitialized"), ev("/etc/machine-id", mid or "empty"))
        )
        traces = []
        if "/var/lib/waagent/provisioned" in g.waagent_state:
            traces.append("AGT-05")
        if any(WAAGENT_TRACES.search(p) for p in g.waagent_state):
            traces.append("AGT-06")
        if g.cloud_state:
            traces.append("AGT-11")
        if [h for h in g.histories if h.value != "0"]:
            traces.append("SEC-04")
        if g.ssh_host_keys:
            traces.append("SEC-05")
        if g.leases:
            traces.append("NET-09")
        out.append(
            SEC_11.check(not traces, ev("aggregate", ", ".join(traces) or "clean"), traces=traces)
        )
    out.append(SEC_06.check(not g.sudoers, *(ev_loc(x) for x in g.sudoers)))
    return out


def _ssh_time_udev(g: GuestFacts, ctx: CheckContext) -> list[Finding]:
    out = []
    why = blocked(g, "ssh", "units")
    if why:
        out.append(SSH_01.unreadable(why))
    elif g.os.family != "flat":
        detail = f"sshd {'installed' if g.sshd_installed else 'absent'}, " + (
            "enabled" if g.sshd_enabled else "not enabled"
        )
        out.append(SSH_01.check(g.sshd_installed and g.sshd_enabled, ev("/usr/sbin/sshd", detail)))
    cai = g.sshd_config.get("clientaliveinterval")
    sev = Severity.warning if ctx.marketplace else None
    if cai is None:
        out.append(
            SSH_02.failed(ev("/etc/ssh/sshd_config", "ClientAliveInterval not set"), severity=sev)
        )
    else:
        ok = cai.value.isdigit() and 30 <= int(cai.value) <= 235
        f = SSH_02.passed(ev_loc(cai)) if ok else SSH_02.failed(ev_loc(cai), severity=sev)
        out.append(f)
    pa = g.sshd_config.get("passwordauthentication")
    if ctx.generalized and pa is not None:
        out.append(SSH_03.check(pa.value.lower() != "yes", ev_loc(pa)))
    if g.chrony_refclock_ptp is not None:
        out.append(TIM_02.check(g.chrony_refclock_ptp, ev("chrony.conf", "refclock PHC")))
    azure = {"66-azure-storage.rules", "99-azure-product-uuid.rules"}
    ok = azure <= g.udev_rules or "80-azure-disk.rules" in g.udev_rules
    out.append(
        UDV_01.check(ok, ev("udev rules.d", ", ".join(sorted(azure & g.udev_rules)) or "none"))
    )
    kvp = g.units("hv-kvp-daemon.service", "hypervkvpd.service", "hv_kvp_daemon.service")
    # Debian's hyperv-daemons starts the daemons from a udev rule when /dev/vmbus/hv_kvp appears.
    kvp = kvp or any("hyperv-daemons" in r or "hv_kvp" in r for r in g.udev_rules)
    out.append(
        UDV_02.check(
            kvp, ev("/etc/systemd/system", "KVP daemon " + ("enabled" if kvp else "not enabled"))
        )
    )
    return out
