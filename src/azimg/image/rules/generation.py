"""Which Hyper-V generations the image can boot, and the partition/generation rules.

The detection follows prerequisites.md §5.2: Gen1 (BIOS) needs boot code in the MBR and either
an MBR Linux/BSD partition or a GPT BIOS-boot (GRUB core.img) / FreeBSD boot partition; Gen2
(UEFI) needs a GPT ESP, and Azure starts a VM from an uploaded disk without boot variables, so
the removable-media fallback ``\\EFI\\BOOT\\BOOTX64.EFI`` is what actually gets loaded.

Deliberate tolerance: the catalogue asks for a *bootable* MBR partition; GRUB's boot.img and
SeaBIOS both ignore the active flag, so MBR boot code that carries GRUB's signature counts too.
"""

from __future__ import annotations

from dataclasses import dataclass

from azimg.disk.partitions import GPT_FREEBSD_BOOT, GPT_LINUX_LVM
from azimg.image.facts.layout import BSD_MBR_TYPES, DiskLayout
from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev

MIB = 1024 * 1024
TIB = 1024**4
LINUX_MBR_TYPES = ("0x83", "0x8E", "0xFD", *BSD_MBR_TYPES)
FALLBACK_LOADERS = {"x86_64": "BOOTX64.EFI", "aarch64": "BOOTAA64.EFI"}

PT_01 = Rule("PT-01", B, "a valid MBR or GPT partition table", "repartition or reinstall")
PT_02 = Rule(
    "PT-02",
    B,
    "first partition starts at 1 MiB or later (Marketplace)",
    "echo '+1M,' | sfdisk --move-data <dev> -N 1",
)
PT_03 = Rule(
    "PT-03",
    A,
    "first partition starts at 1 MiB or later (alignment)",
    "echo '+1M,' | sfdisk --move-data <dev> -N 1",
)
PT_05 = Rule(
    "PT-05",
    W,
    "a single root filesystem partition (plus boot, ESP, BIOS-boot) (Marketplace)",
    "merge the layout into one root partition",
)
PT_06 = Rule("PT-06", A, "root not on LVM (cloned-disk VG name clashes)", "use plain partitions")
GEN_01 = Rule(
    "GEN-01",
    B,
    "the image boots under at least one Hyper-V generation",
    "install GRUB for BIOS (boot.img + core.img) and/or an ESP with \\EFI\\BOOT\\BOOTX64.EFI",
)
GEN_02 = Rule(
    "GEN-02",
    B,
    "the requested generation is one the image can boot",
    "upload with a matching --hyper-v-generation, or add the missing boot path",
)
GEN_03 = Rule(
    "GEN-03",
    W,
    "Gen2: the ESP holds the fallback loader \\EFI\\BOOT\\BOOTX64.EFI",
    "copy the distribution's shim or GRUB to EFI/BOOT/BOOTX64.EFI on the ESP",
)
GEN_04 = Rule(
    "GEN-04",
    W,
    "Gen2: /etc/fstab mounts the ESP at /boot/efi",
    "add 'UUID=<esp-uuid> /boot/efi vfat defaults,nofail 0 1' to /etc/fstab",
)
GEN_05 = Rule("GEN-05", B, "a 64-bit OS (x86-64 or AArch64)", "use a 64-bit build")
GEN_06 = Rule(
    "GEN-06", W, "Arm64 images are declared Generation 2", "upload Arm64 images as V2, Arm64"
)
PT_04 = Rule(
    "PT-04",
    W,
    "the backup GPT header sits at the last LBA of the disk",
    "sgdisk -e <image> after resizing",
)
GEN_10 = Rule(
    "GEN-10",
    A,
    "root filesystem not encrypted with a passphrase (no console to type it)",
    "use Azure platform encryption instead",
)
SZ_03 = Rule(
    "SZ-03",
    B,
    "an OS disk larger than 2 TiB is GPT and used as Gen2",
    "convert to GPT with an ESP and deploy as V2",
)


@dataclass(frozen=True)
class Generations:
    gen1: bool
    gen2: bool
    gen1_why: str
    gen2_why: str
    fallback_loader: bool  # the ESP holds \EFI\BOOT\BOOT{X64,AA64}.EFI
    mbr_esp: bool = False  # an ESP in an MBR table (outside documented support)

    @property
    def label(self) -> str:
        if self.gen1 and self.gen2:
            return "gen1+gen2"
        return "gen1" if self.gen1 else "gen2" if self.gen2 else "none"

    def to_json(self) -> dict[str, object]:
        return {
            "gen1": self.gen1,
            "gen2": self.gen2,
            "gen1_why": self.gen1_why,
            "gen2_why": self.gen2_why,
            "fallback_loader": self.fallback_loader,
        }


def bootable_generations(disk: DiskLayout, arch: str | None = None) -> Generations:
    """§5.2: what the partition table, the MBR boot code and the ESP allow."""
    parts = disk.partitions
    gen1, gen1_why = False, "no boot code in the MBR"
    if disk.mbr_boot_code:
        if disk.scheme == "mbr":
            linux = [p for p in parts if p.type in LINUX_MBR_TYPES]
            active = [p for p in linux if p.bootable]
            if active or (linux and disk.mbr_boot_code_grub):
                gen1 = True
                gen1_why = f"MBR boot code and partition {(active or linux)[0].index}"
            else:
                gen1_why = "MBR boot code but no bootable Linux/BSD partition"
        elif disk.scheme == "gpt":
            boot = [p for p in parts if p.is_bios_boot or p.has_type(GPT_FREEBSD_BOOT)]
            if boot:
                gen1 = True
                gen1_why = f"protective MBR boot code and BIOS-boot partition {boot[0].index}"
            else:
                gen1_why = "GPT without a BIOS-boot partition for GRUB's core.img"
    loader = FALLBACK_LOADERS.get(arch or "x86_64", "BOOTX64.EFI")
    has_fallback = f"EFI/BOOT/{loader}" in disk.esp_files
    esps = disk.esps
    gen2, gen2_why = False, "no EFI System Partition"
    mbr_esp = False
    if disk.scheme == "gpt" and esps:
        if has_fallback:
            gen2, gen2_why = True, f"ESP (partition {esps[0].index}) with \\EFI\\BOOT\\{loader}"
        elif disk.esp_error:
            gen2_why = f"ESP could not be read: {disk.esp_error}"
        else:
            # Catalogue: WARN only — firmware may still find a vendor path (unverified on Azure).
            gen2 = any(disk.esp_files)
            gen2_why = f"ESP (partition {esps[0].index}) without \\EFI\\BOOT\\{loader}" + (
                "; vendor loaders only" if gen2 else "; no EFI loader at all"
            )
    elif disk.scheme == "mbr" and esps:
        mbr_esp = True
        gen2_why = "ESP in an MBR table (type 0xEF): Gen2 needs GPT"
    return Generations(gen1, gen2, gen1_why, gen2_why, has_fallback, mbr_esp)


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    disk, g = facts.disk, facts.guest
    out: list[Finding] = []
    if disk.scheme == "none" or disk.table_error:
        out.append(PT_01.failed(ev("LBA0/LBA1", disk.table_error or "no MBR or GPT")))
        return out
    out.append(PT_01.passed(ev("partition table", disk.scheme.upper())))
    if disk.partitions:
        first = min(disk.partitions, key=lambda p: p.start)
        e = ev("partition table", f"partition {first.index} starts at LBA {first.start // 512}")
        rule = PT_02 if ctx.marketplace else PT_03
        out.append(rule.check(first.start >= MIB, e))
    if ctx.marketplace:
        data = [
            p
            for p in disk.partitions
            if not (p.is_esp or p.is_bios_boot)
            and not (
                p.filesystem == "ext4"
                and p.size < 2 * 1024 * MIB
                and p.index != facts.root_partition
            )
        ]
        out.append(PT_05.check(len(data) <= 1, ev("partition table", f"{len(data)} data parts")))
    if disk.scheme == "gpt":
        gpt_issues = [x for x in disk.table_problems if "backup" in x.lower()]
        out.append(PT_04.check(not gpt_issues, *(ev("GPT", x) for x in gpt_issues)))
    luks = [p for p in disk.partitions if p.filesystem == "crypto_LUKS"]
    out.append(
        GEN_10.check(
            not luks, *(ev("partition table", f"partition {p.index} is LUKS") for p in luks)
        )
    )
    lvm = [p for p in disk.partitions if p.has_type(GPT_LINUX_LVM, "0x8E")]
    if lvm:
        out.append(PT_06.failed(ev("partition table", f"LVM partition {lvm[0].index}")))
    arch = g.system.arch.value if g.system.arch else None
    gens = bootable_generations(disk, arch)
    detail = f"gen1: {gens.gen1_why}; gen2: {gens.gen2_why}"
    out.append(
        GEN_01.check(gens.gen1 or gens.gen2, ev("partition table + ESP", detail), **gens.to_json())
    )
    if ctx.generation is not None:
        ok = gens.gen1 if ctx.generation == "1" else gens.gen2
        out.append(
            GEN_02.check(
                ok,
                ev("partition table + ESP", f"requested V{ctx.generation}; {detail}"),
                requested=ctx.generation,
                bootable=gens.label,
            )
        )
    wants_gen2 = ctx.generation == "2" or (ctx.generation is None and bool(disk.esps))
    if wants_gen2:
        if gens.mbr_esp:
            out.append(GEN_03.failed(ev("partition table", gens.gen2_why)))
        elif disk.esp_error:
            out.append(GEN_03.unreadable(disk.esp_error))
        else:
            files = ", ".join(disk.esp_files) or "no files under EFI/BOOT"
            out.append(GEN_03.check(gens.fallback_loader, ev("ESP:/EFI/BOOT", files)))
        why = blocked(g, "fstab")
        if why:
            out.append(GEN_04.unreadable(why))
        elif g.os.kind == "linux" and g.os.family != "flat":
            esp = g.storage.fstab_mount("/boot/efi") or g.storage.fstab_mount("/efi")
            boot = g.storage.fstab_mount("/boot")
            ok = esp is not None or (boot is not None and boot.fstype in ("vfat", "fat", "msdos"))
            found = esp or boot
            out.append(
                GEN_04.check(
                    ok, ev(found.where, found.spec) if found else ev("/etc/fstab", "no ESP entry")
                )
            )
    why = blocked(g, "arch")
    if why:
        out.append(GEN_05.unreadable(why))
    elif g.system.arch is None:
        if g.os.kind == "linux":
            out.append(GEN_05.unreadable("no ELF /sbin/init or systemd binary found"))
    else:
        ok = g.system.arch.value in ("x86_64", "aarch64") and g.system.elf_class == 2
        out.append(
            GEN_05.check(
                ok,
                ev(g.system.arch.where, f"ELF {g.system.arch.value}, class {g.system.elf_class}"),
            )
        )
        if g.system.arch.value == "aarch64":
            out.append(
                GEN_06.check(ctx.generation != "1", ev(g.system.arch.where, "AArch64 requires V2"))
            )
    if disk.size > 2 * TIB:
        ok = disk.scheme == "gpt" and gens.gen2 and ctx.generation != "1"
        out.append(SZ_03.check(ok, ev("footer current size", f"{disk.size} bytes")))
    return out
