"""Accelerator choice: TCG unless asked, or unless ``auto`` and the KVM boot self-test passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from azimg.fabric.accel import choose_accel, self_test_argv
from azimg.fabric.qemu import Machine, MachineFiles


@pytest.mark.parametrize(
    ("mode", "self_test_passes", "expected", "probed"),
    [
        ("tcg", True, "tcg", False),
        ("kvm", False, "kvm", False),
        ("auto", True, "kvm", True),
        ("auto", False, "tcg", True),
    ],
)
def test_choose_accel(mode: str, self_test_passes: bool, expected: str, probed: bool) -> None:
    calls: list[bool] = []

    def self_test() -> bool:
        calls.append(True)
        return self_test_passes

    assert choose_accel(mode, self_test) == expected
    assert bool(calls) is probed


def test_unknown_mode_is_a_bug() -> None:
    with pytest.raises(AssertionError):
        choose_accel("hvf", lambda: True)


def test_self_test_boots_the_vm_machine_without_network_or_disc() -> None:
    machine = Machine(2, 2, 1024, "2e5a0c3f-2c1b-3e4d-8f90-aabbccddeeff", "00:0d:3a:00:00:01")
    files = MachineFiles(
        os_disk=Path("/d/os.qcow2"),
        os_disk_format="qcow2",
        serial_log=Path("/vm/serial.log"),
        qmp_socket=Path("/s/qmp.sock"),
        imds_socket=Path("/s/imds.sock"),
        disc=Path("/vm/ovf.iso"),
        ovmf_vars=Path("/vm/OVMF_VARS.fd"),
    )
    argv = self_test_argv(machine, files, Path("/t/serial.log"))
    joined = " ".join(argv)
    assert argv[argv.index("-accel") + 1] == "kvm"
    assert argv[argv.index("-cpu") + 1] == "max,-hypervisor"
    assert "-netdev" not in argv and "-qmp" not in argv and "virtio-net-pci" not in joined
    assert "ovf.iso" not in joined
    assert "path=/t/serial.log" in joined
    assert argv[-4:] == ["-snapshot", "-nic", "none", "-no-reboot"]
