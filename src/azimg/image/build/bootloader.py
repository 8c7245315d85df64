"""GRUB for BIOS and UEFI, written into the image file without grub-install or a loop device.

Both loaders carry the same small embedded config: find the root filesystem by UUID and read
its ``/boot/grub/grub.cfg``. Every module they need is linked into the image, so the root
needs no ``/boot/grub/<platform>`` directory and nothing depends on a GRUB install step.

BIOS chain (what ``grub-setup`` would do, done by hand):

* MBR bytes 0..439 ← ``boot.img`` with its "kernel sector" field (offset 0x5C) set to the LBA
  where ``core.img`` starts; bytes 440..511 (disk signature, partition table) are kept.
* ``core.img`` ← written at that LBA: the MBR gap (generation 1) or the BIOS-boot partition
  (GPT). Its first sector (``diskboot.img``) ends with a blocklist whose first entry says where
  the rest of ``core.img`` lies; ``grub-mkimage`` fills the length, we set the start (LBA + 1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from azimg.image.build.tools import run

SECTOR = 512
HOST_GRUB_DIR = Path("/usr/lib/grub")

BIOS_MODULES = (
    "biosdisk", "part_msdos", "part_gpt", "ext2", "search_fs_uuid", "search", "configfile",
    "normal", "linux", "echo", "test", "gzio", "serial", "terminal",
)  # fmt: skip
EFI_MODULES = (
    "part_gpt", "part_msdos", "ext2", "fat", "search_fs_uuid", "search", "configfile",
    "normal", "linux", "echo", "test", "gzio", "serial", "terminal", "efi_gop", "all_video",
)  # fmt: skip

# boot.img (GRUB include/grub/i386/pc/boot.h): GRUB_BOOT_MACHINE_KERNEL_SECTOR at 0x5C, an
# 8-byte little-endian LBA; the boot code ends where the MBR's disk signature starts (440).
BOOT_KERNEL_SECTOR = struct.Struct("<Q")
BOOT_KERNEL_SECTOR_AT = 0x5C
MBR_CODE_END = 440

# diskboot.img (grub-core/boot/i386/pc/diskboot.S): the last 12 bytes of core.img's first
# sector are the first blocklist entry: start LBA (u64), sector count (u16), load segment (u16).
_BLOCKLIST = struct.Struct("<QHH")
BLOCKLIST_AT = SECTOR - _BLOCKLIST.size


@dataclass(frozen=True)
class BlocklistEntry:
    start: int  # LBA of core.img's second sector
    length: int  # sectors after the first
    segment: int  # real-mode segment it loads to (0x820)

    @classmethod
    def unpack(cls, raw: bytes) -> BlocklistEntry:
        return cls(*_BLOCKLIST.unpack(raw))

    def pack(self) -> bytes:
        return _BLOCKLIST.pack(self.start, self.length, self.segment)


def early_config(root_uuid: str) -> str:
    return (
        f"search --no-floppy --fs-uuid --set=root {root_uuid}\n"
        "set prefix=($root)/boot/grub\n"
        "configfile $prefix/grub.cfg\n"
    )


def kernel_cmdline(root_uuid: str) -> str:
    """CMD-01/02/06: serial console last (it becomes /dev/console), earlyprintk, eth0 naming."""
    return (
        f"root=UUID={root_uuid} ro console=tty0 console=ttyS0,115200n8 "
        "earlyprintk=ttyS0,115200 net.ifnames=0"
    )


def grub_cfg(root_uuid: str, cmdline: str, kernel: str, initrd: str) -> str:
    """The one boot menu both firmware paths read; kernel/initrd are paths on the root fs."""
    return f"""# written by azimg build: read by GRUB under BIOS (core.img) and UEFI (BOOTX64.EFI)
set default=0
set timeout=1
serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input serial console
terminal_output serial console
menuentry 'Debian GNU/Linux' --id debian {{
\tsearch --no-floppy --fs-uuid --set=root {root_uuid}
\techo 'Loading Linux ...'
\tlinux {kernel} {cmdline}
\techo 'Loading initial ramdisk ...'
\tinitrd {initrd}
}}
"""


def module_dir(tree: Path, platform: str) -> Path:
    """The guest release's own GRUB modules when it ships them, else the host's."""
    guest = tree / "usr/lib/grub" / platform
    return guest if (guest / "moddep.lst").is_file() else HOST_GRUB_DIR / platform


def make_image(tree: Path, platform: str, root_uuid: str, out: Path) -> bytes:
    """``grub-mkimage`` for ``i386-pc`` (core.img) or ``x86_64-efi`` (BOOTX64.EFI)."""
    cfg = out.with_suffix(".cfg")
    cfg.write_text(early_config(root_uuid))
    modules = BIOS_MODULES if platform == "i386-pc" else EFI_MODULES
    run(
        ["grub-mkimage", "-O", platform, "-d", module_dir(tree, platform), "-p", "/boot/grub",
         "-c", cfg, "-o", out, *modules],
        what=f"making the GRUB {platform} image",
    )  # fmt: skip
    return out.read_bytes()


def patch_core(core: bytes, lba: int) -> bytes:
    """core.img placed at ``lba``: its blocklist must point at ``lba + 1``."""
    entry = BlocklistEntry.unpack(core[BLOCKLIST_AT:SECTOR])
    sectors = -(-len(core) // SECTOR)
    assert entry.length == sectors - 1, f"unexpected diskboot blocklist {entry}"
    fixed = BlocklistEntry(lba + 1, entry.length, entry.segment)
    return core[:BLOCKLIST_AT] + fixed.pack() + core[SECTOR:]


def patch_boot(boot: bytes, mbr: bytes, core_lba: int) -> bytes:
    """The new MBR: boot.img's code aimed at ``core_lba``, the existing table kept."""
    assert len(boot) == SECTOR and len(mbr) == SECTOR
    code = bytearray(boot[:MBR_CODE_END])
    at = BOOT_KERNEL_SECTOR_AT
    code[at : at + BOOT_KERNEL_SECTOR.size] = BOOT_KERNEL_SECTOR.pack(core_lba)
    return bytes(code) + mbr[MBR_CODE_END:]


def install_bios(image: Path, tree: Path, root_uuid: str, core_lba: int, room: int) -> int:
    """Write boot.img and core.img into ``image``; ``room`` is the bytes free at ``core_lba``."""
    core = make_image(tree, "i386-pc", root_uuid, image.parent / "core.img")
    if len(core) > room:
        raise AssertionError(f"core.img is {len(core)} bytes; only {room} reserved")
    boot = (module_dir(tree, "i386-pc") / "boot.img").read_bytes()
    with image.open("r+b") as fh:
        mbr = fh.read(SECTOR)
        fh.seek(0)
        fh.write(patch_boot(boot, mbr, core_lba))
        fh.seek(core_lba * SECTOR)
        fh.write(patch_core(core, core_lba))
    return len(core)
