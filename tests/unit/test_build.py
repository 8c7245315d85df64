"""The builder's pure parts (partition plans, GRUB patching, apt sources, waagent.conf, specs)
and its fast failures, each against the real tools where a tool is involved (sfdisk,
grub-mkimage): nothing here bootstraps Debian."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from azimg.errors import InvalidArgument
from azimg.image.build import bootloader, layout, mirror
from azimg.image.build.customize import set_conf_keys, waagent_settings
from azimg.image.build.spec import (
    Account,
    Agent,
    BuildSpec,
    Generation,
    MiB,
    parse_size,
)

GiB = 1024 * MiB


# ---- partition plans ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generation", "label", "roles", "core_lba"),
    [
        (Generation.gen1, "dos", ["root"], 1),
        (Generation.gen2, "gpt", ["esp", "root"], None),
        (Generation.both, "gpt", ["bios-boot", "esp", "root"], 2048),
    ],
)
def test_plan_per_generation(
    generation: Generation, label: str, roles: list[str], core_lba: int | None
) -> None:
    plan = layout.plan(generation, 4 * GiB)
    assert plan.label == label
    assert [p.role for p in plan.partitions] == roles
    assert plan.core_lba == core_lba
    assert plan.partitions[0].start == MiB  # PT-02: 1 MiB gap
    for p in plan.partitions:
        assert p.start % MiB == 0 and p.size % MiB == 0
    for a, b in zip(plan.partitions, plan.partitions[1:], strict=False):
        assert a.start + a.size <= b.start
    last = plan.partitions[-1]
    # GPT's backup entries live in the last 33 sectors; MBR may use the whole disk.
    assert last.start + last.size <= plan.disk_size - (MiB if label == "gpt" else 0)


def test_core_room_fits_grub_core_image(tmp_path: Path) -> None:
    core = bootloader.make_image(tmp_path, "i386-pc", "0" * 8, tmp_path / "core.img")
    for generation in (Generation.gen1, Generation.both):
        assert len(core) <= layout.plan(generation, GiB).core_room


@pytest.mark.parametrize("generation", list(Generation))
def test_sfdisk_writes_the_plan(tmp_path: Path, generation: Generation) -> None:
    plan = layout.plan(generation, 1 * GiB)
    image = tmp_path / "disk.raw"
    layout.create_disk(image, plan)
    assert image.stat().st_size == plan.disk_size
    assert image.stat().st_blocks * 512 < 4 * MiB  # sparse: only the tables are written
    dump = json.loads(subprocess.run(["sfdisk", "--json", image], capture_output=True,
                                     check=True).stdout)["partitiontable"]  # fmt: skip
    assert dump["label"] == plan.label
    got = [(p["start"] * 512, p["size"] * 512, p["type"].upper()) for p in dump["partitions"]]
    assert got == [(p.start, p.size, p.type.upper()) for p in plan.partitions]
    if generation is Generation.gen1:
        assert dump["partitions"][0].get("bootable") is True


def test_too_small_disk_for_gpt_root_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="no room"):
        layout.plan(Generation.both, 128 * MiB)


def test_check_fits_names_a_size_that_works(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "blob").write_bytes(b"\1" * (200 * MiB // 100))  # 2 MiB of data
    with (tree / "big").open("wb") as fh:
        fh.truncate(300 * MiB)  # sparse, but counted by apparent size like mkfs -d copies it
    plan = layout.plan(Generation.both, 256 * MiB)
    with pytest.raises(InvalidArgument, match="too small") as err:
        layout.check_fits(tree, plan)
    assert "--size" in str(err.value)


# ---- GRUB BIOS chain patching ------------------------------------------------------------


def test_blocklist_entry_round_trip() -> None:
    entry = bootloader.BlocklistEntry(start=2049, length=311, segment=0x820)
    raw = entry.pack()
    assert len(raw) == 12
    assert bootloader.BlocklistEntry.unpack(raw) == entry


def test_patch_core_points_blocklist_after_its_first_sector(tmp_path: Path) -> None:
    core = bootloader.make_image(tmp_path, "i386-pc", "1234-ABCD", tmp_path / "core.img")
    default = bootloader.BlocklistEntry.unpack(core[500:512])
    assert default.start == 2  # grub-mkimage's default: core.img at LBA 1
    patched = bootloader.patch_core(core, 2048)
    entry = bootloader.BlocklistEntry.unpack(patched[500:512])
    assert entry.start == 2049
    assert entry.length == -(-len(core) // 512) - 1 == default.length
    assert entry.segment == 0x820
    assert patched[:500] == core[:500] and patched[512:] == core[512:]


def test_patch_boot_keeps_partition_table_and_sets_core_sector() -> None:
    boot = (bootloader.HOST_GRUB_DIR / "i386-pc/boot.img").read_bytes()
    mbr = bytes(440) + b"SIGN\0\0" + bytes(range(64)) + b"\x55\xaa"
    new = bootloader.patch_boot(boot, mbr, 2048)
    assert len(new) == 512
    assert new[440:] == mbr[440:]
    assert struct.unpack_from("<Q", new, 0x5C)[0] == 2048
    assert new[:0x5C] == boot[:0x5C] and new[0x64:440] == boot[0x64:440]


def test_early_config_finds_root_by_uuid() -> None:
    cfg = bootloader.early_config("3c1f-uuid")
    assert "search --no-floppy --fs-uuid --set=root 3c1f-uuid" in cfg
    assert "configfile $prefix/grub.cfg" in cfg


def test_kernel_cmdline_has_azure_console_settings() -> None:
    words = bootloader.kernel_cmdline("u-1").split()
    assert "root=UUID=u-1" in words
    consoles = [w for w in words if w.startswith("console=")]
    assert consoles[-1].startswith("console=ttyS0")  # the last console is /dev/console
    assert any(w.startswith("earlyprintk=ttyS0") for w in words)
    assert "net.ifnames=0" in words
    assert not {"quiet", "splash", "rhgb"} & set(words)
    assert not any(w.startswith("rootdelay=") for w in words)


# ---- apt sources -------------------------------------------------------------------------

DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
"""


def test_deb822_sources_parse() -> None:
    found = mirror.parse_deb822(DEB822)
    assert [(s.uri, s.suite, s.components) for s in found] == [
        ("http://mirror.example/debian", "bookworm", ("main",)),
        ("http://mirror.example/debian", "bookworm-updates", ("main",)),
        ("http://security.example/debian-security", "bookworm-security", ("main", "contrib")),
    ]


def test_one_line_sources_parse_skipping_deb_src_and_options() -> None:
    text = (
        "# comment\n"
        "deb [signed-by=/k.gpg arch=amd64] http://m.example/debian bookworm main non-free\n"
        "deb-src http://m.example/debian bookworm main\n"
    )
    found = mirror.parse_one_line(text)
    assert [s.line() for s in found] == ["deb http://m.example/debian bookworm main non-free"]


def test_host_sources_are_retargeted_to_the_release(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(DEB822)
    (tmp_path / "sources.list.d/other.list.disabled").write_text("deb http://x.example/ y main\n")
    host = mirror.host_sources(tmp_path)
    lines = mirror.sources_for("trixie", host=host, codename="bookworm")
    assert lines == [
        "deb http://mirror.example/debian trixie main",
        "deb http://mirror.example/debian trixie-updates main",
        "deb http://security.example/debian-security trixie-security main contrib",
    ]
    assert mirror.sources_for("sid", host=host, codename="bookworm") == [
        "deb http://mirror.example/debian sid main"
    ]


def test_mirror_flag_overrides_the_archive_but_keeps_host_security() -> None:
    host = mirror.parse_deb822(DEB822)
    lines = mirror.sources_for(
        "bookworm", mirror="http://local.example/debian", host=host, codename="bookworm"
    )
    assert lines == [
        "deb http://local.example/debian bookworm main",
        "deb http://local.example/debian bookworm-updates main",
        "deb http://security.example/debian-security bookworm-security main contrib",
    ]


def test_no_debian_source_on_host_asks_for_mirror() -> None:
    with pytest.raises(InvalidArgument, match="no Debian archive") as err:
        mirror.sources_for("bookworm", host=[], codename="jammy")
    assert "--mirror" in str(err.value)
    with pytest.raises(InvalidArgument, match="not a URI"):
        mirror.sources_for("bookworm", mirror="mirror.example", host=[], codename="x")


# ---- waagent.conf --------------------------------------------------------------------------


def test_set_conf_keys_replaces_commented_and_appends_missing() -> None:
    text = "Provisioning.Agent=cloud-init\n# ResourceDisk.Format=y\nLogs.Verbose=n\n"
    out = set_conf_keys(text, {"Provisioning.Agent": "waagent", "ResourceDisk.Format": "n",
                               "OS.EnableFirewall": "y"})  # fmt: skip
    assert out.splitlines() == [
        "Provisioning.Agent=waagent",
        "ResourceDisk.Format=n",
        "Logs.Verbose=n",
        "OS.EnableFirewall=y",
    ]


def _spec(tmp_path: Path, **kw: object) -> BuildSpec:
    return BuildSpec(output=tmp_path / "x.vhd", **kw)  # type: ignore[arg-type]


def test_waagent_settings_follow_who_provisions(tmp_path: Path) -> None:
    ci = waagent_settings(_spec(tmp_path, agent=Agent.cloud_init))
    assert ci["Provisioning.Agent"] == "cloud-init"
    assert ci["ResourceDisk.Format"] == "n" and ci["ResourceDisk.EnableSwap"] == "n"  # SWP-02
    wa = waagent_settings(_spec(tmp_path, agent=Agent.waagent))
    assert wa["Provisioning.Agent"] == "waagent"
    assert wa["ResourceDisk.Format"] == "y" and wa["ResourceDisk.EnableSwap"] == "y"
    account = Account("host1", "azureuser", "ssh-ed25519 AAAAC3Nza test")
    sp = waagent_settings(_spec(tmp_path, agent=Agent.waagent, specialized=account))
    assert sp["Provisioning.Agent"] == "disabled"


# ---- spec validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("4G", 4 * GiB), ("4096M", 4 * GiB), ("4GiB", 4 * GiB), ("1048576", MiB), ("1T", 1024 * GiB)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"size": 4 * GiB + 512}, "whole number of MiB"),
        ({"size": 64 * MiB}, "at least"),
        ({"size": 3 * 1024 * GiB, "generation": Generation.gen1}, "limit"),
        ({"packages": ("ok", "Bad Name")}, "not a Debian package"),
        ({"release": "Bookworm!"}, "suite"),
        ({"specialized": Account("-bad-", "azureuser", "ssh-ed25519 AAAA c")}, "host name"),
        ({"specialized": Account("h", "root", "ssh-ed25519 AAAA c")}, "not allowed"),
        ({"specialized": Account("h", "azureuser", "not a key")}, "public key"),
    ],
)
def test_spec_refuses(tmp_path: Path, kw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _spec(tmp_path, **kw)


# ---- CLI failures: one line, exit code 2, nothing written ----------------------------------


def _azimg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "100M"], "at least"),
        (["--size", "1000.5M"], "not a size"),
        (["--generation", "3"], "use 1, 2 or both"),
        (["--agent", "walinux"], "cloud-init, waagent or none"),
        (["--specialized", "--user", "azureuser"], "needs --hostname, --ssh-key"),
        (["--hostname", "h1"], "only go with --specialized"),
    ],
)
def test_cli_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "x.vhd"
    proc = _azimg("build", "debian", "-o", str(out), *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("azimg: error:"), proc.stderr
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the root check comes first for non-root users")
def test_cli_missing_host_tool_says_which_package(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    proc = _azimg("build", "debian", "-o", str(tmp_path / "x.vhd"), env=env)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line
    assert "mmdebstrap is not installed" in line and "apt-get install mmdebstrap" in line
    assert list(tmp_path.iterdir()) == []
