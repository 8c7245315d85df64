"""The VM host machinery with a real QEMU and no guest OS (SeaBIOS finds no boot disk).

What is checked here needs no guest: the namespace relays reach the VM's WireServer, the IMDS
``guestfwd`` command reaches its IMDS, health reports drive provisioning, the deadline times out,
and QEMU never outlives its supervisor.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from azimg.fabric.imds import InstanceMetadata
from azimg.fabric.media import LinuxProvisioning
from azimg.fabric.provisioning import Outcome, Provisioning
from azimg.fabric.supervisor import Supervisor, VmSpec
from azimg.fabric.wireserver import AgentStatus, HealthReport, build_health_report

VM_ID = "3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff"


class Events:
    """A FabricEvents that records and lets a test wait with a deadline."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.outcomes: list[tuple[str, Outcome]] = []
        self.stops: list[tuple[str, int]] = []

    def provisioning(self, vm: str, state: Provisioning) -> None:
        with self.cond:
            self.outcomes.append((vm, state.outcome))
            self.cond.notify_all()

    def agent_status(self, vm: str, status: AgentStatus) -> None:
        pass

    def stopped(self, vm: str, exit_code: int) -> None:
        with self.cond:
            self.stops.append((vm, exit_code))
            self.cond.notify_all()

    def wait_for(self, predicate: object, timeout: float) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), (self.outcomes, self.stops)  # type: ignore[arg-type]


def blank_disk(path: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path


def make_spec(tmp_path: Path, name: str, timeout: float) -> VmSpec:
    meta = InstanceMetadata(
        vm_id=VM_ID, name=name, computer_name=name, admin_username="opsadmin",
        location="westeurope", resource_group="rg", subscription_id="0" * 8 + "-0000-0000-0000-"
        + "0" * 12, vm_size="Standard_B1s", mac_address="000d3a000001",
    )  # fmt: skip
    return VmSpec(
        name=name, os_disk=blank_disk(tmp_path / f"{name}.qcow2"), generation=1, vm_id=VM_ID,
        vcpus=1, memory_mib=64, metadata=meta,
        provisioning=LinuxProvisioning(hostname=name, username="opsadmin"),
        provisioning_timeout_s=timeout,
    )  # fmt: skip


def in_namespace(pid: int, code: str) -> str:
    """Run Python inside the VM's network namespace (where QEMU's slirp sends the guest)."""
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-n", sys.executable, "-c", code],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip


def test_relays_health_and_stop(tmp_path: Path) -> None:
    events = Events()
    sup = Supervisor(tmp_path / "run", events)
    try:
        spec = make_spec(tmp_path, "vm-relay", timeout=600)
        sup.start(spec)
        qemu_pid = _wait_pidfile(tmp_path / "run" / "vm-relay" / "qemu.pid")
        # The guest's view of 168.63.129.16:80 is 127.0.0.1:80 in QEMU's namespace.
        versions = in_namespace(qemu_pid, textwrap.dedent("""
            import urllib.request
            print(urllib.request.urlopen("http://127.0.0.1:80/?comp=versions").read().decode())
        """))  # fmt: skip
        assert "<Version>2012-11-30</Version>" in versions
        goal = in_namespace(qemu_pid, textwrap.dedent("""
            import urllib.request
            print(urllib.request.urlopen("http://127.0.0.1:80/machine/?comp=goalstate").read().decode())
        """))  # fmt: skip
        container = goal.split("<ContainerId>")[1].split("<")[0]
        instance = goal.split("<InstanceId>")[1].split("<")[0]
        health = build_health_report(HealthReport(1, container, instance, "Ready"))
        in_namespace(qemu_pid, textwrap.dedent(f"""
            import urllib.request
            req = urllib.request.Request("http://127.0.0.1:80/machine?comp=health",
                                         data={health!r}, method="POST")
            urllib.request.urlopen(req).read()
        """))  # fmt: skip
        events.wait_for(lambda: ("vm-relay", Outcome.COMPLETE) in events.outcomes, 10)
        assert sup.provisioning("vm-relay").outcome is Outcome.COMPLETE
        # HostGAPlugin relay on :32526.
        hgap = in_namespace(qemu_pid, textwrap.dedent("""
            import urllib.request
            print(urllib.request.urlopen("http://127.0.0.1:32526/versions").read().decode())
        """))  # fmt: skip
        assert "2015-09-01" in hgap
        # IMDS: the exact guestfwd command QEMU runs, fed one HTTP request on stdin.
        argv = json.loads((tmp_path / "run" / "vm-relay" / "vmhost.json").read_text())["qemu_argv"]
        netdev = argv[argv.index("-netdev") + 1]
        cmd = netdev.split("-cmd:")[1].split()
        reply = subprocess.run(
            cmd,
            input=b"GET /metadata/instance?api-version=2021-08-01&extended=true HTTP/1.1\r\n"
            b"Host: 169.254.169.254\r\nMetadata: true\r\nConnection: close\r\n\r\n",
            capture_output=True, check=True, timeout=10,
        )  # fmt: skip
        assert reply.stderr == b""
        assert b"200 OK" in reply.stdout.split(b"\r\n")[0]
        assert json.loads(reply.stdout.split(b"\r\n\r\n", 1)[1])["compute"]["vmId"] == VM_ID
        log = [json.loads(x) for x in sup.request_log("vm-relay").read_text().splitlines()]
        assert [e["service"] for e in log] == [
            "wireserver", "wireserver", "wireserver", "hostgaplugin", "imds",
        ]  # fmt: skip
        assert sup.serial_log("vm-relay").exists()
        sup.stop("vm-relay")
        events.wait_for(lambda: [s for s in events.stops if s[0] == "vm-relay"], 20)
        assert not sup.running("vm-relay")
        assert not _alive(qemu_pid)
    finally:
        sup.close()


def test_deadline_times_out_a_silent_guest(tmp_path: Path) -> None:
    events = Events()
    sup = Supervisor(tmp_path / "run", events)
    try:
        started = time.monotonic()
        sup.start(make_spec(tmp_path, "vm-quiet", timeout=2))
        events.wait_for(lambda: ("vm-quiet", Outcome.TIMED_OUT) in events.outcomes, 20)
        assert time.monotonic() - started >= 2
        assert sup.running("vm-quiet")  # a timed-out VM keeps running, as on Azure
    finally:
        sup.close()


def test_graceful_stop_of_a_guest_without_an_os_does_not_wait(tmp_path: Path) -> None:
    """Firmware alone never enables the ACPI power button, so a graceful stop cannot be
    answered: it goes straight to the hard stop instead of waiting out its timeout (here an
    hour, longer than the suite's per-test timeout, so the old behaviour fails this test)."""
    events = Events()
    sup = Supervisor(tmp_path / "run", events)
    try:
        sup.start(make_spec(tmp_path, "vm-firmware", timeout=600))
        qemu_pid = _wait_pidfile(tmp_path / "run" / "vm-firmware" / "qemu.pid")
        assert sup.listens_for_power_button("vm-firmware") is False
        sup.stop("vm-firmware", graceful=True, timeout_s=3600)
        assert not sup.running("vm-firmware")
        assert not _alive(qemu_pid)
    finally:
        sup.close()


def test_qemu_dies_with_its_supervisor(tmp_path: Path) -> None:
    """SIGKILL the supervising process: no QEMU may survive it."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_fabric_host import Events, make_spec
        from azimg.fabric.supervisor import Supervisor
        sup = Supervisor(Path({str(tmp_path / "run")!r}), Events())
        sup.start(make_spec(Path({str(tmp_path)!r}), "vm-orphan", timeout=600))
        print("started", flush=True)
        time.sleep(600)
    """)  # fmt: skip
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "started"
        qemu_pid = _wait_pidfile(tmp_path / "run" / "vm-orphan" / "qemu.pid")
        vmhost_pid = json.loads((tmp_path / "run" / "vm-orphan" / "vmhost.pid").read_text())["pid"]
        assert _alive(qemu_pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 15
        while (_alive(qemu_pid) or _alive(vmhost_pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(qemu_pid)
        assert not _alive(vmhost_pid)
        # A new supervisor on the same root clears what the dead one left behind.
        Supervisor(tmp_path / "run", Events()).close()
        assert not (tmp_path / "run" / "vm-orphan" / "vmhost.pid").exists()
    finally:
        if owner.poll() is None:
            owner.kill()


def _wait_pidfile(path: Path, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    pytest.fail(f"{path} never appeared")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[1].split()[0] != "Z"  # a zombie has exited
