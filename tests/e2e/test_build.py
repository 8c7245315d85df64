"""`azimg build debian` end to end: real mmdebstrap roots, real images, real QEMU boots (TCG).

Boots use plain QEMU (no azimg fabric): SeaBIOS on i440fx and OVMF on q35 must both reach the
kernel's "root mounted" line and a login prompt on the serial console, from the same
generation-"both" image, with the disk on virtio (a bus the cloud kernel's initramfs carries).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azimg.disk.guest import GuestImage, GuestPartition, open_guest
from azimg.disk.guestfs import GuestFS
from tests.images import SPECIALIZED_HOSTNAME, SPECIALIZED_USER, ImageFactory

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
ROOT_MOUNTED = re.compile(rb"EXT4-fs \((?:vd|sd)[a-z]+\d+\): mounted filesystem")
LOGIN_PROMPT = re.compile(rb"^\S+ login: ", re.MULTILINE)
BOOT_DEADLINE = 420.0  # seconds; TCG on 2 shared cores, typically 45-90 s
OVMF_PAIRS = (
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
)

VARIANTS = {
    "cloud-init": {"agent": "cloud-init"},
    "waagent": {"agent": "waagent"},
    "gen1": {"generation": "1"},
    "gen2": {"generation": "2"},
    "none": {"agent": "none"},
    "specialized": {"agent": "waagent", "specialized": True},
}


def _azimg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", *args], capture_output=True, text=True
    )


def boot(vhd: Path, firmware: str, workdir: Path) -> dict[str, float]:
    """Boot ``vhd`` under TCG until the login prompt; return seconds to each milestone."""
    log = workdir / f"serial-{firmware}-{vhd.stem}.log"
    argv = [
        "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "2",
        "-nographic", "-monitor", "none", "-nic", "none", "-serial", f"file:{log}",
        "-snapshot", "-drive", f"file={vhd},format=vpc,if=virtio",
    ]  # fmt: skip
    if firmware == "ovmf":
        code, vars_template = next((c, v) for c, v in OVMF_PAIRS if Path(c).is_file())
        nvram = workdir / f"vars-{vhd.stem}.fd"
        shutil.copyfile(vars_template, nvram)
        argv += [
            "-machine", "q35",
            "-drive", f"if=pflash,format=raw,readonly=on,file={code}",
            "-drive", f"if=pflash,format=raw,file={nvram}",
        ]  # fmt: skip
    else:
        argv += ["-machine", "pc"]  # i440fx; QEMU's default BIOS is SeaBIOS
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    seen: dict[str, float] = {}
    try:
        while time.monotonic() - started < BOOT_DEADLINE:
            text = log.read_bytes() if log.exists() else b""
            if "root mounted" not in seen and ROOT_MOUNTED.search(text):
                seen["root mounted"] = round(time.monotonic() - started, 1)
            if "root mounted" in seen and LOGIN_PROMPT.search(text):
                seen["login prompt"] = round(time.monotonic() - started, 1)
                return seen
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                pytest.fail(f"QEMU exited early ({proc.returncode}): {err.strip()}")
            time.sleep(0.5)
        tail = log.read_bytes()[-3000:].decode(errors="replace") if log.exists() else ""
        pytest.fail(
            f"no login prompt within {BOOT_DEADLINE:.0f} s (seen {seen}); serial tail:\n{tail}"
        )
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("agent", ["cloud-init", "waagent"])
@pytest.mark.parametrize("firmware", ["seabios", "ovmf"])
def test_both_image_boots_under_bios_and_uefi(
    built_image: ImageFactory, tmp_path: Path, agent: str, firmware: str
) -> None:
    vhd = built_image(generation="both", agent=agent)
    before = vhd.stat()
    seen = boot(vhd, firmware, tmp_path)
    print(f"{agent} {firmware}: {seen}")
    after = vhd.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_container_rules_pass_and_qemu_img_agrees(built_image: ImageFactory, variant: str) -> None:
    vhd = built_image(**VARIANTS[variant])
    info = _azimg("info", "--output", "json", str(vhd))
    assert info.returncode == 0, info.stderr
    report = json.loads(info.stdout)
    failed = [f["rule"] for f in report["findings"] if f["status"] not in ("pass", "n/a")]
    assert failed == []
    assert report["format"] == "vhd-fixed"
    qemu = json.loads(
        subprocess.run(
            ["qemu-img", "info", "-f", "vpc", "--output=json", str(vhd)],
            capture_output=True,
            check=True,
        ).stdout
    )
    assert qemu["virtual-size"] == report["virtual_size"] == 4096 * MiB
    assert vhd.stat().st_size == qemu["virtual-size"] + 512
    assert vhd.stat().st_blocks * 512 < 1024 * MiB  # sparse: the data, not 4 GiB


@pytest.mark.parametrize(
    ("variant", "gen1", "gen2"),
    [("cloud-init", True, True), ("gen1", True, False), ("gen2", False, True)],
)
def test_generation_layouts(
    built_image: ImageFactory, variant: str, gen1: bool, gen2: bool
) -> None:
    vhd = built_image(**VARIANTS[variant])
    with vhd.open("rb") as fh:
        mbr = fh.read(512)
    assert mbr[510:] == b"\x55\xaa"
    assert (b"GRUB" in mbr[:440]) is gen1  # boot.img only where BIOS boots
    check = json.loads(_azimg("check", "--output", "json", str(vhd)).stdout)
    assert (check["generations"]["gen1"], check["generations"]["gen2"]) == (gen1, gen2)
    with open_guest(vhd) as guest:
        root = _root(guest)
        assert root.partition is not None and root.partition.start >= MiB
        fstab = _fs(root).read_file("/etc/fstab").decode()
        assert f"UUID={root.uuid}\t/\text4" in fstab
        if gen2:
            esp = next(p for p in guest.partitions if p.fs_type == "vfat")
            assert _fs(esp).lstat("/EFI/BOOT/BOOTX64.EFI").is_file
            assert f"UUID={esp.uuid}\t/boot/efi\tvfat" in fstab
        else:
            assert "/boot/efi" not in fstab


def _root(guest: GuestImage) -> GuestPartition:
    return next(p for p in guest.partitions if p.fs_type == "ext4")


def _fs(part: GuestPartition) -> GuestFS:
    assert part.fs is not None, part.why
    return part.fs


# Warnings a variant carries on purpose. DEB-01 wants cloud-init installed as on Debian's own
# Azure images; the waagent variant leaves it out so that waagent alone provisions (AGT-03:
# Provisioning.Agent=waagent refuses to run while cloud-init is enabled).
EXPECTED_WARNINGS = {"cloud-init": set(), "waagent": {"DEB-01"}, "specialized": {"DEB-01"}}


@pytest.mark.parametrize(
    ("variant", "generalized"),
    [("cloud-init", True), ("waagent", True), ("specialized", False)],
)
def test_checker_finds_no_blockers(
    built_image: ImageFactory, variant: str, generalized: bool
) -> None:
    vhd = built_image(**VARIANTS[variant])
    flag = "--generalized" if generalized else "--specialized"
    proc = _azimg("check", "--output", "json", flag, str(vhd))
    report = json.loads(proc.stdout)
    failed = [f for f in report["findings"] if f["status"] in ("fail", "unreadable")]
    assert [(f["rule"], f["title"]) for f in failed if f["severity"] == "blocker"] == []
    warnings = {f["rule"] for f in failed if f["severity"] == "warning"}
    assert warnings <= EXPECTED_WARNINGS[variant]
    assert proc.returncode == 0
    assert report["os"].startswith("debian")


@pytest.mark.parametrize("variant", ["cloud-init", "waagent", "none"])
def test_generalized_image_contents(built_image: ImageFactory, variant: str) -> None:
    vhd = built_image(**VARIANTS[variant])
    with open_guest(vhd) as guest:
        fs = _fs(_root(guest))
        text = lambda p: fs.read_file(p).decode()  # noqa: E731
        assert text("/etc/machine-id") == ""
        assert not [n for n in fs.listdir("/etc/ssh") if n.startswith("ssh_host_")]
        assert text("/etc/shadow").splitlines()[0].split(":")[1] in ("*", "!", "!*")
        users = [ln.split(":") for ln in text("/etc/passwd").splitlines()]
        assert [u[0] for u in users if 1000 <= int(u[2]) < 65534] == []
        assert text("/etc/hostname").strip() == "localhost"
        assert "swap" not in text("/etc/fstab")
        packages = text("/var/lib/dpkg/status")
        has = lambda name: f"Package: {name}\nStatus: install ok installed" in packages  # noqa: E731
        assert has("linux-image-cloud-amd64")
        assert has("cloud-init") is (variant == "cloud-init")
        assert has("waagent") is (variant != "none")
        initramfs_modules = text("/etc/initramfs-tools/modules")
        assert {"hv_vmbus", "hv_storvsc", "hv_netvsc"} <= set(initramfs_modules.split())
        if variant == "cloud-init":
            cfg = text("/etc/cloud/cloud.cfg.d/90-azure.cfg")
            assert "datasource_list: [ Azure ]" in cfg
            assert "Provisioning.Agent=cloud-init" in text("/etc/waagent.conf")
        if variant == "waagent":
            conf = text("/etc/waagent.conf").splitlines()
            assert "Provisioning.Agent=waagent" in conf
            assert "ResourceDisk.Format=y" in conf and "ResourceDisk.EnableSwap=y" in conf
        if variant != "cloud-init":
            assert "iface eth0 inet dhcp" in text("/etc/network/interfaces.d/eth0")
            # sshd must find host keys at first boot: no active cloud-init makes them first.
            assert fs.lstat("/etc/systemd/system/ssh.service.wants/azimg-ssh-hostkeys.service")


def test_specialized_image_carries_its_account(built_image: ImageFactory) -> None:
    vhd = built_image(**VARIANTS["specialized"])
    pub = Path(f"{built_image.ssh_private_key}.pub").read_text().strip()
    with open_guest(vhd) as guest:
        fs = _fs(_root(guest))
        text = lambda p: fs.read_file(p).decode()  # noqa: E731
        assert text("/etc/hostname").strip() == SPECIALIZED_HOSTNAME
        assert f"127.0.1.1\t{SPECIALIZED_HOSTNAME}" in text("/etc/hosts")
        user = next(ln.split(":") for ln in text("/etc/passwd").splitlines()
                    if ln.startswith(f"{SPECIALIZED_USER}:"))  # fmt: skip
        assert user[5] == f"/home/{SPECIALIZED_USER}" and user[6] == "/bin/bash"
        keys_path = f"/home/{SPECIALIZED_USER}/.ssh/authorized_keys"
        assert text(keys_path).strip() == pub
        st = fs.lstat(keys_path)
        assert (st.mode & 0o777, st.uid) == (0o600, int(user[2]))
        assert f"{SPECIALIZED_USER} ALL=(ALL) NOPASSWD:ALL" in text("/etc/sudoers.d/90-azimg-users")
        assert "Provisioning.Agent=disabled" in text("/etc/waagent.conf").splitlines()
        assert fs.lstat("/etc/systemd/system/ssh.service.wants/azimg-ssh-hostkeys.service")
        assert not [n for n in fs.listdir("/etc/ssh") if n.startswith("ssh_host_")]
        # cloud-init is disabled on a specialized disk, so the image itself configures eth0.
        assert "iface eth0 inet dhcp" in text("/etc/network/interfaces.d/eth0")


def test_warm_build_reports_what_it_built(built_image: ImageFactory, tmp_path: Path) -> None:
    built_image()  # the cache is warm after this, whatever state it was in
    out = tmp_path / "warm.vhd"
    started = time.monotonic()
    proc = _azimg("build", "debian", "-o", str(out), "--generation", "2", "--agent", "none",
                  "--size", "2G", "--output", "json")  # fmt: skip
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    print(f"warm build: {elapsed:.1f} s, stages {result['seconds']}")  # measured, not asserted
    assert result["cache"]["hit"] is True
    assert (result["generation"], result["agent"], result["specialized"]) == ("2", "none", False)
    assert result["virtual_size"] == 2048 * MiB == out.stat().st_size - 512
    assert result["kernel"].endswith("-cloud-amd64")
    assert result["packages"]["linux-image-cloud-amd64"]
    assert "cloud-init" not in result["packages"] and "waagent" not in result["packages"]
    assert [p["role"] for p in result["partitions"]] == ["esp", "root"]
    assert "bootstrap" in result["seconds"] and "root filesystem" in result["seconds"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warm.vhd"]
    # The build shared /usr and /boot with the cache by hard links and purged both agents and
    # the host keys from its copy: the cached tree must still have all of them.
    cached = Path(result["cache"]["dir"]) / "rootfs" / f"bookworm-{result['cache']['key']}"
    assert (cached / "usr/bin/cloud-init").is_file() and (cached / "usr/sbin/waagent").is_file()
    assert "Package: waagent\n" in (cached / "var/lib/dpkg/status").read_text()
    assert list((cached / "etc/ssh").glob("ssh_host_*_key"))


def test_too_small_size_fails_cleanly(built_image: ImageFactory, tmp_path: Path) -> None:
    built_image()  # warm cache: the failure comes from the size check, not the bootstrap
    out = tmp_path / "small.vhd"
    proc = _azimg("build", "debian", "-o", str(out), "--size", "300M")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("azimg: error: --size 300M is too small")
    assert "use --size" in lines[-1]
    assert list(tmp_path.iterdir()) == []  # no output, no work directory left behind


def test_unreachable_mirror_fails_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "x.vhd"
    cache = tmp_path / "cache"
    # Port 9 (discard) on loopback refuses at once; a fresh cache forces a bootstrap.
    proc = _azimg("build", "debian", "-o", str(out), "--mirror", "http://127.0.0.1:9/debian",
                  "--cache-dir", str(cache))  # fmt: skip
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "cannot reach the Debian archive" in last and "--mirror" in last
    assert not out.exists()
    assert not list((cache / "rootfs").glob("*.tar"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".azimg-build")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--release", "nosuchrelease"], "Debian release 'nosuchrelease' is not on"),
        (["--packages", "no-such-package-azimg"], "'no-such-package-azimg' is not in Debian"),
    ],
)
def test_archive_refusals_fail_cleanly(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "x.vhd"
    proc = _azimg("build", "debian", "-o", str(out), "--cache-dir", str(tmp_path / "c"), *args)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("azimg: error:") and message in last
    assert not out.exists()
    assert not list((tmp_path / "c" / "rootfs").glob("*/etc"))
