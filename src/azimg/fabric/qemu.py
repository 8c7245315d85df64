"""One VM's QEMU: the command line (pure), firmware, and a small QMP client.

The command line is what the real agents were seen to accept (provisioning.md §6.3, DESIGN.md):
- Gen1 = ``-machine pc`` with SeaBIOS and the provisioning disc on IDE; Gen2 = q35 with OVMF and
  the disc as a virtio-scsi CD (Debian's cloud kernel has no AHCI). The OS disk is a virtio-scsi
  disk, so the guest sees ``/dev/sda`` as on Azure.
- ``-cpu max,-hypervisor`` plus SMBIOS "Microsoft Corporation" / product version ``Hyper-V…``
  so systemd detects ``microsoft`` and Debian's waagent unit starts; the Azure chassis asset tag
  so cloud-init's ds-identify picks the Azure datasource; ``-uuid`` per VM (the instance id).
- slirp with ``net=168.0.0.0/7,host=168.63.129.16``: the WireServer is the guest's gateway (how
  waagent finds it without DHCP option 245) and guest connections to it land on 127.0.0.1 of
  QEMU's own (empty) network namespace, where the VM host relays them. IMDS goes through a
  ``guestfwd`` command that must never write to stderr (it would reach the guest).
- ``hostfwd`` puts the guest's SSH on 127.0.0.1:2222 inside that namespace only.
- A VM whose NICs are in VNets gets one tap per NIC instead, passed as an open file
  descriptor (the tap lives in the VNet's namespace, see ``network.py``), with the NIC's MAC.
- An attached (specialized) disk is its fixed VHD used in place: the raw driver with an explicit
  ``size`` keeps the 512-byte footer out of the guest's sight, and writes land in the disk.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from azimg.errors import AzimgError, ToolMissing

ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
GUEST_SSH_PORT = 2222  # hostfwd target inside the VM's namespace
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


@dataclass(frozen=True)
class Machine:
    """The virtual hardware of one VM."""

    generation: int  # 1 = BIOS (SeaBIOS, i440fx), 2 = UEFI (OVMF, q35)
    vcpus: int
    memory_mib: int
    smbios_uuid: str  # see imds.smbios_uuid for the Gen1 byte swap
    mac: str  # "00:0d:3a:xx:xx:xx"
    accel: str = "tcg"


@dataclass(frozen=True)
class MachineFiles:
    os_disk: Path
    os_disk_format: str  # qcow2 (a COW clone) or raw
    serial_log: Path
    qmp_socket: Path
    imds_socket: Path
    os_disk_size: int | None = None  # raw only: what the guest sees (hides a VHD footer)
    disc: Path | None = None  # provisioning media; None for specialized VMs
    ovmf_vars: Path | None = None  # the VM's own copy (Gen2)


def _escape(option_value: str) -> str:
    """QEMU option values double their commas."""
    return option_value.replace(",", ",,")


def qemu_argv(
    m: Machine,
    f: MachineFiles,
    *,
    qemu: str = "qemu-system-x86_64",
    taps: Sequence[tuple[int, str]] = (),
) -> list[str]:
    """The full command line for one VM (no I/O, so it is table-testable). ``taps``: one
    ``(fd, mac)`` per VNet NIC, in order (the primary first); none means slirp."""
    if m.generation not in (1, 2):
        raise AssertionError(f"generation {m.generation}")
    argv = [qemu, "-name", "azimg-vm", "-nodefaults", "-no-user-config", "-display", "none"]
    argv += ["-accel", m.accel, "-cpu", "max,-hypervisor", "-smp", str(m.vcpus)]
    argv += ["-m", str(m.memory_mib), "-uuid", m.smbios_uuid]
    if m.generation == 1:
        argv += ["-machine", "pc"]
    else:
        if f.ovmf_vars is None:
            raise AssertionError("a Gen2 machine needs its OVMF variable store")
        argv += ["-machine", "q35,smm=off"]
        argv += [
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={_escape(str(OVMF_CODE))}",
        ]
        argv += ["-drive", f"if=pflash,format=raw,unit=1,file={_escape(str(f.ovmf_vars))}"]
    argv += [
        "-smbios", "type=0,vendor=American Megatrends Inc.,version=090008",
        "-smbios", "type=1,manufacturer=Microsoft Corporation,product=Virtual Machine,"
                   "version=Hyper-V UEFI Release v4.1",
        "-smbios", f"type=3,manufacturer=Microsoft Corporation,asset={ASSET_TAG}",
    ]  # fmt: skip
    argv += ["-device", "virtio-scsi-pci,id=scsi0"]
    if f.os_disk_size is not None:
        if f.os_disk_format != "raw":
            raise AssertionError("a size limit only applies to a raw OS disk")
        os_drive = f"driver=raw,size={f.os_disk_size},file.filename={_escape(str(f.os_disk))}"
    else:
        os_drive = f"file={_escape(str(f.os_disk))},format={f.os_disk_format}"
    argv += [
        "-drive",
        f"if=none,id=os0,{os_drive},discard=unmap",
        "-device", "scsi-hd,drive=os0,bus=scsi0.0,bootindex=0",
    ]  # fmt: skip
    if f.disc is not None:
        disc = f"file={_escape(str(f.disc))},format=raw,media=cdrom,readonly=on"
        if m.generation == 1:
            argv += ["-drive", f"if=ide,index=2,{disc}"]
        else:
            argv += ["-drive", f"if=none,id=cd0,{disc}", "-device", "scsi-cd,drive=cd0,bus=scsi0.0"]
    if taps:
        for i, (fd, mac) in enumerate(taps):
            argv += ["-netdev", f"tap,id=n{i},fd={fd}",
                     "-device", f"virtio-net-pci,netdev=n{i},mac={mac}"]  # fmt: skip
    else:
        argv += _slirp(m, f)
    argv += [
        "-chardev", f"file,id=ser0,path={_escape(str(f.serial_log))},append=on",
        "-serial", "chardev:ser0",
        "-qmp", f"unix:{_escape(str(f.qmp_socket))},server=on,wait=off",
    ]  # fmt: skip
    return argv


def _slirp(m: Machine, f: MachineFiles) -> list[str]:
    """A VM without VNet NICs: user networking as in the module docstring."""
    imds_cmd = f"socat -lf /dev/null - UNIX-CONNECT:{f.imds_socket}"
    if "," in imds_cmd or " " in str(f.imds_socket):
        raise AssertionError(f"socket path unusable in a guestfwd command: {f.imds_socket}")
    return [
        "-netdev",
        "user,id=n0,net=168.0.0.0/7,host=168.63.129.16,dhcpstart=168.0.0.15,"
        f"hostfwd=tcp:127.0.0.1:{GUEST_SSH_PORT}-:22,"
        f"guestfwd=tcp:169.254.169.254:80-cmd:{imds_cmd}",
        "-device", f"virtio-net-pci,netdev=n0,mac={m.mac}",
    ]  # fmt: skip


def require_tools(generation: int) -> None:
    """Fail with a one-line hint when QEMU, socat or the firmware is missing."""
    for tool, package in (("qemu-system-x86_64", "qemu-system-x86"), ("socat", "socat")):
        if shutil.which(tool) is None:
            raise ToolMissing(tool, package)
    if generation == 2 and not (OVMF_CODE.exists() and OVMF_VARS.exists()):
        raise ToolMissing(str(OVMF_CODE), "ovmf")


class QmpError(AzimgError):
    """QEMU refused a QMP command or its socket went away."""


class Qmp:
    """Minimal QMP client over a Unix socket: one command at a time, events are skipped."""

    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.settimeout(timeout)
                self._sock.connect(str(path))
                break
            except OSError as err:
                self._sock.close()
                if time.monotonic() > deadline:
                    raise QmpError(f"QMP socket {path} not reachable: {err}") from None
                time.sleep(0.1)
        self._file = self._sock.makefile("rwb")
        self._read()  # greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict:
        while True:
            line = self._file.readline()
            if not line:
                raise QmpError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def command(self, name: str, **arguments: object) -> object:
        msg: dict[str, object] = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self._file.write(json.dumps(msg).encode() + b"\n")
        self._file.flush()
        reply = self._read()
        if "error" in reply:
            raise QmpError(f"QMP {name}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
