"""``azimg build debian``: the stages in order, each reported, output renamed into place last.

Stages: bootstrap (cached) → copy root → configure → partition → root filesystem → ESP → GRUB
→ VHD. The disk is assembled in a hidden directory next to the output, so the final rename stays
on one filesystem and a failure at any stage leaves no file at the output path; the root tree is
assembled next to the cache (see rootfs.copy_tree).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from azimg.disk.convert import make_fixed_in_place
from azimg.errors import InvalidArgument
from azimg.image.build import bootloader, customize, layout, rootfs, tools
from azimg.image.build.customize import Identity
from azimg.image.build.spec import BuildSpec

Report = Callable[[str], None]


@dataclass
class BuildResult:
    output: str
    release: str
    generation: str
    agent: str
    specialized: bool
    virtual_size: int
    file_size: int
    allocated_bytes: int
    root_uuid: str
    esp_volume_id: str | None
    partition_table: str
    partitions: list[dict[str, Any]]
    kernel: str
    kernel_cmdline: str
    cache: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build(
    spec: BuildSpec, *, report: Report = lambda _s: None, refresh: bool = False
) -> BuildResult:
    if os.geteuid() != 0:
        raise InvalidArgument(
            "azimg build needs root (mmdebstrap --mode=root, file owners in the image)",
            hint="run it with sudo",
        )
    tools.require_all()
    cache_dir = spec.cache_dir or rootfs.default_cache_dir()
    marks: list[tuple[str, float]] = []

    def stage(name: str) -> None:
        marks.append((name, time.monotonic()))
        report(name)

    plan = layout.plan(spec.generation, spec.size)
    stage("bootstrap")
    cached = rootfs.bootstrap(
        spec.release, spec.packages, cache_dir=cache_dir, mirror=spec.mirror, refresh=refresh
    )
    work = Path(tempfile.mkdtemp(prefix=".azimg-build-", dir=spec.output.parent))
    # The tree sits next to the cache so /usr and /boot can be hard links into it.
    tree = Path(tempfile.mkdtemp(prefix="root-", dir=rootfs.work_dir(cache_dir)))
    try:
        stage("copy root")
        rootfs.copy_tree(cached.tree, tree)
        stage("configure")
        root_uuid = uuid.uuid4()
        esp_id = None
        if spec.generation.uefi:
            raw_id = secrets.token_hex(4).upper()
            esp_id = f"{raw_id[:4]}-{raw_id[4:]}"
        kernel_version = _kernel_version(tree)
        kernel, initrd = _boot_paths(tree, kernel_version)
        cmdline = bootloader.kernel_cmdline(str(root_uuid))
        customize.apply(
            tree,
            spec,
            Identity(str(root_uuid), esp_id),
            bootloader.grub_cfg(str(root_uuid), cmdline, kernel, initrd),
            cmdline,
        )
        packages = _installed_packages(tree)
        layout.check_fits(tree, plan)
        stage("partition")
        image = work / "disk.raw"
        layout.create_disk(image, plan)
        stage("root filesystem")
        layout.make_root(image, plan, tree, root_uuid)
        if spec.generation.uefi:
            stage("EFI system partition")
            efi = bootloader.make_image(tree, "x86_64-efi", str(root_uuid), work / "bootx64.efi")
            assert esp_id is not None
            layout.make_esp(image, plan, esp_id, {"/EFI/BOOT/BOOTX64.EFI": efi})
        if spec.generation.bios:
            stage("BIOS boot loader")
            assert plan.core_lba is not None
            bootloader.install_bios(image, tree, str(root_uuid), plan.core_lba, plan.core_room)
        stage("VHD")
        converted = make_fixed_in_place(image)
        os.replace(image, spec.output)
        stage("done")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tree, ignore_errors=True)
    st = spec.output.stat()
    seconds = {name: round(marks[i + 1][1] - t, 2) for i, (name, t) in enumerate(marks[:-1])}
    return BuildResult(
        output=str(spec.output),
        release=spec.release,
        generation=spec.generation.value,
        agent=spec.agent.value,
        specialized=spec.specialized is not None,
        virtual_size=converted.virtual_size,
        file_size=st.st_size,
        allocated_bytes=st.st_blocks * 512,
        root_uuid=str(root_uuid),
        esp_volume_id=esp_id,
        partition_table=plan.label,
        partitions=[
            {"role": p.role, "start": p.start, "size": p.size, "type": p.type}
            for p in plan.partitions
        ],
        kernel=kernel_version,
        kernel_cmdline=cmdline,
        cache={"dir": str(cache_dir), "key": cached.key, "hit": cached.hit},
        seconds=seconds,
        packages=packages,
    )


def _kernel_version(tree: Path) -> str:
    versions = sorted(p.name for p in (tree / "lib/modules").iterdir() if p.is_dir())
    if not versions:
        raise InvalidArgument("the bootstrapped root has no kernel in /lib/modules")
    return versions[-1]


def _boot_paths(tree: Path, version: str) -> tuple[str, str]:
    """Debian's /vmlinuz and /initrd.img links follow kernel upgrades; use them when present."""
    if (tree / "vmlinuz").is_symlink() and (tree / "initrd.img").is_symlink():
        return "/vmlinuz", "/initrd.img"
    return f"/boot/vmlinuz-{version}", f"/boot/initrd.img-{version}"


def _installed_packages(tree: Path) -> dict[str, str]:
    """name → version of every installed package, from the dpkg database."""
    found: dict[str, str] = {}
    status = (tree / "var/lib/dpkg/status").read_text(errors="replace")
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            found[fields["Package"]] = fields.get("Version", "")
    return dict(sorted(found.items()))
