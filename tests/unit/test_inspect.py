"""Inspection of guest roots: a good Debian cloud-init tree, then one fact at a time.

``make_root`` builds the root tree of a correct Azure image on the host (keyword overrides
change or delete single files); the rules and check tests reuse it, and the e2e tests put the
same trees into real ext4/XFS filesystems.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azimg.disk.guestfs import DirectoryFS
from azimg.image.facts.layout import DiskLayout
from azimg.image.inspect import BudgetFS, ImageFacts, MountedFS, gather
from azimg.image.rules import CheckContext

KVER = "6.1.0-27-cloud-amd64"
ROOT_UUID = "3f1a2c6e-2b7d-4c1e-9a55-0f6e7d8c9b01"
ESP_UUID = "ABCD-1234"
ESP_MOUNT = f"UUID={ESP_UUID}  /boot/efi  vfat  umask=0077  0  1\n"


class Link(str):
    """A symlink target in a ``make_root`` file map."""


def elf_header(machine: int = 62, elf_class: int = 2) -> bytes:
    """The first 64 bytes of an ELF executable for ``machine`` (62 = x86-64)."""
    ident = b"\x7fELF" + bytes([elf_class, 1, 1]) + b"\0" * 9
    return ident + struct.pack("<HHI", 2, machine, 1) + b"\0" * 40


def grub_cfg(args: str, kver: str = KVER) -> str:
    return (
        "set default=0\nset timeout=1\n"
        "menuentry 'Debian GNU/Linux' --class debian {\n"
        "\tinsmod ext2\n"
        f"\tlinux\t/boot/vmlinuz-{kver} root=UUID={ROOT_UUID} ro {args}\n"
        f"\tinitrd\t/boot/initrd.img-{kver}\n"
        "}\n"
    )


GOOD_ARGS = "console=tty0 console=ttyS0,115200n8 earlyprintk=ttyS0,115200"
HV_MODULES = ("hv_vmbus", "hv_storvsc", "hv_netvsc", "hv_utils", "hv_balloon")


VERSIONS = {"cloud-init": "22.4.2-1+deb12u1", "waagent": "2.9.0.4-1"}


def dpkg_status(*names: str) -> str:
    return "".join(
        f"Package: {n}\nStatus: install ok installed\nVersion: {VERSIONS.get(n, '1.0-1')}\n\n"
        for n in names
    )


def base_files(agent: str = "cloud-init") -> dict[str, str | bytes | Link | None]:
    """Guest path -> content for a correct generalized Debian 12 Azure image."""
    mods = "".join(
        f"kernel/drivers/hv/{m}.ko.xz:\n" for m in ("hv_vmbus", "hv_utils", "hv_balloon")
    )
    mods += "kernel/drivers/scsi/hv_storvsc.ko.xz:\nkernel/drivers/net/hyperv/hv_netvsc.ko.xz:\n"
    mods += "kernel/fs/udf/udf.ko.xz:\nkernel/drivers/pci/controller/pci-hyperv.ko.xz:\n"
    files: dict[str, str | bytes | Link | None] = {
        "/etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
        'VERSION_ID="12"\n',
        "/etc/fstab": f"# <file system> <mount point> <type> <options> <dump> <pass>\n"
        f"UUID={ROOT_UUID}  /  ext4  rw,discard,errors=remount-ro  0  1\n" + ESP_MOUNT,
        "/etc/default/grub": f'GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX="{GOOD_ARGS}"\n'
        'GRUB_CMDLINE_LINUX_DEFAULT=""\nGRUB_TERMINAL="console serial"\n',
        "/boot/grub/grub.cfg": grub_cfg(GOOD_ARGS),
        f"/boot/vmlinuz-{KVER}": b"MZ kernel",
        f"/boot/config-{KVER}": "CONFIG_HYPERV=m\nCONFIG_HYPERV_STORAGE=m\nCONFIG_HYPERV_NET=m\n"
        "CONFIG_HYPERV_UTILS=m\nCONFIG_HYPERV_BALLOON=m\nCONFIG_VFAT_FS=y\nCONFIG_UDF_FS=m\n"
        "CONFIG_PCI_HYPERV=m\nCONFIG_WATCHDOG=y\nCONFIG_CIFS=m\n",
        f"/boot/initrd.img-{KVER}": b"",  # replaced by a real cpio in make_root
        f"/lib/modules/{KVER}/modules.dep": mods,
        f"/lib/modules/{KVER}/modules.builtin": "kernel/fs/fat/vfat.ko\nkernel/fs/fat/fat.ko\n",
        "/vmlinuz": Link(f"boot/vmlinuz-{KVER}"),
        "/sbin/init": Link("/lib/systemd/systemd"),
        "/lib/systemd/systemd": elf_header(),
        "/usr/sbin/sshd": elf_header(),
        "/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nClientAliveInterval 180\n"
        "PasswordAuthentication no\n",
        "/etc/systemd/system/multi-user.target.wants/ssh.service": Link(
            "/lib/systemd/system/ssh.service"
        ),
        "/etc/systemd/system/multi-user.target.wants/hv-kvp-daemon.service": Link(
            "/lib/systemd/system/hv-kvp-daemon.service"
        ),
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        "/etc/shadow": "root:*:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\n",
        "/etc/machine-id": "",
        "/etc/hostname": "localhost\n",
        "/etc/initramfs-tools/initramfs.conf": "MODULES=most\nBUSYBOX=auto\n",
        "/etc/initramfs-tools/modules": "hv_vmbus\nhv_storvsc\nhv_netvsc\n",
        "/etc/apt/sources.list.d/debian.sources": "Types: deb\nURIs: mirror+file:///etc/apt/"
        "mirrors/debian.list\nSuites: bookworm bookworm-updates\n",
        "/lib/udev/rules.d/66-azure-storage.rules": "# waagent\n",
        "/lib/udev/rules.d/99-azure-product-uuid.rules": "# waagent\n",
        "/lib/udev/rules.d/66-azure-ephemeral.rules": "# cloud-init\n",
        "/etc/chrony/chrony.conf": "refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0\n",
    }
    packages = ["openssh-server", "hyperv-daemons", "cloud-guest-utils", "linux-image-cloud-amd64"]
    if agent in ("cloud-init", "both"):
        packages.append("cloud-init")
        files.update(
            {
                "/usr/bin/cloud-init": "#!/usr/bin/python3\n",
                "/etc/cloud/cloud.cfg": "users: [default]\ncloud_init_modules:\n - growpart\n"
                " - disk_setup\n - mounts\n",
                "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg": "datasource_list: [ Azure ]\n"
                "datasource:\n  Azure:\n    apply_network_config: true\n",
                "/etc/systemd/system/cloud-init.target.wants/cloud-init-local.service": Link(
                    "/lib/systemd/system/cloud-init-local.service"
                ),
                "/etc/systemd/system/cloud-init.target.wants/cloud-init.service": Link(
                    "/lib/systemd/system/cloud-init.service"
                ),
                "/etc/systemd/system/cloud-init.target.wants/cloud-config.service": Link(
                    "/lib/systemd/system/cloud-config.service"
                ),
                "/etc/systemd/system/cloud-init.target.wants/cloud-final.service": Link(
                    "/lib/systemd/system/cloud-final.service"
                ),
            }
        )
    if agent in ("waagent", "both"):
        packages.append("waagent")
        files.update(
            {
                "/usr/sbin/waagent": "#!/usr/bin/python3\n",
                "/etc/waagent.conf": "Provisioning.Agent=auto\nResourceDisk.Format="
                + ("n" if agent == "both" else "y")
                + "\nResourceDisk.EnableSwap=n\nAutoUpdate.Enabled=y\n",
                "/etc/systemd/system/multi-user.target.wants/walinuxagent.service": Link(
                    "/lib/systemd/system/walinuxagent.service"
                ),
                "/etc/network/interfaces": "auto lo\niface lo inet loopback\n"
                "allow-hotplug eth0\niface eth0 inet dhcp\n",
                "/var/lib/waagent/.keep": "",
            }
        )
        files["/boot/grub/grub.cfg"] = grub_cfg(GOOD_ARGS + " net.ifnames=0")
        files["/etc/default/grub"] = (
            f'GRUB_CMDLINE_LINUX="{GOOD_ARGS} net.ifnames=0"\nGRUB_CMDLINE_LINUX_DEFAULT=""\n'
        )
    files["/var/lib/dpkg/status"] = dpkg_status(*packages)
    return files


def initramfs(tmp: Path, modules: tuple[str, ...], kver: str = KVER) -> bytes:
    """A real gzip'd newc cpio made by the cpio tool, holding ``modules`` as .ko files."""
    tree = tmp / "initramfs-tree"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("initramfs\n")
    for m in modules:
        sub = "net/hyperv" if m == "hv_netvsc" else "scsi" if m == "hv_storvsc" else "hv"
        d = tree / "usr" / "lib" / "modules" / kver / "kernel" / "drivers" / sub
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{m}.ko").write_bytes(b"\x7fELF module")
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    cpio = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        cwd=tree,
        input="\n".join(names).encode(),
        capture_output=True,
        check=True,
    ).stdout
    return gzip.compress(cpio)


def make_root(
    tmp: Path,
    *,
    agent: str = "cloud-init",
    initrd_modules: tuple[str, ...] = HV_MODULES,
    **changes: str | bytes | Link | None,
) -> Path:
    """A root tree under ``tmp/root``; ``changes`` map guest paths (``etc__fstab`` style keys
    are not used: pass a dict via ``**{"/etc/fstab": ...}``) to new content, or None to drop."""
    root = tmp / "root"
    shutil.rmtree(root, ignore_errors=True)
    files = base_files(agent)
    files[f"/boot/initrd.img-{KVER}"] = initramfs(tmp, initrd_modules)
    files.update(changes)
    for path, content in files.items():
        if content is None:
            continue
        host = root / path.lstrip("/")
        host.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            os.symlink(str(content), host)
        elif isinstance(content, bytes):
            host.write_bytes(content)
        else:
            host.write_text(content)
    (root / "root").mkdir(exist_ok=True)
    (root / "home").mkdir(exist_ok=True)
    return root


# ----------------------------------------------------------------------------------------------


def test_gathers_the_facts_of_a_good_debian_root(tmp_path: Path) -> None:
    g = gather(DirectoryFS(make_root(tmp_path)))
    assert g.os.id == "debian" and g.os.family == "deb" and g.os.version_id == "12"
    assert g.storage.fstab is not None and g.storage.fstab[0].mountpoint == "/"
    assert g.storage.fstab[0].where == "/etc/fstab:2"
    assert g.boot.cmdline.where == "/boot/grub/grub.cfg:5"
    assert (
        g.boot.cmdline.has("console=ttyS0") and g.boot.cmdline.value("root") == f"UUID={ROOT_UUID}"
    )
    assert g.boot.cmdline.configured == tuple(GOOD_ARGS.split())
    assert g.kernel.default_kernel == KVER
    k = g.kernel.kernels[0]
    assert k.available("hv_vmbus") and k.available("vfat") and k.built_in("vfat")
    assert k.initramfs == f"/boot/initrd.img-{KVER}"
    assert g.system.arch is not None and g.system.arch.value == "x86_64" and g.system.elf_class == 2
    assert g.agents.cloud_init.installed and g.agents.cloud_init.datasource_list == ("Azure",)
    assert not g.agents.waagent.installed
    assert (
        "cloud-init-local.service" in g.services.units_enabled
        and "ssh.service" in g.services.units_enabled
    )
    assert g.accounts.sshd_installed and g.accounts.sshd_enabled
    assert g.accounts.sshd_config["clientaliveinterval"].value == "180"
    assert [a.password for a in g.accounts.users] == ["locked", "locked"]
    assert g.packages.installed is not None and "cloud-init" in g.packages.installed
    assert g.services.chrony_refclock_ptp is True
    assert not g.unreadable


def test_initramfs_modules_are_listed_from_the_real_cpio(tmp_path: Path) -> None:
    pytest.importorskip("azimg.image.initramfs")
    g = gather(DirectoryFS(make_root(tmp_path, initrd_modules=("hv_vmbus",))))
    k = g.kernel.kernels[0]
    assert k.initramfs_error is None, k.initramfs_error
    assert k.initramfs_modules is not None
    assert "hv_vmbus" in k.initramfs_modules and "hv_storvsc" not in k.initramfs_modules


def test_waagent_config_swap_users_and_leftovers(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        agent="waagent",
        **{
            "/etc/fstab": f"UUID={ROOT_UUID} / ext4 defaults 0 1\n/dev/sdb2 none swap sw 0 0\n",
            "/swapfile": b"\0" * 16,
            "/var/lib/waagent/provisioned": "",
            "/var/lib/waagent/ovf-env.xml": "<xml/>",
            "/etc/shadow": "root:$6$salt$hash:19700::::::\n",
            "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"
            "azureuser:x:1000:1000::/home/azureuser:/bin/bash\n",
            "/home/azureuser/.bash_history": "ls\n",
            "/etc/ssh/ssh_host_ed25519_key": "key",
            "/etc/udev/rules.d/70-persistent-net.rules": "SUBSYSTEM==net\n",
        },
    )
    g = gather(DirectoryFS(root))
    assert g.agents.waagent.installed and g.agents.waagent.get("Provisioning.Agent") == "auto"
    assert g.agents.waagent.conf["ResourceDisk.Format"].where == "/etc/waagent.conf:2"
    assert g.storage.fstab is not None and g.storage.fstab[1].fstype == "swap"
    assert g.storage.swap_files == ("/swapfile",)
    assert "/var/lib/waagent/provisioned" in g.agents.waagent_state
    assert {a.name: a.password for a in g.accounts.users} == {"root": "hash", "azureuser": "none"}
    assert [h.where for h in g.accounts.histories] == ["/home/azureuser/.bash_history"]
    assert g.accounts.ssh_host_keys == ("/etc/ssh/ssh_host_ed25519_key",)
    assert g.network.persistent_net_rules == ("/etc/udev/rules.d/70-persistent-net.rules",)
    assert g.network.dhcp[0].where == "/etc/network/interfaces:4"


def test_separate_boot_is_mounted_over_the_root(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    boot = tmp_path / "bootfs"
    shutil.move(root / "boot", boot)
    (root / "boot").mkdir()
    alone = gather(DirectoryFS(root))
    assert alone.boot.cmdline.args is None
    g = gather(MountedFS(DirectoryFS(root), {"/boot": DirectoryFS(boot)}))
    assert g.boot.cmdline.has("console=ttyS0") and g.kernel.default_kernel == KVER


def test_bad_yaml_and_symlink_loops_do_not_raise(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        **{
            "/etc/cloud/cloud.cfg.d/99-broken.cfg": "datasource_list: [ Azure\n",
            "/etc/fstab": Link("/etc/fstab2"),
            "/etc/fstab2": Link("/etc/fstab"),
        },
    )
    g = gather(DirectoryFS(root))
    assert g.agents.cloud_init.yaml_errors and g.agents.cloud_init.yaml_errors[0].where.endswith(
        "99-broken.cfg"
    )
    assert g.storage.fstab is None  # a link loop reads as absent (GuestFS contract), never a hang


GUEST_FILES = (
    "/etc/fstab",
    "/boot/grub/grub.cfg",
    "/etc/default/grub",
    "/etc/waagent.conf",
    "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/os-release",
    "/etc/ssh/sshd_config",
    "/etc/network/interfaces",
    "/var/lib/dpkg/status",
    f"/boot/config-{KVER}",
    f"/lib/modules/{KVER}/modules.dep",
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    contents=st.dictionaries(
        st.sampled_from(GUEST_FILES),
        st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.hex())),
        max_size=6,
    ),
    initrd=st.binary(max_size=512),
)
def test_hostile_guest_files_never_raise(contents: dict[str, str], initrd: bytes) -> None:
    """Garbage in any config file (or the initramfs) becomes facts or 'unreadable', never a
    traceback; the rules run over whatever was gathered."""
    from azimg.image.check import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        for path, text in contents.items():
            host = root / path.lstrip("/")
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_text(text)
        boot = root / "boot"
        boot.mkdir(parents=True, exist_ok=True)
        (boot / f"initrd.img-{KVER}").write_bytes(initrd)
        (boot / f"vmlinuz-{KVER}").write_bytes(b"")
        g = gather(DirectoryFS(root))
        k = next((k for k in g.kernel.kernels if k.version == KVER), None)
        assert k is not None
        if initrd and not initrd.startswith(b"0707"):
            assert k.initramfs_modules is not None or k.initramfs_error
        evaluate(ImageFacts(DiskLayout(64 * 2**20, "gpt"), g), CheckContext())


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(
    doc=st.dictionaries(
        st.sampled_from(
            [
                "datasource_list",
                "datasource",
                "cloud_init_modules",
                "mounts",
                "reporting",
                "network",
                "users",
            ]
        ),
        YAML_VALUES,
        max_size=5,
    )
)
def test_any_cloud_init_yaml_shape_is_judged_without_raising(doc: dict[str, object]) -> None:
    import yaml

    from azimg.image.check import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        cfg = root / "etc" / "cloud" / "cloud.cfg.d" / "99-fuzz.cfg"
        cfg.parent.mkdir(parents=True)
        cfg.write_text(yaml.safe_dump(doc))
        (root / "usr" / "bin").mkdir(parents=True)
        (root / "usr" / "bin" / "cloud-init").write_text("")
        (root / "etc" / "os-release").write_text("ID=debian\n")
        g = gather(DirectoryFS(root))
        findings = evaluate(ImageFacts(DiskLayout(64 * 2**20, "gpt"), g), CheckContext())
        agt07 = [f for f in findings if f.rule == "AGT-07"]
        assert agt07 and agt07[0].status.value in ("pass", "fail")


def test_read_budget_turns_into_an_unreadable_facet(tmp_path: Path) -> None:
    from azimg.errors import CorruptImage

    root = make_root(tmp_path)
    fs = BudgetFS(DirectoryFS(root), max_bytes=10)
    assert len(fs.read_file("/etc/os-release")) == 10  # cut at the budget
    with pytest.raises(CorruptImage, match="budget"):
        fs.read_file("/etc/fstab")


def test_only_the_newest_kernels_are_read_in_detail(tmp_path: Path) -> None:
    extra = {f"/lib/modules/5.10.0-{n}-cloud-amd64/modules.dep": "" for n in range(12)}
    g = gather(DirectoryFS(make_root(tmp_path, **extra)))
    assert g.kernel.default_kernel == KVER
    assert g.kernel.kernels[0].version == KVER and len(g.kernel.kernels) == 4
