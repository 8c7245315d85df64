"""open_guest on real disks: sfdisk tables, mkfs'd filesystems placed at their offsets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from azimg.disk.guest import open_guest
from azimg.disk.guestfs import read_text

MiB = 1024 * 1024
ROOT_START = 2048 + 2048 + 16384 + 8192  # sectors: bios-boot 1M, ESP 8M, swap 4M


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def blkid(image: Path, offset: int) -> dict[str, str]:
    out = run("blkid", "-p", "-O", str(offset), "-o", "export", str(image))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def place(image: Path, volume: Path, offset: int) -> None:
    run(
        "dd",
        f"if={volume}",
        f"of={image}",
        "bs=1M",
        f"seek={offset}",
        "oflag=seek_bytes",
        "conv=notrunc,sparse",
    )


@pytest.fixture(scope="session")
def gpt_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("guest")
    root = work / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "etc/fstab").write_text("LABEL=rootfs / ext4 defaults 0 1\n")
    image = work / "disk.raw"
    with open(image, "wb") as fh:
        fh.truncate(96 * MiB)
    run_script = (
        "label: gpt\n"
        "size=1M, type=21686148-6449-6E6F-744E-656564454649\n"
        "size=8M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
        "size=4M, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F\n"
        "type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
    )
    subprocess.run(["sfdisk", "-q", str(image)], input=run_script, text=True, check=True)
    esp = work / "esp.img"
    run("mkfs.vfat", "-C", "-n", "EFI", str(esp), str(8 * 1024))
    place(image, esp, 4096 * 512)
    swap = work / "swap.img"
    with open(swap, "wb") as fh:
        fh.truncate(4 * MiB)
    run("mkswap", "-L", "swappy", str(swap))
    place(image, swap, 20480 * 512)
    run(
        "mkfs.ext4",
        "-q",
        "-L",
        "rootfs",
        "-d",
        str(root),
        "-E",
        f"offset={ROOT_START * 512}",
        str(image),
        "60M",
    )
    return image


def test_partitions_come_with_their_filesystems(gpt_disk: Path) -> None:
    with open_guest(gpt_disk) as g:
        assert g.format == "raw" and g.table.scheme == "gpt"
        kinds = [(p.number, p.partition.kind, p.fs_type) for p in g.partitions]
        assert kinds == [
            (1, "bios-boot", None),
            (2, "esp", "vfat"),
            (3, "linux-swap", "swap"),
            (4, "linux", "ext4"),
        ]
        bios, esp, swap, root = g.partitions
        assert esp.fs is not None and esp.label == "EFI" and esp.fs.listdir("/") == []
        assert bios.fs is None and "no filesystem" in bios.why
        assert swap.fs is None and "swap" in swap.why and swap.label == "swappy"
        assert root.fs is not None and root.why is None and root.label == "rootfs"
        assert read_text(root.fs, "/etc/os-release") == "ID=debian\n"
        assert g.filesystems() == [p for p in g.partitions if p.fs is not None]


def test_uuids_and_labels_match_blkid(gpt_disk: Path) -> None:
    with open_guest(gpt_disk) as g:
        for p in g.partitions[1:]:
            info = blkid(gpt_disk, p.partition.start)
            assert (p.fs_type, p.uuid, p.label) == (info["TYPE"], info["UUID"], info.get("LABEL"))


def test_qcow2_of_the_same_disk_opens_the_same(gpt_disk: Path, tmp_path: Path) -> None:
    qcow = tmp_path / "disk.qcow2"
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(gpt_disk), str(qcow))
    with open_guest(qcow) as g:
        assert g.format == "qcow2"
        root = g.partition(4)
        assert read_text(root.fs, "/etc/fstab") == "LABEL=rootfs / ext4 defaults 0 1\n"
        assert g.bytes_read < 2 * MiB


def test_bare_filesystem_without_table_is_the_whole_disk(tmp_path: Path) -> None:
    image = tmp_path / "bare.img"
    run("mkfs.ext4", "-q", str(image), "16M")
    with open_guest(image) as g:
        assert g.table.scheme == "none"
        (whole,) = g.partitions
        assert whole.partition is None and whole.number == 0 and whole.fs_type == "ext4"
        assert "lost+found" in whole.fs.listdir("/")


def test_mbr_disk_with_xfs_root_and_logical_ext4(tmp_path: Path) -> None:
    """The RHEL/Oracle shape: MBR, XFS root (mkfs.xfs -p), a logical partition after it."""
    image = tmp_path / "disk.raw"
    with open(image, "wb") as fh:
        fh.truncate(400 * MiB)
    script = "label: dos\nsize=320M, type=83, bootable\ntype=5\nsize=40M, type=83\n"
    subprocess.run(["sfdisk", "-q", str(image)], input=script, text=True, check=True)
    src = tmp_path / "os-release"
    src.write_text('ID="ol"\nVERSION_ID="9.4"\n')
    proto = tmp_path / "proto"
    proto.write_text(
        f"/dev/null\n0 0\nd--755 0 0\netc d--755 0 0\nos-release ---644 0 0 {src}\n$\n$\n"
    )
    xfs = tmp_path / "root.xfs"
    with open(xfs, "wb") as fh:
        fh.truncate(320 * MiB)
    run("mkfs.xfs", "-q", "-f", "-L", "root", "-p", str(proto), str(xfs))
    place(image, xfs, 2048 * 512)
    with open_guest(image) as g:
        assert g.table.scheme == "mbr"
        numbers = [(p.number, p.partition.kind, p.fs_type) for p in g.partitions]
        assert numbers == [(1, "linux", "xfs"), (5, "linux", None)]
        root = g.partition(1)
        assert root.label == "root" and root.uuid == blkid(image, 2048 * 512)["UUID"]
        assert read_text(root.fs, "/etc/os-release") == 'ID="ol"\nVERSION_ID="9.4"\n'
