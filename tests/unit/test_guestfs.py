"""The guest-filesystem protocol's own helpers, over ``DirectoryFS`` (a host tree as a guest root).

Symlinks resolve inside the guest root, never on the host; a missing path is absent (None,
False), a loop is absent too, and reads stop at their limit.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from azimg.disk.guestfs import DirectoryFS, GuestFS, exists, read_text, resolve, stat


@pytest.fixture
def fs(tmp_path: Path) -> GuestFS:
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/lib/os-release").write_text("ID=debian\n")
    (root / "etc/hostname").write_text("build-vm\n")
    os.symlink("../usr/lib/os-release", root / "etc/os-release")  # relative
    os.symlink("/usr/lib", root / "lib")  # absolute: the guest's /usr/lib, not the host's
    os.symlink("/../../../../etc", root / "escape")  # ".." at the guest root stays there
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")
    os.symlink("/nowhere", root / "dangling")
    (tmp_path / "outside").write_text("host secret\n")
    return DirectoryFS(root)


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("/etc/os-release", "/usr/lib/os-release"),
        ("/lib/os-release", "/usr/lib/os-release"),
        ("/etc/../usr/lib", "/usr/lib"),
        ("/escape/hostname", "/etc/hostname"),
        ("etc/hostname", "/etc/hostname"),
    ],
)
def test_links_resolve_inside_the_guest_root(fs: GuestFS, path: str, resolved: str) -> None:
    assert resolve(fs, path) == resolved


def test_read_text_follows_links_and_answers_none_for_absent_paths(fs: GuestFS) -> None:
    assert read_text(fs, "/etc/os-release") == "ID=debian\n"
    assert read_text(fs, "/escape/hostname") == "build-vm\n"
    assert read_text(fs, "/../outside") is None  # the host file next to the root stays unseen
    assert read_text(fs, "/dangling") is None
    assert read_text(fs, "/etc") is None  # a directory is not text
    assert read_text(fs, "/etc/hostname/x") is None


def test_a_symlink_loop_is_absent_not_a_hang(fs: GuestFS) -> None:
    with pytest.raises(FileNotFoundError, match="too many symlinks"):
        resolve(fs, "/loop-a")
    assert not exists(fs, "/loop-a")
    assert read_text(fs, "/loop-a/x") is None


def test_stat_follows_links_and_lstat_does_not(fs: GuestFS) -> None:
    assert stat(fs, "/lib").is_dir
    assert fs.lstat("/lib").is_symlink
    assert fs.readlink("/lib") == "/usr/lib"
    assert exists(fs, "/lib/os-release") and not exists(fs, "/dangling")


def test_reads_stop_at_the_limit_and_count_what_they_read(fs: GuestFS) -> None:
    before = fs.bytes_read
    assert fs.read_file("/etc/hostname", limit=5) == b"build"
    assert read_text(fs, "/etc/hostname", limit=3) == "bui"
    assert fs.bytes_read - before == 8


def test_listdir_sorts_and_refuses_a_link(fs: GuestFS) -> None:
    assert fs.listdir("/usr/lib") == ["os-release"]
    with pytest.raises(NotADirectoryError):
        fs.listdir("/lib")  # listdir sees links; callers resolve first
