"""Rules are pure functions over facts: table-driven tests, no image I/O.

The baseline facts come from one good root tree (``make_root``); each case changes one fact
with ``dataclasses.replace`` and names the rule, status and severity it must produce.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from azimg.disk.guestfs import DirectoryFS
from azimg.disk.partitions import GPT_BIOS_BOOT, GPT_ESP, GPT_LINUX
from azimg.image.check import evaluate
from azimg.image.facts.accounts import Account
from azimg.image.facts.agents import CloudInitInfo, WaagentInfo
from azimg.image.facts.files import Located
from azimg.image.facts.layout import DiskLayout, PartitionInfo
from azimg.image.facts.storage import FstabEntry
from azimg.image.findings import Finding, Severity, Status
from azimg.image.inspect import GuestFacts, ImageFacts, gather
from azimg.image.rules import (
    CheckContext,
    Rule,
    accounts,
    agents,
    boot,
    container,
    debian,
    flatcar,
    freebsd,
    generation,
    kernel,
    linux,
    network,
    openbsd,
    oracle,
    packages,
    rhel,
    services,
    storage,
    suse,
    ubuntu,
)
from azimg.image.rules.agents import provisioner
from azimg.image.rules.generation import bootable_generations
from tests.unit.test_inspect import ESP_UUID, ROOT_UUID, make_root

MIB = 1024 * 1024
LINUX = GPT_LINUX.upper()  # the inspector reports GPT types in upper case


def part(
    index: int, type_: str, start_mib: int, *, fs: str | None = None, **kw: Any
) -> PartitionInfo:
    scheme = "mbr" if type_.startswith("0x") else "gpt"
    return PartitionInfo(index, scheme, start_mib * MIB, 8 * MIB, type_, filesystem=fs, **kw)


HYBRID = DiskLayout(
    size=64 * MIB,
    scheme="gpt",
    partitions=(
        part(1, GPT_BIOS_BOOT.upper(), 1),
        part(2, GPT_ESP.upper(), 2, fs="vfat"),
        part(3, LINUX, 10, fs="ext4"),
    ),
    mbr_boot_code=True,
    mbr_boot_code_grub=True,
    esp_files=("EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/GRUBX64.EFI"),
)
IDS = frozenset({f"UUID={ROOT_UUID}", f"UUID={ESP_UUID.lower()}"})


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> GuestFacts:
    tmp = tmp_path_factory.mktemp("rules")
    return gather(DirectoryFS(make_root(tmp)))


def run(g: GuestFacts, disk: DiskLayout = HYBRID, **ctx: Any) -> dict[str, Finding]:
    return {f.rule: f for f in evaluate(ImageFacts(disk, g, 3, IDS), CheckContext(**ctx))}


def test_the_good_tree_passes_every_blocker(base: GuestFacts) -> None:
    out = run(base, generation="2")
    bad = [
        (f.rule, f.status, f.evidence)
        for f in out.values()
        if f.severity is Severity.blocker
        and f.status is not Status.passed
        and f.status is not Status.not_applicable
    ]
    assert bad == []


def amend(g: GuestFacts, kind: str, **kw: Any) -> GuestFacts:
    """``g`` with fields of one kind of fact replaced: ``amend(g, "boot", cmdline=...)``."""
    return replace(g, **{kind: replace(getattr(g, kind), **kw)})


# (name, change to the guest facts, context, rule, status, severity)
def _ci(base: GuestFacts, **kw: Any) -> CloudInitInfo:
    return replace(base.agents.cloud_init, **kw)


CASES: list[tuple[str, Any, dict[str, Any], str, Status, Severity]] = [
    (
        "ttyS0 missing",
        lambda g: amend(g, "boot", cmdline=replace(g.boot.cmdline, args=("ro",))),
        {},
        "CMD-01",
        Status.failed,
        Severity.warning,
    ),
    (
        "ttyS0 missing, Marketplace",
        lambda g: amend(g, "boot", cmdline=replace(g.boot.cmdline, args=("ro",))),
        {"marketplace": True},
        "CMD-01",
        Status.failed,
        Severity.blocker,
    ),
    (
        "no boot config",
        lambda g: amend(g, "boot", cmdline=replace(g.boot.cmdline, args=None)),
        {},
        "CMD-01",
        Status.unreadable,
        Severity.warning,
    ),
    (
        "fstab swap",
        lambda g: amend(
            g,
            "storage",
            fstab=(*g.storage.fstab, FstabEntry("/swap", "none", "swap", (), "/etc/fstab:9")),
        ),
        {},
        "SWP-01",
        Status.failed,
        Severity.warning,
    ),
    (
        "fstab swap, Marketplace",
        lambda g: amend(g, "storage", swap_files=("/swapfile",)),
        {"marketplace": True},
        "SWP-01",
        Status.failed,
        Severity.blocker,
    ),
    (
        "no datasource_list: default includes Azure",
        lambda g: amend(g, "agents", cloud_init=_ci(g, datasource_list=None)),
        {},
        "AGT-07",
        Status.passed,
        Severity.blocker,
    ),
    (
        "broken YAML",
        lambda g: amend(
            g,
            "agents",
            cloud_init=_ci(
                g, yaml_errors=(Located("mapping values", "/etc/cloud/cloud.cfg.d/x.cfg"),)
            ),
        ),
        {},
        "AGT-07",
        Status.failed,
        Severity.blocker,
    ),
    (
        "udf off, cloud-init provisions",
        lambda g: amend(
            g,
            "kernel",
            modprobe_disabled={"udf": Located("install udf /bin/true", "/etc/modprobe.d/c.conf:1")},
        ),
        {},
        "KRN-08",
        Status.failed,
        Severity.warning,
    ),
    (
        "empty root password",
        lambda g: amend(
            g,
            "accounts",
            users=(Account("root", 0, "/root", "/bin/bash", "empty", "/etc/shadow:1"),),
        ),
        {},
        "SEC-01",
        Status.failed,
        Severity.warning,
    ),
    (
        "ClientAliveInterval 0",
        lambda g: amend(
            g,
            "accounts",
            sshd_config={"clientaliveinterval": Located("0", "/etc/ssh/sshd_config:1")},
        ),
        {},
        "SSH-02",
        Status.failed,
        Severity.advice,
    ),
    (
        "ClientAliveInterval 300, Marketplace",
        lambda g: amend(
            g,
            "accounts",
            sshd_config={"clientaliveinterval": Located("300", "/etc/ssh/sshd_config:1")},
        ),
        {"marketplace": True},
        "SSH-02",
        Status.failed,
        Severity.warning,
    ),
    (
        "kernel facet unreadable",
        lambda g: replace(g, unreadable={"kernel": "CorruptImage: loop"}),
        {},
        "KRN-02",
        Status.unreadable,
        Severity.blocker,
    ),
    (
        "initramfs unreadable",
        lambda g: amend(
            g,
            "kernel",
            kernels=tuple(
                replace(k, initramfs_modules=None, initramfs_error="bad zstd frame")
                for k in g.kernel.kernels
            ),
        ),
        {},
        "KRN-02",
        Status.unreadable,
        Severity.blocker,
    ),
    (
        "provisioned marker, specialized",
        lambda g: amend(g, "agents", waagent_state=("/var/lib/waagent/provisioned",)),
        {"generalized": False},
        "AGT-05",
        Status.not_applicable,
        Severity.blocker,
    ),
    (
        "host keys, generalized",
        lambda g: amend(g, "accounts", ssh_host_keys=("/etc/ssh/ssh_host_rsa_key",)),
        {},
        "SEC-11",
        Status.failed,
        Severity.warning,
    ),
    (
        "Provisioning.Agent=disabled on a generalized image",
        lambda g: amend(
            g,
            "agents",
            waagent=WaagentInfo(
                True,
                "/usr/sbin/waagent",
                "2.9.1.1",
                {"Provisioning.Agent": Located("disabled", "/etc/waagent.conf:1")},
                True,
            ),
        ),
        {},
        "AGT-03",
        Status.failed,
        Severity.blocker,
    ),
    (
        "root on /dev/vda1",
        lambda g: amend(
            g, "boot", cmdline=replace(g.boot.cmdline, args=("root=/dev/vda1", "console=ttyS0"))
        ),
        {},
        "CMD-10",
        Status.failed,
        Severity.blocker,
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "ctx", "rule", "status", "severity"), CASES, ids=[c[0] for c in CASES]
)
def test_rule_table(
    base: GuestFacts,
    name: str,
    change: Any,
    ctx: dict[str, Any],
    rule: str,
    status: Status,
    severity: Severity,
) -> None:
    f = run(change(base), **ctx)[rule]
    assert (f.status, f.severity) == (status, severity), (name, f)
    if status is Status.failed:
        assert f.fix and f.evidence


def test_fs_ids_unknown_is_unreadable_not_passed(base: GuestFacts) -> None:
    out = {f.rule: f for f in evaluate(ImageFacts(HYBRID, base), CheckContext())}
    assert out["FS-03"].status is Status.unreadable
    assert out["CMD-10"].status is Status.unreadable


@pytest.mark.parametrize(
    ("waagent", "agent", "ci", "expected"),
    [
        (True, "auto", True, "cloud-init"),
        (True, "auto", False, "waagent"),
        (True, "waagent", True, "waagent"),
        (True, "disabled", True, "none"),
        (False, None, True, "cloud-init"),
        (False, None, False, "none"),
    ],
)
def test_provisioner(
    base: GuestFacts, waagent: bool, agent: str | None, ci: bool, expected: str
) -> None:
    conf = {"Provisioning.Agent": Located(agent, "/etc/waagent.conf:1")} if agent else {}
    g = amend(
        base,
        "agents",
        waagent=WaagentInfo(waagent, "/usr/sbin/waagent" if waagent else "", None, conf, True),
        cloud_init=_ci(base, installed=ci),
    )
    assert provisioner(g) == expected


GEN_CASES = [
    ("hybrid", HYBRID, None, (True, True, True)),
    (
        "mbr-grub",
        DiskLayout(64 * MIB, "mbr", (part(1, "0x83", 1),), True, True),
        None,
        (True, False, False),
    ),
    (
        "mbr-no-boot-code",
        DiskLayout(64 * MIB, "mbr", (part(1, "0x83", 1, bootable=True),), False, False),
        None,
        (False, False, False),
    ),
    (
        "gpt-esp-vendor-only",
        replace(HYBRID, esp_files=("EFI/DEBIAN/",), mbr_boot_code=False),
        None,
        (False, True, False),
    ),
    (
        "gpt-esp-empty",
        replace(HYBRID, esp_files=(), partitions=HYBRID.partitions[1:]),
        None,
        (True, False, False),
    ),
    ("arm64-without-bootaa64", HYBRID, "aarch64", (True, True, False)),  # vendor loaders: warn
]


@pytest.mark.parametrize(
    ("name", "disk", "arch", "expected"), GEN_CASES, ids=[c[0] for c in GEN_CASES]
)
def test_bootable_generations(
    name: str, disk: DiskLayout, arch: str | None, expected: tuple[bool, bool, bool]
) -> None:
    g = bootable_generations(disk, arch)
    if name == "gpt-esp-empty":  # no BIOS-boot partition left either
        expected = (False, False, False)
    assert (g.gen1, g.gen2, g.fallback_loader) == expected, g


def test_mbr_esp_is_a_gen2_warning(base: GuestFacts) -> None:
    disk = DiskLayout(
        64 * MIB,
        "mbr",
        (part(1, "0xEF", 1, fs="vfat"), part(2, "0x83", 10)),
        True,
        True,
        esp_files=("EFI/BOOT/BOOTX64.EFI",),
    )
    out = run(base, disk, generation="2")
    assert out["GEN-02"].status is Status.failed
    assert out["GEN-03"].status is Status.failed and out["GEN-03"].severity is Severity.warning


@pytest.mark.parametrize(
    ("scheme", "generation", "status"),
    [("gpt", "2", Status.passed), ("gpt", "1", Status.failed), ("mbr", None, Status.failed)],
)
def test_sz_03_disks_over_2_tib_need_gpt_and_gen2(
    base: GuestFacts, scheme: str, generation: str | None, status: Status
) -> None:
    disk = replace(HYBRID, size=3 * 1024**4, scheme=scheme)
    if scheme == "mbr":
        disk = replace(disk, partitions=(part(1, "0x83", 1),))
    assert run(base, disk, generation=generation)["SZ-03"].status is status


def test_small_disks_do_not_get_sz_03(base: GuestFacts) -> None:
    assert "SZ-03" not in run(base)


def test_gen_08_nvme_readiness(base: GuestFacts) -> None:
    assert "GEN-08" not in run(base)
    f = run(base, nvme=True)["GEN-08"]  # the good tree has no nvme module nor io_timeout
    assert f.status is Status.failed and "nvme_core.io_timeout" in " ".join(
        e.detail for e in f.evidence
    )
    args = (*(base.boot.cmdline.args or ()), "nvme_core.io_timeout=240")
    ready = amend(base, "boot", cmdline=replace(base.boot.cmdline, args=args))
    ready = amend(
        ready,
        "kernel",
        kernels=tuple(
            replace(k, initramfs_modules=(k.initramfs_modules or frozenset()) | {"nvme"})
            for k in base.kernel.kernels
        ),
    )
    assert run(ready, nvme=True, generation="2")["GEN-08"].status is Status.passed
    assert run(ready, nvme=True, generation="1")["GEN-08"].status is Status.failed


LINUX_KINDS = (accounts, agents, boot, kernel, network, packages, services, storage)
SCOPES = (container, generation, debian, ubuntu, rhel, oracle, suse, flatcar, freebsd, openbsd)


def test_every_linux_check_runs_once() -> None:
    """A check written in a kind module but left out of ``linux.CHECKS`` would never run."""
    written = [
        fn
        for module in LINUX_KINDS
        for name, fn in vars(module).items()
        if name.startswith("check_") and fn.__module__ == module.__name__
    ]
    assert sorted(linux.CHECKS, key=id) == sorted(written, key=id)


def test_every_rule_id_is_declared_once() -> None:
    rules = {
        id(r): r
        for module in (*LINUX_KINDS, *SCOPES)
        for r in (*vars(module).values(), *getattr(module, "RULES", {}).values())
        if isinstance(r, Rule)
    }
    ids = sorted(r.id for r in rules.values())
    assert len(ids) > 150 and ids == sorted(set(ids))
