"""TCG or KVM: KVM only when a short boot self-test on this host passes.

Nested KVM on some hosts opens ``/dev/kvm`` fine and then hangs the guest in early boot, so
"/dev/kvm exists" proves nothing. The self-test boots a real OS disk (read-only, ``-snapshot``)
under KVM with the VM's own machine and CPU model and waits for the kernel to reach user space
(the initramfs or systemd announcing itself on the serial console). The verdict is cached per
host (kernel release + QEMU version) in ``$AZIMG_CACHE`` or ``~/.cache/azimg``, so a machine pays
for the test once.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from azimg.fabric.qemu import OVMF_VARS, Machine, MachineFiles, qemu_argv

USERSPACE_MARKERS = (b"Run /init as init process", b"systemd[1]: ")
ACCEL_MODES = ("tcg", "kvm", "auto")


def choose_accel(mode: str, self_test: Callable[[], bool]) -> str:
    """``tcg`` and ``kvm`` are taken as asked; ``auto`` is KVM only if ``self_test()`` passes."""
    if mode not in ACCEL_MODES:
        raise AssertionError(f"accel mode {mode}")
    if mode != "auto":
        return mode
    return "kvm" if self_test() else "tcg"


def kvm_opens() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def self_test_argv(
    machine: Machine, files: MachineFiles, serial: Path, *, accel: str = "kvm"
) -> list[str]:
    """The VM's command line minus network, QMP and the disc, disk in snapshot mode."""
    argv = qemu_argv(replace(machine, accel=accel), replace(files, disc=None, serial_log=serial))
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("-netdev", "-qmp") or (
            arg == "-device" and argv[i + 1].startswith("virtio-net-pci")
        ):
            skip = True
            continue
        out.append(arg)
    return [*out, "-snapshot", "-nic", "none", "-no-reboot"]


def boot_self_test(
    machine: Machine, files: MachineFiles, *, accel: str = "kvm", timeout_s: float = 30
) -> bool:
    """Boot ``files.os_disk`` under ``accel``; True if the kernel reaches user space in time.

    ``accel="tcg"`` is the positive control the tests use: the same probe must pass there.
    """
    if accel == "kvm" and not kvm_opens():
        return False
    if shutil.which("qemu-system-x86_64") is None:
        return False
    with tempfile.TemporaryDirectory(prefix="azimg-kvmtest-") as tmp:
        serial = Path(tmp) / "serial.log"
        if machine.generation == 2:
            vars_copy = Path(tmp) / "OVMF_VARS.fd"
            shutil.copyfile(OVMF_VARS, vars_copy)
            files = replace(files, ovmf_vars=vars_copy)
        files = replace(files, qmp_socket=Path(tmp) / "qmp.sock")
        proc = subprocess.Popen(
            self_test_argv(machine, files, serial, accel=accel),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and proc.poll() is None:
                log = serial.read_bytes() if serial.exists() else b""
                if any(marker in log for marker in USERSPACE_MARKERS):
                    return True
                time.sleep(0.5)
            return False
        finally:
            proc.kill()
            proc.wait()


def _cache_file() -> Path:
    base = os.environ.get("AZIMG_CACHE") or str(Path.home() / ".cache" / "azimg")
    return Path(base) / "kvm-selftest.json"


def _host_key() -> str:
    qemu = subprocess.run(
        ["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return f"{platform.release()}|{qemu[0] if qemu else 'no qemu'}"


def cached_kvm_verdict(run: Callable[[], bool]) -> bool:
    """The cached verdict for this host, or ``run()`` once and remember it."""
    path = _cache_file()
    key = _host_key()
    try:
        cached = json.loads(path.read_text())
        if cached.get("host") == key:
            return bool(cached["kvm"])
    except (OSError, ValueError, KeyError):
        pass
    verdict = run()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(json.dumps({"host": key, "kvm": verdict, "at": time.time()}))
        tmp.replace(path)
    except OSError:
        pass
    return verdict
