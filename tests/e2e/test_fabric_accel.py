"""The KVM boot self-test on a real built image.

TCG is the positive control: the very probe that decides for KVM must see the kernel reach
user space when acceleration is known to work. The KVM verdict itself depends on the host
(nested KVM hangs on some machines), so the test asserts only that it is reached in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from azimg.fabric.accel import boot_self_test
from azimg.fabric.qemu import Machine, MachineFiles

pytestmark = pytest.mark.slow


def test_boot_self_test(built_image: Callable[..., Path], tmp_path: Path) -> None:
    image = built_image(generation="1", agent="cloud-init")
    machine = Machine(1, 1, 1024, "3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff", "00:0d:3a:00:00:02")
    files = MachineFiles(
        os_disk=image,
        os_disk_format="raw",
        os_disk_size=image.stat().st_size - 512,
        serial_log=tmp_path / "unused.log",
        qmp_socket=tmp_path / "qmp.sock",
        imds_socket=tmp_path / "imds.sock",
    )
    before = image.stat().st_mtime_ns
    assert boot_self_test(machine, files, accel="tcg", timeout_s=240)
    started = time.monotonic()
    verdict = boot_self_test(machine, files, accel="kvm", timeout_s=20)
    assert isinstance(verdict, bool)
    assert time.monotonic() - started < 60
    assert image.stat().st_mtime_ns == before  # -snapshot: the image is never written
    print(f"KVM boot self-test on this host: {'passed' if verdict else 'failed'}")
