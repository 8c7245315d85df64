"""Partition plans per generation and the filesystems written straight into the image file.

| generation | table | partitions (in disk order)                      | BIOS core.img       |
|------------|-------|-------------------------------------------------|---------------------|
| 1          | MBR   | root (bootable)                                 | MBR gap, LBA 1      |
| 2          | GPT   | ESP, root                                       | —                   |
| both       | GPT   | BIOS boot (1 MiB), ESP, root — as Debian's own  | BIOS boot partition |

Everything starts on a MiB boundary and the first partition at 1 MiB (PT-02). The root is last
so growpart can grow it into a resized disk.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from azimg.disk.partitions import GPT_BIOS_BOOT, GPT_ESP, GPT_LINUX
from azimg.errors import InvalidArgument
from azimg.image.build.spec import Generation, MiB
from azimg.image.build.tools import ToolFailed, run

SECTOR = 512
MBR_LINUX = "83"
ESP_SIZE = 127 * MiB
BIOS_BOOT_SIZE = 1 * MiB


@dataclass(frozen=True)
class Partition:
    role: str  # "bios-boot" | "esp" | "root"
    start: int  # bytes
    size: int  # bytes
    type: str  # GPT type GUID or MBR type byte (hex)


@dataclass(frozen=True)
class Layout:
    label: str  # "gpt" | "dos"
    disk_size: int
    partitions: tuple[Partition, ...]

    def get(self, role: str) -> Partition | None:
        return next((p for p in self.partitions if p.role == role), None)

    @property
    def root(self) -> Partition:
        part = self.get("root")
        assert part is not None
        return part

    @property
    def core_lba(self) -> int | None:
        """Where BIOS core.img goes: the BIOS-boot partition, or the MBR gap; None for UEFI."""
        if self.label == "dos":
            return 1
        bios = self.get("bios-boot")
        return None if bios is None else bios.start // SECTOR

    @property
    def core_room(self) -> int:
        if self.label == "dos":
            return self.partitions[0].start - SECTOR
        bios = self.get("bios-boot")
        return 0 if bios is None else bios.size


def plan(generation: Generation, disk_size: int) -> Layout:
    """Pure: the partitions for ``generation`` on a disk of ``disk_size`` bytes (whole MiB)."""
    assert disk_size % MiB == 0
    if generation is Generation.gen1:
        root = Partition("root", MiB, disk_size - MiB, MBR_LINUX)
        return Layout("dos", disk_size, (root,))
    parts: list[Partition] = []
    at = MiB
    if generation is Generation.both:
        parts.append(Partition("bios-boot", at, BIOS_BOOT_SIZE, GPT_BIOS_BOOT))
        at += BIOS_BOOT_SIZE
    parts.append(Partition("esp", at, ESP_SIZE, GPT_ESP))
    at += ESP_SIZE
    # GPT keeps its backup header and entry array in the last 33 sectors; stop at the last
    # whole MiB before them.
    end = disk_size - MiB
    if end - at < 64 * MiB:
        raise InvalidArgument(f"--size {disk_size // MiB}M leaves no room for the root filesystem")
    parts.append(Partition("root", at, end - at, GPT_LINUX))
    return Layout("gpt", disk_size, tuple(parts))


def sfdisk_script(layout: Layout) -> str:
    names = {"bios-boot": "BIOS boot", "esp": "EFI system", "root": "Linux root"}
    lines = [f"label: {layout.label}", "unit: sectors"]
    if layout.label == "gpt":
        lines.append("first-lba: 2048")
    for p in layout.partitions:
        fields = [f"start={p.start // SECTOR}", f"size={p.size // SECTOR}", f"type={p.type}"]
        if layout.label == "gpt":
            fields.append(f'name="{names[p.role]}"')
        elif p.role == "root":
            fields.append("bootable")
        lines.append(", ".join(fields))
    return "\n".join(lines) + "\n"


def tree_bytes(tree: Path) -> tuple[int, int]:
    """(bytes in 4 KiB blocks, inode count) the tree needs; no hard-link dedup (overestimate)."""
    blocks = inodes = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            inodes += 1
            st = os.lstat(os.path.join(dirpath, name))
            blocks += math.ceil(st.st_size / 4096)
    return blocks * 4096, inodes


def check_fits(tree: Path, layout: Layout) -> None:
    """A size too small is a one-line error before mkfs, with the size that would work."""
    used, _ = tree_bytes(tree)
    # ext4 overhead: journal (up to 64 MiB at these sizes), inode tables, reserved blocks (5%).
    need = int(used * 1.12) + 96 * MiB
    if need > layout.root.size:
        fixed = layout.disk_size - layout.root.size
        least = math.ceil((need + fixed) / (256 * MiB)) * 256
        raise InvalidArgument(
            f"--size {layout.disk_size // MiB}M is too small: the root filesystem needs about "
            f"{need // MiB} MiB, the partition has {layout.root.size // MiB} MiB",
            hint=f"use --size {least}M or more",
        )


def create_disk(image: Path, layout: Layout) -> None:
    """A sparse file of the disk's size with the partition table in it."""
    with image.open("wb") as fh:
        fh.truncate(layout.disk_size)
    run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "--quiet", image],
        what="writing the partition table",
        stdin=sfdisk_script(layout).encode(),
    )


def make_root(image: Path, layout: Layout, tree: Path, root_uuid: uuid.UUID) -> None:
    part = layout.root
    try:
        run(
            ["mkfs.ext4", "-q", "-F", "-L", "root", "-U", str(root_uuid), "-d", tree,
             "-E", f"offset={part.start}", image, f"{part.size // 1024}k"],
            what="making the root filesystem",
        )  # fmt: skip
    except ToolFailed as err:
        if "Could not allocate" in str(err) or "No space" in str(err):
            raise InvalidArgument(
                f"--size {layout.disk_size // MiB}M is too small for the root filesystem",
                hint="pass a larger --size",
            ) from err
        raise


def make_esp(image: Path, layout: Layout, volume_id: str, files: dict[str, bytes]) -> None:
    """FAT32 ESP at its offset (mkfs.fat --offset), filled with mtools; no mount."""
    part = layout.get("esp")
    assert part is not None
    run(
        # One sector per cluster keeps a 127 MiB FAT32 above its 65525-cluster minimum;
        # hidden sectors = the partition's LBA, as firmware reading the BPB expects.
        ["mkfs.fat", "-F", "32", "-s", "1", "-h", str(part.start // SECTOR), "-n", "EFI",
         "-i", volume_id.replace("-", ""), f"--offset={part.start // SECTOR}", image,
         str(part.size // 1024)],
        what="making the EFI system partition",
    )  # fmt: skip
    target = f"{image}@@{part.start}"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    dirs: set[str] = set()
    for guest_path in files:
        parts = guest_path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    for d in sorted(dirs, key=len):
        run(["mmd", "-i", target, f"::/{d}"], what=f"creating {d} on the ESP", env=env)
    for guest_path, data in files.items():
        staged = image.parent / ("esp-" + guest_path.strip("/").replace("/", "_"))
        staged.write_bytes(data)
        run(
            ["mcopy", "-i", target, staged, f"::/{guest_path.strip('/')}"],
            what=f"copying {guest_path} to the ESP",
            env=env,
        )
        staged.unlink()
