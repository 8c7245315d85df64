"""`azimg check` on real disk images made here: root trees from ``make_root`` placed in real
ext4 (``mkfs.ext4 -d``) or XFS (``mkfs.xfs -p`` protofile) filesystems, an ESP made by
``mkfs.vfat`` + mtools, partition tables written by ``sfdisk`` and GRUB's real ``boot.img`` in
the MBR. Each broken image breaks one rule and the check must name that rule id.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from azimg.image.check import Report, check_image
from azimg.image.findings import Severity, Status
from azimg.image.rules import CheckContext
from tests.unit.test_inspect import (
    ESP_UUID,
    KVER,
    ROOT_UUID,
    elf_header,
    grub_cfg,
    make_root,
)

MIB = 1024 * 1024
BOOT_IMG = Path("/usr/lib/grub/i386-pc/boot.img")
LINUX_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_GUID = "21686148-6449-6E6F-744E-656564454649"
SWAP_GUID = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
FBSD_BOOT = "83BD6B9D-7F41-11DC-BE0B-001560B84F0F"
FBSD_UFS = "516E7CB6-6ECF-11D6-8FF8-00022D09712B"


def _run(*cmd: str | Path, **kw: Any) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, **kw)


def _place(disk: Path, part: Path, offset: int) -> None:
    _run(
        "dd",
        f"if={part}",
        f"of={disk}",
        "bs=1M",
        f"seek={offset}",
        "oflag=seek_bytes",
        "conv=notrunc,sparse",
        "status=none",
    )


def xfs_protofile(tree: Path) -> str:
    """mkfs.xfs -p protofile text for ``tree`` (xfsprogs 6.1 has no directory form)."""
    lines = ["/dev/null", "0 0", "d--755 0 0"]

    def walk(d: Path, depth: int) -> None:
        for entry in sorted(d.iterdir()):
            pad = " " * depth
            st = entry.lstat()
            mode = f"{stat.S_IMODE(st.st_mode):03o}"
            if entry.is_symlink():
                lines.append(f"{pad}{entry.name} l--{mode} 0 0 {os.readlink(entry)}")
            elif entry.is_dir():
                lines.append(f"{pad}{entry.name} d--{mode} 0 0")
                walk(entry, depth + 1)
                lines.append(f"{pad}$")
            else:
                lines.append(f"{pad}{entry.name} ---{mode} 0 0 {entry}")

    walk(tree, 1)
    lines.append("$")
    return "\n".join(lines) + "\n"


def make_fs(
    tmp: Path, tree: Path, fs: str, *, uuid: str = ROOT_UUID, name: str = "root"
) -> tuple[Path, int]:
    """A real filesystem image holding ``tree``; returns (path, size)."""
    part = tmp / f"{name}.{fs}"
    part.unlink(missing_ok=True)
    if fs == "ext4":
        size = 48 * MIB
        _run("mkfs.ext4", "-q", "-F", "-d", tree, "-U", uuid, "-L", "root", part, f"{size // 1024}")
    elif fs == "xfs":
        size = 320 * MIB  # mkfs.xfs refuses anything under 300 MB; the file stays sparse
        proto = tmp / "proto.txt"
        proto.write_text(xfs_protofile(tree))
        part.write_bytes(b"")
        os.truncate(part, size)
        _run("mkfs.xfs", "-q", "-f", "-m", f"uuid={uuid}", "-L", "root", "-p", proto, part)
    else:
        raise AssertionError(fs)
    return part, size


def make_esp(tmp: Path, *, fallback: bool = True) -> Path:
    esp = tmp / "esp.img"
    esp.unlink(missing_ok=True)
    _run("mkfs.vfat", "-C", "-i", ESP_UUID.replace("-", ""), "-n", "ESP", esp, str(8 * 1024))
    _run("mmd", "-i", esp, "::/EFI", "::/EFI/debian")
    loader = tmp / "grubx64.efi"
    loader.write_bytes(b"MZ" + b"\0" * 510)
    _run("mcopy", "-i", esp, loader, "::/EFI/debian/grubx64.efi")
    if fallback:
        _run("mmd", "-i", esp, "::/EFI/BOOT")
        _run("mcopy", "-i", esp, loader, "::/EFI/BOOT/BOOTX64.EFI")
    return esp


def make_disk(
    tmp: Path,
    tree: Path | None,
    *,
    scheme: str = "gpt",
    fs: str = "ext4",
    bios_boot: bool = True,
    esp: bool = True,
    fallback: bool = True,
    swap: bool = False,
    boot_code: bool = True,
    first: int = MIB,
    disk_size: int = 0,
    extra: tuple[tuple[str, int, Path | bytes], ...] = (),
) -> Path:
    """A raw disk: [BIOS-boot] [ESP] root [swap] — GPT or MBR, with GRUB's boot.img."""
    disk = tmp / "disk.raw"
    disk.unlink(missing_ok=True)
    parts: list[tuple[str, int, Path | bytes | None]] = []  # (type, size, content)
    if scheme == "gpt" and bios_boot:
        parts.append((BIOS_GUID, 1 * MIB, None))
    if esp:
        parts.append(
            (ESP_GUID if scheme == "gpt" else "ef", 8 * MIB, make_esp(tmp, fallback=fallback))
        )
    if tree is not None:
        root, size = make_fs(tmp, tree, fs)
        parts.append((LINUX_GUID if scheme == "gpt" else "83", size, root))
    parts += extra
    if swap:
        swapfile = tmp / "swap.img"
        swapfile.unlink(missing_ok=True)
        swapfile.write_bytes(b"\0" * 4 * MIB)
        _run("mkswap", "-q", swapfile)
        parts.append((SWAP_GUID if scheme == "gpt" else "82", 4 * MIB, swapfile))
    total = max(first + sum(s for _t, s, _c in parts) + 2 * MIB, 32 * MIB, disk_size)  # SZ-01
    with open(disk, "wb") as fh:
        fh.truncate(total)
    script = [f"label: {'gpt' if scheme == 'gpt' else 'dos'}"]
    offset = first
    for type_, size, _c in parts:
        script.append(f"start={offset // 512}, size={size // 512}, type={type_}")
        offset += size
    _run("sfdisk", "-q", disk, input="\n".join(script).encode() + b"\n")
    offset = first
    for _type, size, content in parts:
        if isinstance(content, Path):
            _place(disk, content, offset)
        elif isinstance(content, bytes):
            with open(disk, "r+b") as fh:
                fh.seek(offset)
                fh.write(content)
        offset += size
    if boot_code:
        with open(disk, "r+b") as fh:
            fh.write(BOOT_IMG.read_bytes()[:440])
    return disk


def check(path: Path, **ctx: Any) -> Report:
    return check_image(path, CheckContext(**ctx))


def failed(report: Report) -> dict[str, Severity]:
    return {f.rule: f.severity for f in report.findings if f.status is Status.failed}


def blockers(report: Report) -> set[str]:
    return {f.rule for f in report.blockers}


@pytest.fixture(scope="module")
def good_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("good")
    return make_disk(tmp, make_root(tmp))


# ----------------------------------------------------------------------------------------------


def test_good_cloud_init_tree_on_gpt_ext4_has_no_blockers(good_disk: Path) -> None:
    r = check(good_disk, generation="2")
    assert blockers(r) == set(), [f for f in r.blockers]
    assert r.generations is not None and r.generations.label == "gen1+gen2"
    assert r.os == "debian 12" and r.kernel == KVER
    assert r.exit_code == 0
    ran = {f.rule for f in r.findings}
    assert {"GEN-01", "GEN-02", "KRN-02", "AGT-01", "AGT-07", "NET-01", "FS-03", "CMD-10"} <= ran
    passed = {f.rule for f in r.findings if f.status is Status.passed}
    assert {"KRN-02", "FS-03", "CMD-10", "GEN-03", "GEN-04"} <= passed


def test_good_waagent_tree_has_no_blockers(tmp_path: Path) -> None:
    r = check(make_disk(tmp_path, make_root(tmp_path, agent="waagent")))
    assert blockers(r) == set(), r.blockers
    assert "AGT-03" in {f.rule for f in r.findings if f.status is Status.passed}


# One broken thing per case: (id, tree changes, disk options, context, rule that must fail).
NO_TTYS0 = grub_cfg("console=tty0 earlyprintk=ttyS0")
CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], str]] = [
    ("swap-partition", {}, {"swap": True}, {"marketplace": True}, "SWP-01"),
    (
        "fstab-swap",
        {"/etc/fstab": f"UUID={ROOT_UUID} / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n"},
        {},
        {"marketplace": True},
        "SWP-01",
    ),
    (
        "no-agent",
        {"/usr/bin/cloud-init": None, "/etc/cloud/cloud.cfg": None},
        {},
        {},
        "AGT-01",
    ),
    (
        "cloud-init-without-azure-datasource",
        {"/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg": "datasource_list: [ NoCloud, None ]\n"},
        {},
        {},
        "AGT-07",
    ),
    ("hv-drivers-missing-from-initramfs", {"initrd_modules": ("hv_netvsc",)}, {}, {}, "KRN-02"),
    ("no-console-ttyS0", {"/boot/grub/grub.cfg": NO_TTYS0}, {}, {"marketplace": True}, "CMD-01"),
    (
        "mbr-only-checked-as-gen2",
        {},
        {"scheme": "mbr", "esp": False},
        {"generation": "2"},
        "GEN-02",
    ),
    ("gpt-without-bios-boot-as-gen1", {}, {"bios_boot": False}, {"generation": "1"}, "GEN-02"),
    ("no-boot-path-at-all", {}, {"bios_boot": False, "esp": False}, {}, "GEN-01"),
    ("provisioned-marker", {"/var/lib/waagent/provisioned": ""}, {}, {}, "AGT-05"),
    (
        "vda-in-fstab",
        {"/etc/fstab": "/dev/vda1 / ext4 defaults 0 1\n"},
        {},
        {},
        "FS-01",
    ),
    (
        "fstab-uuid-not-on-disk",
        {"/etc/fstab": "UUID=00000000-0000-0000-0000-000000000000 / ext4 defaults 0 1\n"},
        {},
        {},
        "FS-03",
    ),
    (
        "root-arg-names-missing-fs",
        {
            "/boot/grub/grub.cfg": grub_cfg("console=ttyS0").replace(
                ROOT_UUID, "0" * 8 + ROOT_UUID[8:]
            )
        },
        {},
        {},
        "CMD-10",
    ),
    (
        "persistent-net-rules",
        {"/etc/udev/rules.d/70-persistent-net.rules": 'SUBSYSTEM=="net", NAME="eth0"\n'},
        {},
        {},
        "NET-03",
    ),
    ("cloud-init-disabled", {"/etc/cloud/cloud-init.disabled": ""}, {}, {}, "AGT-08"),
    (
        "waagent-provisions-while-cloud-init-enabled",
        {"agent": "both", "/etc/waagent.conf": "Provisioning.Agent=waagent\n"},
        {},
        {},
        "AGT-03",
    ),
    (
        "vfat-disabled",
        {"/etc/modprobe.d/cis.conf": "install vfat /bin/true\n"},
        {},
        {},
        "KRN-07",
    ),
    (
        "udf-disabled-with-waagent",
        {"agent": "waagent", "/etc/modprobe.d/cis.conf": "install udf /bin/false\n"},
        {},
        {},
        "KRN-08",
    ),
    (
        "kernel-without-hyperv",
        {
            f"/boot/config-{KVER}": "CONFIG_VFAT_FS=y\nCONFIG_UDF_FS=m\n",
            f"/lib/modules/{KVER}/modules.dep": "kernel/fs/udf/udf.ko:\n",
        },
        {},
        {},
        "KRN-01",
    ),
    (
        "no-sshd",
        {"/usr/sbin/sshd": None, "/etc/systemd/system/multi-user.target.wants/ssh.service": None},
        {},
        {},
        "SSH-01",
    ),
    (
        "static-network-without-cloud-init",
        {
            "agent": "waagent",
            "/etc/network/interfaces": "auto eth0\niface eth0 inet static\n  address 10.0.0.4/24\n",
        },
        {},
        {},
        "NET-01",
    ),
    ("32-bit-userland", {"/lib/systemd/systemd": elf_header(3, 1)}, {}, {}, "GEN-05"),
    ("no-partition-table", {}, {"scheme": "none"}, {}, "PT-01"),
    ("hv-drivers-missing-debian-rule", {"initrd_modules": ()}, {}, {}, "DEB-02"),
    (
        "first-partition-before-1-MiB",
        {},
        {"scheme": "mbr", "esp": False, "first": 63 * 512},
        {"marketplace": True},
        "PT-02",
    ),
    (
        "3-TiB-MBR-disk",  # sparse: only a few sectors are ever written or read
        {},
        {"scheme": "mbr", "esp": False, "disk_size": 3 * 1024**4},
        {},
        "SZ-03",
    ),
]


def _build(tmp: Path, changes: dict[str, Any], disk: dict[str, Any]) -> Path:
    changes = dict(changes)
    kw: dict[str, Any] = {}
    for key in ("agent", "initrd_modules"):
        if key in changes:
            kw[key] = changes.pop(key)
    tree = make_root(tmp, **kw, **changes)
    if disk.get("scheme") == "none":
        root, _size = make_fs(tmp, tree, "ext4")
        return root  # a bare filesystem: no MBR, no GPT
    return make_disk(tmp, tree, **disk)


@pytest.mark.parametrize(
    ("case", "changes", "disk", "ctx", "rule"), CASES, ids=[c[0] for c in CASES]
)
def test_each_broken_image_names_its_blocker(
    tmp_path: Path,
    case: str,
    changes: dict[str, Any],
    disk: dict[str, Any],
    ctx: dict[str, Any],
    rule: str,
) -> None:
    r = check(_build(tmp_path, changes, disk), **ctx)
    assert rule in blockers(r), (case, failed(r), [f for f in r.findings if f.rule == rule])
    assert r.exit_code == 1


def test_cli_text_json_and_exit_codes(tmp_path: Path, good_disk: Path) -> None:
    bad = make_disk(tmp_path, make_root(tmp_path, **{"/var/lib/waagent/provisioned": ""}))
    cmd = [sys.executable, "-m", "azimg.cli.main", "check"]
    ok = subprocess.run([*cmd, str(good_disk)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 blockers" in ok.stdout.splitlines()[-1]
    out = subprocess.run([*cmd, str(bad), "--output", "json"], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    agt = [f for f in doc["findings"] if f["rule"] == "AGT-05"]
    assert agt[0]["status"] == "fail" and agt[0]["severity"] == "blocker"
    assert agt[0]["evidence"][0]["where"] == "/var/lib/waagent/provisioned"
    assert doc["summary"]["blockers"] >= 1 and doc["summary"]["exit_code"] == 1
    text = subprocess.run([*cmd, str(bad)], capture_output=True, text=True)
    assert "BLOCKERS" in text.stdout and "AGT-05" in text.stdout and "fix:" in text.stdout
    spec = subprocess.run([*cmd, str(bad), "--specialized"], capture_output=True, text=True)
    assert spec.returncode == 0, spec.stdout  # a specialized disk keeps its agent state


def test_unreadable_input_is_one_line_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.vhdx"
    junk.write_bytes(b"vhdxfile" + b"\0" * (4 * MIB))
    cmd = [sys.executable, "-m", "azimg.cli.main", "check"]
    for path in (junk, tmp_path / "missing.vhd", tmp_path):
        p = subprocess.run([*cmd, str(path)], capture_output=True, text=True)
        assert p.returncode in (1, 2), p
        assert "Traceback" not in p.stderr
        if p.returncode == 2:
            assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("azimg: error:")


def test_specialized_skips_generalization_rules(tmp_path: Path) -> None:
    tree = make_root(
        tmp_path, **{"/var/lib/waagent/provisioned": "", "/etc/ssh/ssh_host_rsa_key": "k"}
    )
    r = check(make_disk(tmp_path, tree), generalized=False)
    by = {f.rule: f.status for f in r.findings}
    assert by["AGT-05"] is Status.not_applicable and "SEC-05" not in by
    assert blockers(r) == set()


def test_a_specialized_disk_may_disable_cloud_init(tmp_path: Path) -> None:
    """Nothing provisions a specialized disk (azimg build --specialized disables cloud-init on
    purpose); the same image as a generalized one is blocked, since nothing would report."""
    tree = make_root(tmp_path, **{"/etc/cloud/cloud-init.disabled": ""})
    disk = make_disk(tmp_path, tree)
    special = {f.rule: f.status for f in check(disk, generalized=False).findings}
    assert special["AGT-08"] is Status.not_applicable
    assert "AGT-08" in blockers(check(disk, generalized=True))


def test_freebsd_ufs_root_is_unreadable_never_passed(tmp_path: Path) -> None:
    ufs = bytearray(4 * MIB)
    ufs[65536 + 1372 : 65536 + 1376] = (0x19540119).to_bytes(4, "little")
    disk = make_disk(
        tmp_path,
        None,
        bios_boot=False,
        esp=False,
        extra=((FBSD_BOOT, MIB, b"\0" * 512), (FBSD_UFS, 4 * MIB, bytes(ufs))),
    )
    r = check(disk)
    by = {f.rule: f for f in r.findings}
    for rule in ("FBSD-01", "FBSD-02", "FBSD-03", "FBSD-05"):
        assert by[rule].status is Status.unreadable
        assert "UFS" in by[rule].evidence[0].detail
    assert not any(
        f.status is Status.passed
        for f in r.findings
        if f.rule.startswith("FBSD-0") and f.rule != "FBSD-04"
    )
    assert r.exit_code == 2 and r.unreadable_reason and "UFS" in r.unreadable_reason
    assert by["GEN-01"].status is Status.passed  # pmbr boot code + freebsd-boot partition


def test_separate_boot_partition_is_found_by_fstab(tmp_path: Path) -> None:
    tree = make_root(tmp_path)
    boot = tmp_path / "boot-tree"
    shutil.move(tree / "boot", boot)
    (tree / "boot").mkdir()
    boot_uuid = "11111111-2222-3333-4444-555555555555"
    fstab = (tree / "etc" / "fstab").read_text() + f"UUID={boot_uuid} /boot ext4 defaults 0 2\n"
    (tree / "etc" / "fstab").write_text(fstab)
    for name in ("grub/grub.cfg",):
        p = boot / name
        p.write_text(p.read_text().replace("/boot/vmlinuz", "/vmlinuz"))
    bootfs, size = make_fs(tmp_path, boot, "ext4", uuid=boot_uuid, name="boot")
    disk = make_disk(tmp_path, tree, extra=((LINUX_GUID, size, bootfs),))
    r = check(disk)
    assert "mounted /boot" in " ".join(r.notes)
    assert r.kernel == KVER and blockers(r) == set(), r.blockers


def test_dynamic_vhd_is_read_and_named_fmt_05(tmp_path: Path, good_disk: Path) -> None:
    dyn = tmp_path / "dynamic.vhd"
    _run(
        "qemu-img",
        "convert",
        "-f",
        "raw",
        "-O",
        "vpc",
        "-o",
        "subformat=dynamic,force_size=on",
        good_disk,
        dyn,
    )
    r = check(dyn)
    assert "FMT-05" in blockers(r), failed(r)
    assert r.format == "vhd-dynamic" and r.os == "debian 12"  # the guest is still read
    assert blockers(r) == {"FMT-05"}


def test_misaligned_fixed_vhd_is_named_vhd_04(tmp_path: Path, good_disk: Path) -> None:
    raw = tmp_path / "odd.raw"
    shutil.copyfile(good_disk, raw)
    os.truncate(raw, raw.stat().st_size + 7 * 512)  # no longer a whole number of MiB
    vhd = tmp_path / "odd.vhd"
    _run("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", raw, vhd)
    r = check(vhd)
    assert "VHD-04" in blockers(r), failed(r)
    assert r.format == "vhd-fixed" and r.os == "debian 12"


@pytest.mark.parametrize("fmt", ["qcow2", "vmdk"])
def test_qcow2_and_vmdk_are_read_through_qemu_img(
    tmp_path: Path, good_disk: Path, fmt: str
) -> None:
    out = tmp_path / f"disk.{fmt}"
    _run("qemu-img", "convert", "-f", "raw", "-O", fmt, good_disk, out)
    r = check(out)
    assert r.format == fmt and r.os == "debian 12"
    assert blockers(r) == set(), failed(r)
    assert failed(r).get("FMT-04") is Severity.warning  # must be converted before upload
    assert any("qemu-img" in n for n in r.notes), r.notes


def test_corrupt_partition_table_is_one_line_exit_2(tmp_path: Path, good_disk: Path) -> None:
    bad = tmp_path / "corrupt.raw"
    shutil.copyfile(good_disk, bad)
    size = bad.stat().st_size
    with open(bad, "r+b") as fh:
        for at in (512 + 16, size - 512 + 16):  # header CRC of the primary and backup GPT
            fh.seek(at)
            fh.write(b"\xde\xad\xbe\xef")
    p = subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", "check", str(bad)], capture_output=True, text=True
    )
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "GPT" in p.stderr or "CRC" in p.stderr.upper(), p.stderr


def test_bad_compressed_initramfs_is_unreadable_and_exit_2(tmp_path: Path) -> None:
    garbage = b"\x1f\x8b\x08\x00" + bytes(range(256)) * 64  # gzip magic, then nonsense
    tree = make_root(tmp_path, **{f"/boot/initrd.img-{KVER}": garbage})
    r = check(make_disk(tmp_path, tree))
    by = {f.rule: f for f in r.findings}
    assert by["KRN-02"].status is Status.unreadable and by["DEB-02"].status is Status.unreadable
    assert blockers(r) == set() and r.exit_code == 2
    assert r.why_unreadable is not None and "KRN-02" in r.why_unreadable
