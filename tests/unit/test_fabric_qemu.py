"""The QEMU command line per generation: what the real agents were seen to need."""

from __future__ import annotations

from pathlib import Path

import pytest

from azimg.fabric.qemu import Machine, MachineFiles, qemu_argv


def make_machine(**overrides: object) -> Machine:
    values: dict[str, object] = {
        "generation": 1,
        "vcpus": 2,
        "memory_mib": 1536,
        "smbios_uuid": "2e5a0c3f-2c1b-3e4d-8f90-aabbccddeeff",
        "mac": "00:0d:3a:12:34:56",
    }
    values.update(overrides)
    return Machine(**values)  # type: ignore[arg-type]


def make_files(**overrides: object) -> MachineFiles:
    values: dict[str, object] = {
        "os_disk": Path("/run/vm/os.qcow2"),
        "os_disk_format": "qcow2",
        "serial_log": Path("/run/vm/serial.log"),
        "qmp_socket": Path("/tmp/s/qmp.sock"),
        "imds_socket": Path("/tmp/s/imds.sock"),
        "disc": Path("/run/vm/ovf.iso"),
        "ovmf_vars": Path("/run/vm/OVMF_VARS.fd"),
    }
    values.update(overrides)
    return MachineFiles(**values)  # type: ignore[arg-type]


def option(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


@pytest.mark.parametrize(
    ("generation", "machine", "firmware", "disc"),
    [
        (1, "pc", False, "if=ide,index=2,file=/run/vm/ovf.iso,format=raw,media=cdrom,readonly=on"),
        (2, "q35,smm=off", True, "if=none,id=cd0,file=/run/vm/ovf.iso,format=raw,media=cdrom,"
                                  "readonly=on"),
    ],
)  # fmt: skip
def test_generation_picks_machine_firmware_and_disc_bus(
    generation: int, machine: str, firmware: bool, disc: str
) -> None:
    argv = qemu_argv(make_machine(generation=generation), make_files())
    assert option(argv, "-machine") == [machine]
    pflash = [d for d in option(argv, "-drive") if d.startswith("if=pflash")]
    assert bool(pflash) is firmware
    assert disc in option(argv, "-drive")
    if generation == 2:
        assert "scsi-cd,drive=cd0,bus=scsi0.0" in option(argv, "-device")
        assert any("OVMF_VARS.fd" in d and "readonly" not in d for d in pflash)


def test_azure_identity_signals() -> None:
    argv = qemu_argv(make_machine(), make_files())
    assert option(argv, "-cpu") == ["max,-hypervisor"]
    assert option(argv, "-uuid") == ["2e5a0c3f-2c1b-3e4d-8f90-aabbccddeeff"]
    smbios = option(argv, "-smbios")
    assert "type=3,manufacturer=Microsoft Corporation,asset=7783-7084-3265-9085-8269-3286-77" in (
        smbios
    )
    assert any(s.startswith("type=1,") and "version=Hyper-V" in s for s in smbios)


def test_network_makes_the_wireserver_the_gateway_and_forwards_imds() -> None:
    (netdev,) = option(qemu_argv(make_machine(), make_files()), "-netdev")
    assert "net=168.0.0.0/7,host=168.63.129.16" in netdev
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in netdev
    assert netdev.endswith(
        "guestfwd=tcp:169.254.169.254:80-cmd:socat -lf /dev/null - UNIX-CONNECT:/tmp/s/imds.sock"
    )


def test_specialized_vm_has_no_disc() -> None:
    argv = qemu_argv(make_machine(), make_files(disc=None))
    assert not [d for d in option(argv, "-drive") if "cdrom" in d]


def test_commas_in_paths_are_escaped() -> None:
    argv = qemu_argv(make_machine(), make_files(os_disk=Path("/a,b/os.qcow2")))
    assert any(d.startswith("if=none,id=os0,file=/a,,b/os.qcow2,") for d in option(argv, "-drive"))


def test_serial_console_is_appended_not_truncated() -> None:
    argv = qemu_argv(make_machine(), make_files())
    assert "file,id=ser0,path=/run/vm/serial.log,append=on" in option(argv, "-chardev")


def test_an_attached_vhd_is_raw_with_the_footer_cut_off() -> None:
    files = make_files(os_disk=Path("/b/disk.vhd"), os_disk_format="raw", os_disk_size=1048576)
    drives = option(qemu_argv(make_machine(), files), "-drive")
    assert "if=none,id=os0,driver=raw,size=1048576,file.filename=/b/disk.vhd,discard=unmap" in (
        drives
    )


def test_vnet_nics_are_taps_by_descriptor_instead_of_slirp() -> None:
    argv = qemu_argv(
        make_machine(), make_files(), taps=((7, "00:0d:3a:00:00:01"), (9, "00:0d:3a:00:00:02"))
    )
    assert option(argv, "-netdev") == ["tap,id=n0,fd=7", "tap,id=n1,fd=9"]
    devices = option(argv, "-device")
    assert "virtio-net-pci,netdev=n0,mac=00:0d:3a:00:00:01" in devices
    assert "virtio-net-pci,netdev=n1,mac=00:0d:3a:00:00:02" in devices
    assert not any(d.startswith("user,") for d in option(argv, "-netdev"))
