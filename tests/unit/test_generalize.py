"""azimg generalize on real ext4 disks: a root tree with a first boot's traces, mkfs.ext4 -d'd
into a GPT disk; the result is read back with our readers and checked by e2fsck."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from azimg.disk.guest import open_guest
from azimg.errors import AzimgError
from azimg.image.check import check_image
from azimg.image.generalize import Refused, generalize
from azimg.image.rules import CheckContext

MiB = 1024 * 1024
ROOT_START = 2048 * 512
DEPROVISION_RULES = {"AGT-05", "AGT-06", "AGT-11", "NET-08", "NET-09", "SEC-02", "SEC-04"}
DEPROVISION_RULES |= {"SEC-05", "SEC-09", "SEC-11", "SEC-01"}


def write(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    p.chmod(mode)


def booted_root(root: Path, *, agent: bool = True) -> None:
    """What a Debian VM's root holds after its first provisioned boot."""
    write(root, "/etc/os-release", "ID=debian\nVERSION_ID=12\n")
    write(root, "/etc/fstab", "LABEL=root / ext4 defaults 0 1\n")
    write(root, "/etc/hostname", "myvm\n")
    write(root, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
    write(
        root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n"
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        "azureuser:x:1000:1000::/home/azureuser:/bin/bash\n"
        "builder:x:1001:1001::/home/builder:/bin/bash\n",
    )
    write(
        root,
        "/etc/shadow",
        "root:$6$salt$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
        "azureuser:!:19000:0:99999:7:::\nbuilder:!:19000:0:99999:7:::\n",
        0o640,
    )
    write(
        root,
        "/etc/group",
        "root:x:0:\nsudo:x:27:azureuser,builder\nazureuser:x:1000:\nbuilder:x:1001:\n",
    )
    write(root, "/etc/sudoers.d/90-cloud-init-users", "azureuser ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    for kind in ("rsa", "ed25519"):
        write(root, f"/etc/ssh/ssh_host_{kind}_key", "PRIVATE\n", 0o600)
        write(root, f"/etc/ssh/ssh_host_{kind}_key.pub", "PUBLIC\n")
    write(root, "/etc/ssh/sshd_config", "PasswordAuthentication no\n")
    write(root, "/etc/resolv.conf", "nameserver 168.63.129.16\n")
    write(root, "/var/lib/cloud/instance/obj.pkl", "x")
    write(root, "/var/lib/cloud/instances/abc/boot-finished", "x")
    write(root, "/var/lib/cloud/data/reported_ready", "x")
    write(root, "/var/log/cloud-init.log", "log\n")
    write(root, "/var/lib/waagent/provisioned", "")
    write(root, "/var/lib/waagent/ovf-env.xml", "<Environment/>")
    write(root, "/var/lib/waagent/GoalState.1.xml", "<GoalState/>")
    write(root, "/var/lib/waagent/Certificates.pem", "CERT")
    write(root, "/var/lib/dhcp/dhclient.eth0.leases", "lease {}\n")
    write(root, "/root/.bash_history", "ls\n")
    write(root, "/home/azureuser/.bash_history", "sudo -i\n")
    write(root, "/home/azureuser/.ssh/authorized_keys", "ssh-ed25519 AAAA\n", 0o600)
    write(root, "/home/builder/notes with space.txt", "keep?\n")
    write(root, "/tmp/build.log", "x")
    write(root, "/var/lib/systemd/random-seed", "seed", 0o600)
    write(root, "/etc/udev/rules.d/70-persistent-net.rules", "SUBSYSTEM==net\n")
    (root / "var/log/journal/0123456789abcdef0123456789abcdef").mkdir(parents=True)
    write(root, "/var/log/journal/0123456789abcdef0123456789abcdef/system.journal", "j")
    if agent:
        write(root, "/usr/bin/cloud-init", "#!/bin/sh\n", 0o755)
        write(root, "/etc/cloud/cloud.cfg", "datasource_list: [ Azure ]\n")


def make_disk(work: Path, *, agent: bool = True, name: str = "disk.raw") -> Path:
    root = work / f"root-{name}"
    booted_root(root, agent=agent)
    image = work / name
    with open(image, "wb") as fh:
        fh.truncate(64 * MiB)
    subprocess.run(
        ["sfdisk", "-q", str(image)],
        input="label: gpt\ntype=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
        text=True,
        check=True,
    )
    subprocess.run(
        [
            "mkfs.ext4",
            "-q",
            "-L",
            "root",
            "-d",
            str(root),
            "-E",
            f"offset={ROOT_START}",
            str(image),
            "60M",
        ],
        check=True,
        capture_output=True,
    )
    return image


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fsck_clean(image: Path) -> None:
    proc = subprocess.run(
        ["e2fsck", "-fn", f"{image}?offset={ROOT_START}"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def failed_rules(image: Path) -> set[str]:
    report = check_image(image, CheckContext(generalized=True))
    return {f.rule for f in report.findings if f.status.value == "fail"}


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    return make_disk(tmp_path)


def test_output_has_no_deprovision_findings_and_input_is_untouched(
    disk: Path, tmp_path: Path
) -> None:
    before = sha(disk)
    assert failed_rules(disk) & DEPROVISION_RULES  # the fixture really is dirty
    out = tmp_path / "gen.vhd"
    result = generalize(disk, out, remove_users=True)
    assert sha(disk) == before
    assert failed_rules(out) & DEPROVISION_RULES == set()
    fsck_clean(out)
    assert result.users_removed == ("azureuser", "builder")
    done = {(a.path, a.done) for a in result.actions}
    assert ("/etc/machine-id", "emptied") in done
    assert ("/var/lib/waagent/provisioned", "deleted") in done
    assert ("/home/builder", "deleted tree") in done
    assert ("/etc/shadow", "rewrote") in done


def test_machine_id_emptied_not_deleted_and_files_keep_owner_and_mode(
    disk: Path, tmp_path: Path
) -> None:
    out = tmp_path / "gen.vhd"
    generalize(disk, out, remove_users=True)
    with open_guest(out) as img:
        fs = img.partition(1).fs
        assert fs is not None
        mid = fs.lstat("/etc/machine-id")
        assert mid.size == 0 and stat.S_IMODE(mid.mode) == 0o444
        shadow = fs.lstat("/etc/shadow")
        assert stat.S_IMODE(shadow.mode) == 0o640 and shadow.uid == 0
        text = fs.read_file("/etc/shadow").decode()
        assert text.startswith("root:*LOCK*:") and "azureuser" not in text
        group = fs.read_file("/etc/group").decode()
        assert "sudo:x:27:\n" in group and "builder" not in group
        assert fs.read_file("/etc/hostname") == b"localhost.localdomain\n"
        assert fs.listdir("/var/lib/cloud") == [] and fs.listdir("/var/lib/waagent") == []
        assert fs.listdir("/tmp") == []
        assert sorted(fs.listdir("/etc/ssh")) == ["sshd_config"]
        with pytest.raises(FileNotFoundError):
            fs.lstat("/etc/sudoers.d/90-cloud-init-users")


def test_keep_user_keeps_that_user_and_its_home(disk: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen.vhd"
    result = generalize(disk, out, keep_users=("builder",))
    assert result.users_removed == ("azureuser",) and result.users_kept == ("builder",)
    with open_guest(out) as img:
        fs = img.partition(1).fs
        assert fs is not None
        assert "builder:x:1001" in fs.read_file("/etc/passwd").decode()
        assert fs.read_file("/home/builder/notes with space.txt") == b"keep?\n"


def test_in_place_replaces_the_input(disk: Path) -> None:
    generalize(disk, in_place=True, remove_users=True)
    assert failed_rules(disk) & DEPROVISION_RULES == set()
    fsck_clean(disk)


def test_no_agent_is_refused_unless_forced(tmp_path: Path) -> None:
    disk = make_disk(tmp_path, agent=False)
    before = sha(disk)
    with pytest.raises(Refused, match="no provisioning agent"):
        generalize(disk, tmp_path / "out.vhd")
    assert not (tmp_path / "out.vhd").exists()
    result = generalize(disk, tmp_path / "out.vhd", force=True)
    assert result.agents == () and sha(disk) == before


def test_a_failure_part_way_leaves_the_input_untouched(disk: Path, tmp_path: Path) -> None:
    """debugfs killed after it wrote part of the script: in place, the input stays as it was."""
    shim = tmp_path / "bin"
    shim.mkdir()
    real = subprocess.run(["which", "debugfs"], capture_output=True, text=True).stdout.strip()
    real = real or "/usr/sbin/debugfs"
    (shim / "debugfs").write_text(
        "#!/bin/sh\n"
        'script="$3"; head -n 3 "$script" > "$script.half"\n'
        f'{real} -w -f "$script.half" "$4" >/dev/null 2>&1\n'
        "kill -9 $$\n"
    )
    (shim / "debugfs").chmod(0o755)
    before = sha(disk)
    env_path = os.environ["PATH"]
    os.environ["PATH"] = f"{shim}:{env_path}"
    try:
        with pytest.raises(AzimgError, match="debugfs failed"):
            generalize(disk, in_place=True)
    finally:
        os.environ["PATH"] = env_path
    assert sha(disk) == before
    assert [p.name for p in disk.parent.iterdir() if p.name.startswith(".")] == []


def test_bad_arguments_are_refused(disk: Path, tmp_path: Path) -> None:
    with pytest.raises(AzimgError, match="-o OUT"):
        generalize(disk)
    with pytest.raises(AzimgError, match="input itself"):
        generalize(disk, disk)
    with pytest.raises(AzimgError, match="no such login user"):
        generalize(disk, tmp_path / "o.vhd", keep_users=("nobody",))


def test_xfs_root_is_refused_with_the_slower_way_named(tmp_path: Path) -> None:
    """A real XFS root (mkfs.xfs -p) is found, named, and refused: azimg writes ext4 only."""
    files = {"os-release": "ID=rhel\n", "fstab": "LABEL=root / xfs defaults 0 0\n"}
    files["passwd"] = "root:x:0:0::/root:/bin/bash\n"
    lines = ["/dev/null", "0 0", "d--755 0 0", "etc d--755 0 0"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        lines.append(f"{name} ---644 0 0 {tmp_path / name}")
    proto = tmp_path / "proto"
    proto.write_text("\n".join([*lines, "$", "$"]) + "\n")
    image = tmp_path / "xfs.raw"
    with open(image, "wb") as fh:
        fh.truncate(320 * MiB)
    subprocess.run(["mkfs.xfs", "-q", "-f", "-L", "root", "-p", str(proto), str(image)],
                   check=True, capture_output=True)  # fmt: skip
    before = sha(image)
    with pytest.raises(Refused, match=r"root filesystem is xfs.*virt-sysprep"):
        generalize(image, tmp_path / "o.vhd")
    assert sha(image) == before and not (tmp_path / "o.vhd").exists()


def test_cli_reports_every_action_as_json(disk: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen.vhd"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "azimg.cli.main",
            "generalize",
            str(disk),
            "-o",
            str(out),
            "--remove-users",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(proc.stdout)
    assert doc["output"] == str(out) and doc["inPlace"] is False
    paths = {a["path"] for a in doc["actions"]}
    assert {"/etc/ssh/ssh_host_rsa_key", "/var/lib/cloud/instance", "/root/.bash_history"} <= paths


def test_a_separate_var_partition_is_written_where_fstab_puts_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    booted_root(root)
    (root / "etc/fstab").write_text(
        "LABEL=root / ext4 defaults 0 1\nLABEL=var /var ext4 defaults 0 2\n"
    )
    var = tmp_path / "var"
    (root / "var").rename(var)
    (root / "var").mkdir()
    image = tmp_path / "two.raw"
    with open(image, "wb") as fh:
        fh.truncate(128 * MiB)
    subprocess.run(["sfdisk", "-q", str(image)], text=True, check=True,
                   input="label: gpt\nsize=60M\nsize=60M\n")  # fmt: skip
    var_start = ROOT_START + 60 * MiB
    for label, tree, start in (("root", root, ROOT_START), ("var", var, var_start)):
        subprocess.run(["mkfs.ext4", "-q", "-L", label, "-d", str(tree), "-E", f"offset={start}",
                        str(image), "60M"], check=True, capture_output=True)  # fmt: skip
    out = tmp_path / "gen.vhd"
    result = generalize(image, out, remove_users=True)
    assert ("/var/lib/waagent/provisioned", "deleted") in {(a.path, a.done) for a in result.actions}
    with open_guest(out) as img:
        var_fs, root_fs = img.partition(2).fs, img.partition(1).fs
        assert var_fs is not None and root_fs is not None
        assert var_fs.listdir("/lib/cloud") == [] and var_fs.listdir("/lib/waagent") == []
        assert root_fs.lstat("/etc/machine-id").size == 0
    for start in (ROOT_START, var_start):
        proc = subprocess.run(["e2fsck", "-fn", f"{out}?offset={start}"], capture_output=True)
        assert proc.returncode == 0, proc.stdout


def test_a_filesystem_left_dirty_is_repaired_on_the_copy_first(disk: Path, tmp_path: Path) -> None:
    """A VM stopped hard leaves needs_recovery and a not-clean state: the journal is replayed
    (e2fsck -p on the copy) before anything is read, and the input keeps its dirty state."""
    dev = f"{disk}?offset={ROOT_START}"
    subprocess.run(["debugfs", "-w", "-R", "feature needs_recovery", dev],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["debugfs", "-w", "-R", "ssv state 0", dev], check=True, capture_output=True)
    before = sha(disk)
    out = tmp_path / "gen.vhd"
    result = generalize(disk, out, remove_users=True)
    assert result.actions[0].done == "replayed journal" and "partition 1" in result.actions[0].path
    assert sha(disk) == before
    fsck_clean(out)
    assert failed_rules(out) & DEPROVISION_RULES == set()
