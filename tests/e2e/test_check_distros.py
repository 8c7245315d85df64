"""Other distributions: root trees made here (os-release and the distribution's own config
files) in real XFS (RHEL, Oracle Linux — ``mkfs.xfs -p``) and ext4 (Ubuntu, SUSE, Flatcar —
``mkfs.ext4 -d``) filesystems on GPT disks. A correct tree has no blockers; each broken tree
names the distribution's blocker id. OpenBSD's FFS root is not readable: its rules say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from azimg.image.findings import Status
from tests.e2e.test_check_images import (
    BIOS_GUID,
    ESP_GUID,
    LINUX_GUID,
    MIB,
    _place,
    _run,
    blockers,
    check,
    make_disk,
    make_esp,
    make_fs,
)
from tests.unit.test_inspect import (
    GOOD_ARGS,
    HV_MODULES,
    KVER,
    ROOT_UUID,
    Link,
    grub_cfg,
    initramfs,
    make_root,
)

OPENBSD_GUID = "824CC7A0-36A8-11E3-890A-952519AD3F61"
UEK2 = "2.6.39-400.17.1.el6uek.x86_64"
NO_DPKG: dict[str, Any] = {
    "/var/lib/dpkg/status": None,
    "/etc/initramfs-tools/initramfs.conf": None,
    "/etc/initramfs-tools/modules": None,
}


def _rpm_family(os_release: str, agent_units: bool = True) -> dict[str, Any]:
    """RHEL-like layout: BLS entries, dracut initramfs name, NetworkManager keyfile, waagent
    handing provisioning to cloud-init."""
    files: dict[str, Any] = {
        **NO_DPKG,
        "/etc/os-release": os_release,
        "/var/lib/rpm/rpmdb.sqlite": b"SQLite format 3\0",
        "/boot/grub/grub.cfg": None,
        "/boot/grub2/grubenv": "saved_entry=abc-" + KVER + "\n",
        f"/boot/loader/entries/abc-{KVER}.conf": f"title Enterprise Linux\nversion {KVER}\n"
        f"linux /vmlinuz-{KVER}\ninitrd /initramfs-{KVER}.img\n"
        f"options root=UUID={ROOT_UUID} ro console=tty1 {GOOD_ARGS} net.ifnames=0\n",
        "/etc/default/grub": f'GRUB_TIMEOUT=10\nGRUB_CMDLINE_LINUX="console=tty1 {GOOD_ARGS} '
        'net.ifnames=0"\nGRUB_TERMINAL="serial console"\nENABLE_BLSCFG=true\n',
        f"/boot/initrd.img-{KVER}": None,
        "/etc/dracut.conf.d/azure.conf": 'add_drivers+=" hv_vmbus hv_netvsc hv_storvsc "\n',
        "/etc/fstab": f"UUID={ROOT_UUID} / xfs defaults 0 0\n"
        f"UUID=ABCD-1234 /boot/efi vfat umask=0077,shortname=winnt 0 2\n",
        "/usr/sbin/waagent": "#!/usr/bin/python3\n",
        "/etc/waagent.conf": "Provisioning.Agent=auto\nResourceDisk.Format=n\n"
        "ResourceDisk.EnableSwap=n\n",
        "/etc/NetworkManager/system-connections/eth0.nmconnection": "[connection]\nid=eth0\n"
        "[ipv4]\nmethod=auto\n",
        "/usr/bin/growpart": "#!/bin/sh\n",
        "/usr/sbin/gdisk": b"\x7fELF",
        "/usr/sbin/hypervkvpd": b"\x7fELF",
        "/etc/ssh/sshd_config": "ClientAliveInterval 180\nPasswordAuthentication no\n",
        "/etc/systemd/system/multi-user.target.wants/ssh.service": None,
        "/etc/systemd/system/multi-user.target.wants/sshd.service": Link("/x"),
        "/etc/systemd/system/multi-user.target.wants/waagent.service": Link("/x"),
        "/etc/systemd/system/multi-user.target.wants/hypervkvpd.service": Link("/x"),
        "/etc/systemd/system/multi-user.target.wants/hv-kvp-daemon.service": None,
    }
    return files


def _with_initramfs(tmp: Path, files: dict[str, Any], name: str, mods: tuple[str, ...]) -> None:
    files[name] = initramfs(tmp, mods)


def rhel(tmp: Path, **changes: Any) -> Path:
    files = _rpm_family(
        'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n'
    )
    mods = changes.pop("initrd_modules", HV_MODULES)
    _with_initramfs(tmp, files, f"/boot/initramfs-{KVER}.img", mods)
    files.update(changes)
    return make_root(tmp, **files)


def oracle(tmp: Path, **changes: Any) -> Path:
    files = _rpm_family(
        'NAME="Oracle Linux Server"\nID="ol"\nID_LIKE="fedora"\nVERSION_ID="8.10"\n'
    )
    files["/etc/udev/rules.d/75-persistent-net-generator.rules"] = Link("/dev/null")
    files["/lib/udev/rules.d/75-persistent-net-generator.rules"] = "# generator\n"
    _with_initramfs(tmp, files, f"/boot/initramfs-{KVER}.img", HV_MODULES)
    files.update(changes)
    return make_root(tmp, **files)


def suse(tmp: Path, **changes: Any) -> Path:
    files = _rpm_family('NAME="SLES"\nID="sles"\nID_LIKE="suse"\nVERSION_ID="15.6"\n')
    files.update(
        {
            "/etc/fstab": f"UUID={ROOT_UUID} / ext4 defaults 0 1\n"
            "UUID=ABCD-1234 /boot/efi vfat defaults 0 0\n",
            "/etc/NetworkManager/system-connections/eth0.nmconnection": None,
            "/etc/sysconfig/network/dhcp": 'DHCLIENT_SET_HOSTNAME="no"\n',
            "/etc/zypp/repos.d/SLES-Pool.repo": "[SLES-Pool]\nenabled=1\nautorefresh=1\n",
        }
    )
    mods = changes.pop("initrd_modules", HV_MODULES)
    _with_initramfs(tmp, files, f"/boot/initrd-{KVER}", mods)
    files.update(changes)
    return make_root(tmp, **files)


def ubuntu(tmp: Path, **changes: Any) -> Path:
    files: dict[str, Any] = {
        "/etc/os-release": 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n',
        "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg": None,
        "/etc/cloud/cloud.cfg.d/90_dpkg.cfg": "datasource_list: [ Azure ]\n",
        "/etc/apt/sources.list": "deb http://azure.archive.ubuntu.com/ubuntu/ jammy main\n"
        "deb http://azure.archive.ubuntu.com/ubuntu/ jammy-updates main\n"
        "deb http://azure.archive.ubuntu.com/ubuntu/ jammy-security main\n",
    }
    files.update(changes)
    return make_root(tmp, agent="both", **files)


def flatcar(tmp: Path, **changes: Any) -> Path:
    files: dict[str, Any] = {
        **NO_DPKG,
        "/etc/os-release": None,
        "/usr/lib/os-release": 'NAME="Flatcar Container Linux by Kinvolk"\nID=flatcar\n'
        "VERSION_ID=3975.2.1\n",
        "/etc/fstab": None,
        "/usr/bin/cloud-init": None,
        "/etc/cloud/cloud.cfg": None,
        "/boot/grub/grub.cfg": grub_cfg(f"{GOOD_ARGS} flatcar.oem.id=azure"),
        "/usr/share/oem/grub.cfg": 'set oem_id="azure"\n',
        "/usr/share/oem/bin/waagent": "#!/bin/sh\n",
        "/boot/flatcar/first_boot": "",
    }
    files.update(changes)
    return make_root(tmp, **files)


# (distro, builder, filesystem, changes, context, blocker rule that must fail or None)
CASES: list[tuple[str, Any, str, dict[str, Any], dict[str, Any], str | None]] = [
    ("ubuntu-good", ubuntu, "ext4", {}, {}, None),
    (
        "ubuntu-no-azure-datasource",
        ubuntu,
        "ext4",
        {"/etc/cloud/cloud.cfg.d/90_dpkg.cfg": "datasource_list: [ NoCloud, None ]\n"},
        {},
        "UBU-04",
    ),
    ("rhel-good", rhel, "xfs", {}, {}, None),
    (
        "rhel-waagent-formats-resource-disk",
        rhel,
        "xfs",
        {"/etc/waagent.conf": "Provisioning.Agent=auto\nResourceDisk.Format=y\n"},
        {},
        "RHEL-03",
    ),
    ("rhel-initramfs-without-hv", rhel, "xfs", {"initrd_modules": ("hv_netvsc",)}, {}, "RHEL-04"),
    (
        "rhel-7-without-dhcp-profile",
        rhel,
        "xfs",
        {
            "/etc/os-release": 'ID="rhel"\nVERSION_ID="7.9"\n',
            "/etc/NetworkManager/system-connections/eth0.nmconnection": None,
            "/etc/cloud/cloud.cfg.d/99-no-network.cfg": "network: {config: disabled}\n",
        },
        {},
        "RHEL-07",
    ),
    ("oracle-good", oracle, "xfs", {}, {}, None),
    (
        "oracle-uek2-kernel",
        oracle,
        "xfs",
        {
            f"/lib/modules/{UEK2}/modules.dep": "kernel/drivers/hv/hv_vmbus.ko:\n",
            f"/boot/loader/entries/abc-{KVER}.conf": None,
            f"/boot/loader/entries/abc-{UEK2}.conf": f"linux /vmlinuz-{UEK2}\noptions "
            f"root=UUID={ROOT_UUID} ro console=ttyS0\n",
        },
        {},
        "ORA-01",
    ),
    (
        "oracle-persistent-net-generator-active",
        oracle,
        "xfs",
        {"/etc/udev/rules.d/75-persistent-net-generator.rules": None},
        {},
        "ORA-04",
    ),
    (
        "oracle-waagent-keeps-provisioning",
        oracle,
        "xfs",
        {"/etc/waagent.conf": "Provisioning.Agent=disabled\nResourceDisk.Format=n\n"},
        {},
        "ORA-06",
    ),
    ("suse-good", suse, "ext4", {}, {}, None),
    ("suse-initrd-without-hv", suse, "ext4", {"initrd_modules": ()}, {}, "SUSE-02"),
    (
        "suse-no-cloud-init-handoff",
        suse,
        "ext4",
        {"/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg": "datasource_list: [ NoCloud ]\n"},
        {},
        "SUSE-07",
    ),
    ("flatcar-good", flatcar, "ext4", {}, {}, None),
    (
        "flatcar-no-azure-oem",
        flatcar,
        "ext4",
        {"/boot/grub/grub.cfg": grub_cfg(GOOD_ARGS), "/usr/share/oem/grub.cfg": None},
        {},
        "FLAT-02",
    ),
    (
        "flatcar-no-first-boot-marker",
        flatcar,
        "ext4",
        {"/boot/flatcar/first_boot": None},
        {},
        "FLAT-03",
    ),
]


@pytest.mark.parametrize(
    ("case", "build", "fs", "changes", "ctx", "rule"), CASES, ids=[c[0] for c in CASES]
)
def test_distribution_trees_on_real_filesystems(
    tmp_path: Path,
    case: str,
    build: Any,
    fs: str,
    changes: dict[str, Any],
    ctx: dict[str, Any],
    rule: str | None,
) -> None:
    disk = make_disk(tmp_path, build(tmp_path, **changes), fs=fs)
    r = check(disk, **ctx)
    assert r.root is not None and r.root.startswith(fs), r.root
    family = case.split("-")[0]
    ran = {f.rule.split("-")[0] for f in r.findings}
    expected = {
        "ubuntu": "UBU",
        "rhel": "RHEL",
        "oracle": "ORA",
        "suse": "SUSE",
        "flatcar": "FLAT",
    }[family]
    assert expected in ran, (case, sorted(ran))
    if rule is None:
        assert blockers(r) == set(), (case, [(f.rule, f.evidence) for f in r.blockers])
    else:
        assert rule in blockers(r), (case, sorted(blockers(r)))


def test_openbsd_ffs_root_rules_are_unreadable_and_gen2_is_refused(tmp_path: Path) -> None:
    disk = make_disk(
        tmp_path, None, bios_boot=False, esp=False, extra=((OPENBSD_GUID, 4 * 1024 * 1024, b""),)
    )
    r = check(disk, generation="2")
    by = {f.rule: f for f in r.findings}
    for rid in ("OBSD-01", "OBSD-03", "OBSD-04", "OBSD-05"):
        assert by[rid].status is Status.unreadable, by[rid]
        assert "needs" in by[rid].evidence[0].detail
    assert by["OBSD-02"].status is Status.failed
    assert "OBSD-02" in blockers(r)


FLATCAR_USR = "5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6"
FLATCAR_ROOT = "3884DD41-8582-4404-B9A8-E9B84F2DF50E"
FLATCAR_GRUB = """set oem_id="coreos"
set linux_console="console=tty0"
menuentry "Flatcar default" --id=flatcar {
  gptprio.next -d usr_device -u usr_uuid
  linux /flatcar/vmlinuz-a $linux_console flatcar.first_boot=detected flatcar.oem.id=${oem_id} \
mount.usr=PARTUUID=$usr_uuid
}
"""


def _tree(base: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        host = base / path.lstrip("/")
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_text(text)
    return base


@pytest.mark.parametrize("azure_oem", [True, False])
def test_flatcar_layout_usr_oem_and_esp_are_mounted(tmp_path: Path, azure_oem: bool) -> None:
    """Flatcar's GPT: EFI-SYSTEM (/boot), USR-A (/usr, holds os-release), OEM, nearly empty
    ROOT. The check must mount them where Flatcar does and read the OEM's GRUB variables."""
    usr = _tree(
        tmp_path / "usr-tree",
        {
            "/lib/os-release": "ID=flatcar\nVERSION_ID=3975.2.1\n",
            f"/lib/modules/{KVER}/modules.dep": "kernel/drivers/hv/hv_vmbus.ko:\n",
            "/lib/systemd/systemd": "",
        },
    )
    (usr / "lib" / "systemd" / "systemd").write_bytes(
        b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\0>\0" + b"\0" * 44
    )
    oem_vars = 'set oem_id="azure"\nset linux_console="console=ttyS0,115200n8"\n'
    oem = _tree(
        tmp_path / "oem-tree", {"/grub.cfg": oem_vars if azure_oem else "", "/bin/waagent": ""}
    )
    root = _tree(tmp_path / "root-tree", {"/etc/.keep": ""})
    usr_fs, usr_size = make_fs(
        tmp_path, usr, "ext4", uuid="7130c94a-213a-4e5a-8e26-6cce9662f132", name="usr"
    )
    oem_fs, oem_size = make_fs(
        tmp_path, oem, "ext4", uuid="1c3e5d7f-0000-4000-8000-000000000006", name="oem"
    )
    root_fs, root_size = make_fs(tmp_path, root, "ext4", uuid=ROOT_UUID, name="rootfs")
    esp = make_esp(tmp_path)
    grub = tmp_path / "grub.cfg"
    grub.write_text(FLATCAR_GRUB)
    marker = tmp_path / "first_boot"
    marker.write_text("")
    _run("mmd", "-i", esp, "::/flatcar", "::/flatcar/grub")
    _run("mcopy", "-i", esp, grub, "::/flatcar/grub/grub.cfg")
    _run("mcopy", "-i", esp, marker, "::/flatcar/first_boot")
    parts = [
        ("EFI-SYSTEM", ESP_GUID, 8 * MIB, esp),
        ("BIOS-BOOT", BIOS_GUID, MIB, None),
        ("USR-A", FLATCAR_USR, usr_size, usr_fs),
        ("OEM", LINUX_GUID, oem_size, oem_fs),
        ("ROOT", FLATCAR_ROOT, root_size, root_fs),
    ]
    disk = tmp_path / "flatcar.raw"
    with open(disk, "wb") as fh:
        fh.truncate(MIB + sum(p[2] for p in parts) + 2 * MIB)
    script, offset = ["label: gpt"], MIB
    for name, type_, size, _c in parts:
        script.append(f'start={offset // 512}, size={size // 512}, type={type_}, name="{name}"')
        offset += size
    _run("sfdisk", "-q", disk, input="\n".join(script).encode() + b"\n")
    offset = MIB
    for _n, _t, size, content in parts:
        if content is not None:
            _place(disk, content, offset)
        offset += size
    r = check(disk)
    by = {f.rule: f for f in r.findings}
    assert r.os == "flatcar 3975.2.1", r.os
    assert "mounted /boot, /oem, /usr, /usr/share/oem" in r.notes
    assert by["FLAT-03"].status is Status.passed  # ESP:/flatcar/first_boot seen at /boot
    assert by["FLAT-04"].status is Status.passed
    assert by["KRN-02"].status is Status.unreadable  # initramfs inside the kernel image
    if azure_oem:
        assert by["FLAT-02"].status is Status.passed
        assert by["CMD-01"].status is Status.passed  # console from the OEM's linux_console
    else:
        assert by["FLAT-02"].status is Status.failed and "FLAT-02" in blockers(r)
