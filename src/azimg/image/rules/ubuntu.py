"""Ubuntu rules (prerequisites.md §7.2, ``ID=ubuntu``)."""

from __future__ import annotations

from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev, ev_loc
from azimg.image.rules.agents import provisioner

UBU_01 = Rule(
    "UBU-01",
    W,
    "apt uses azure.archive.ubuntu.com with the -updates and -security pockets",
    "sed the archive and security hosts to azure.archive.ubuntu.com",
)
UBU_02 = Rule("UBU-02", A, "the Azure-tailored kernel (linux-azure)", "apt install linux-azure")
UBU_03 = Rule(
    "UBU-03",
    W,
    "cloud-init, walinuxagent, netplan.io and gdisk installed; walinuxagent.service enabled",
    "apt install cloud-init walinuxagent netplan.io gdisk; systemctl enable walinuxagent",
)
UBU_04 = Rule(
    "UBU-04",
    B,
    "cloud.cfg.d gives datasource_list: [ Azure ] (90_dpkg.cfg or equivalent)",
    "echo 'datasource_list: [ Azure ]' > /etc/cloud/cloud.cfg.d/90_dpkg.cfg",
)
UBU_05 = Rule(
    "UBU-05",
    W,
    "installer leftovers removed (curtin/subiquity cfg, ds-identify.cfg, /etc/netplan/*.yaml)",
    "delete the files",
)
UBU_06 = Rule(
    "UBU-06",
    W,
    "waagent.conf: Provisioning.Agent=auto, ResourceDisk.Format=n, ResourceDisk.EnableSwap=n",
    "set the three keys in /etc/waagent.conf",
)
UBU_07 = Rule(
    "UBU-07",
    W,
    "GRUB_CMDLINE_LINUX_DEFAULT has console=ttyS0,115200n8 and earlyprintk=ttyS0,115200",
    "edit /etc/default/grub.d/50-cloudimg-settings.cfg; update-grub",
)
UBU_08 = Rule(
    "UBU-08",
    W,
    "Gen2: the ESP has the fallback EFI/boot/bootx64.efi (a shim copy)",
    "copy EFI/ubuntu to EFI/boot and rename shimx64.efi to bootx64.efi",
)
UBU_09 = Rule(
    "UBU-09",
    A,
    "cloud.cfg.d has 90-azure.cfg (Azure mirrors) and 10-azure-kvp.cfg (KVP telemetry)",
    "write the two files",
)
UBU_10 = Rule(
    "UBU-10",
    A,
    "ClientAliveInterval 180 for Marketplace (cloud images ship 120)",
    "override in /etc/ssh/sshd_config.d/",
)
LEFTOVERS = (
    "/etc/cloud/cloud.cfg.d/50-curtin-networking.cfg",
    "/etc/cloud/cloud.cfg.d/curtin-preserve-sources.cfg",
    "/etc/cloud/cloud.cfg.d/99-installer.cfg",
    "/etc/cloud/cloud.cfg.d/subiquity-disable-cloudinit-networking.cfg",
)


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    if g.os.family != "ubu":
        return []
    out = []
    srcs = " ".join(s.value for s in g.packages.apt_sources)
    ok = "azure.archive.ubuntu.com" in srcs or "ports.ubuntu.com" in srcs
    ok = ok and "-updates" in srcs and "-security" in srcs
    out.append(UBU_01.check(ok, *(ev_loc(s) for s in g.packages.apt_sources[:3])))
    pk = g.packages.installed or {}
    if g.packages.installed is not None:
        azure_kernel = any(p.startswith(("linux-azure", "linux-image-azure")) for p in pk)
        out.append(UBU_02.check(azure_kernel, ev("/var/lib/dpkg/status", "linux-azure")))
        missing = [p for p in ("cloud-init", "walinuxagent", "netplan.io", "gdisk") if p not in pk]
        if not g.services.units("walinuxagent.service"):
            missing.append("walinuxagent.service enabled")
        out.append(UBU_03.check(not missing, ev("/var/lib/dpkg/status", ", ".join(missing))))
    why = blocked(g, "cloud-init")
    ci = g.agents.cloud_init
    if why:
        out.append(UBU_04.unreadable(why))
    elif ci.installed:
        ok = ci.datasource_list is not None and "Azure" in ci.datasource_list
        out.append(
            UBU_04.check(
                ok, ev(ci.datasource_where or "/etc/cloud/cloud.cfg.d", str(ci.datasource_list))
            )
        )
    left = [p for p in LEFTOVERS if p in ci.config_files]
    if ci.ds_identify is not None:
        left.append(ci.ds_identify.where)
    left += [x.where.split(":")[0] for x in g.network.dhcp if x.where.startswith("/etc/netplan")]
    out.append(UBU_05.check(not left, *(ev(p, "present") for p in sorted(set(left)))))
    if g.agents.waagent.installed:
        agent = (g.agents.waagent.get("Provisioning.Agent") or "auto").lower()
        fmt = (g.agents.waagent.get("ResourceDisk.Format") or "y").lower()
        swp = (g.agents.waagent.get("ResourceDisk.EnableSwap") or "n").lower()
        ok = agent in ("auto", "cloud-init") and fmt == "n" and swp == "n"
        if provisioner(g) == "waagent":
            ok = agent in ("auto", "waagent")
        out.append(
            UBU_06.check(ok, ev("/etc/waagent.conf", f"Agent={agent} Format={fmt} Swap={swp}"))
        )
    if facts.disk.esps:
        ok = "EFI/BOOT/BOOTX64.EFI" in facts.disk.esp_files
        out.append(UBU_08.check(ok, ev("ESP:/EFI/BOOT", ", ".join(facts.disk.esp_files) or "-")))
    names = {p.rsplit("/", 1)[-1] for p in ci.config_files}
    lack = [n for n in ("90-azure.cfg", "10-azure-kvp.cfg") if n not in names]
    out.append(UBU_09.check(not lack, ev("/etc/cloud/cloud.cfg.d", "missing: " + ", ".join(lack))))
    cai = g.accounts.sshd_config.get("clientaliveinterval")
    out.append(
        UBU_10.check(
            cai is not None and cai.value == "180",
            ev(cai.where if cai else "/etc/ssh/sshd_config", cai.value if cai else "not set"),
        )
    )
    cfg = g.boot.cmdline.configured or ()
    ok = any(a.startswith("console=ttyS0") for a in cfg) and any(
        a.startswith("earlyprintk=ttyS0") for a in cfg
    )
    out.append(
        UBU_07.check(ok, ev(g.boot.cmdline.configured_where or "/etc/default/grub", " ".join(cfg)))
    )
    return out
