"""The fabric supervisor: starts, watches and stops VMs, and serves their guest endpoints.

One ``Supervisor`` per process that owns VMs (``azimg serve``, or a test). For each VM it
1. writes the provisioning disc (generalized images only) and the VM's OVMF variables (Gen2),
2. opens the guest endpoints: WireServer, HostGAPlugin and IMDS as HTTP on Unix sockets,
3. binds a host-side 127.0.0.1 port for SSH, and
4. starts the VM host (``vmhost.py``) in a fresh network namespace, which runs QEMU.
Health reports and agent status flow back through ``FabricEvents``, which the owner passes in;
the fabric never reaches into the platform. The provisioning deadline is a timer per VM.

Never orphans: VM hosts are spawned from one long-lived thread (PR_SET_PDEATHSIG fires when the
spawning *thread* exits), so they and their QEMU die with this process; each VM host's pid is
written to ``vmhost.pid``, and a new Supervisor on the same runtime root kills any VM host left
from a predecessor before starting (``reap_stale``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from azimg.errors import AzimgError, InvalidArgument
from azimg.fabric import accel
from azimg.fabric import provisioning as prov
from azimg.fabric.guestserver import GuestServer
from azimg.fabric.imds import InstanceMetadata, route_imds, smbios_uuid
from azimg.fabric.media import (
    LinuxProvisioning,
    build_ovf_env,
    disc_label,
    write_provisioning_disc,
)
from azimg.fabric.network import Networks, NicPlug
from azimg.fabric.qemu import (
    GUEST_SSH_PORT,
    OVMF_VARS,
    Machine,
    MachineFiles,
    Qmp,
    QmpError,
    qemu_argv,
    require_tools,
)
from azimg.fabric.wireserver import (
    AgentStatus,
    GoalStateIds,
    HealthReport,
    WireServerHooks,
    route_hostgaplugin,
    route_wireserver,
)

# ACPI PM1 event-enable register: PMBASE 0x600 on both machines (SeaBIOS programs the PIIX4's
# and OVMF the ICH9's there), PM1_EN at PMBASE + 2; bit 8 enables the power-button event
# (ACPI 6.5, 4.8.3.1.2). Read through HMP (``i /h`` = 16-bit port read).
PM1_EN_READ = "i /h 0x602"
PWRBTN_EN = 1 << 8
UNMAPPED_PORT = 0xFFFF


@dataclass(frozen=True)
class VmSpec:
    """Everything the fabric needs to run one VM; the platform builds it from the resource."""

    name: str  # unique among this supervisor's VMs; names the runtime directory
    os_disk: Path
    generation: int
    vm_id: str
    vcpus: int
    memory_mib: int
    metadata: InstanceMetadata
    provisioning: LinuxProvisioning | None  # None: specialized, no disc, no wait
    provisioning_timeout_s: float = 1200.0
    os_disk_format: str = "qcow2"
    os_disk_size: int | None = None  # raw disks: the guest-visible size (a VHD minus its footer)
    accel: str = "tcg"  # tcg | kvm | auto (KVM after a boot self-test, see fabric/accel.py)
    serial_log: Path | None = None  # default: serial.log in the VM's runtime directory
    nics: tuple[NicPlug, ...] = ()  # VNet NICs (primary first); none: slirp as before


def mac_for(vm_id: str) -> str:
    """A stable MAC in Microsoft's 00:0d:3a OUI, derived from the vmId."""
    digest = hashlib.sha256(vm_id.encode()).digest()
    return "00:0d:3a:" + ":".join(f"{b:02x}" for b in digest[:3])


@dataclass
class _Running:
    spec: VmSpec
    rundir: Path
    sockdir: Path
    process: subprocess.Popen[bytes]
    servers: list[GuestServer]
    ssh_socket: socket.socket
    ids: GoalStateIds
    state: prov.Provisioning
    timer: threading.Timer | None = None
    agent: AgentStatus | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    cleaned: threading.Event = field(default_factory=threading.Event)


class Supervisor:
    def __init__(
        self, runtime_root: Path, events: prov.FabricEvents, *, networks: Networks | None = None
    ) -> None:
        self.root = runtime_root
        self.networks = networks  # the VNet packet layer (root only); None: slirp only
        self.root.mkdir(parents=True, exist_ok=True)
        self._events = events
        self._vms: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._accel_lock = threading.Lock()
        self._kvm_verdict: bool | None = None
        # One long-lived thread spawns every VM host: see the module docstring.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fabric-spawn")
        self.reap_stale()

    # -- lifecycle -----------------------------------------------------------------------------

    def rundir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise InvalidArgument(f"VM name {name!r} cannot name a runtime directory")
        return self.root / name

    def serial_log(self, name: str) -> Path:
        with self._lock:
            vm = self._vms.get(name)
        if vm is not None and vm.spec.serial_log is not None:
            return vm.spec.serial_log
        return self.rundir(name) / "serial.log"

    def request_log(self, name: str) -> Path:
        return self.rundir(name) / "guest-requests.log"

    def start(self, spec: VmSpec) -> None:
        """Boot ``spec``; returns once QEMU is launched (not booted)."""
        require_tools(spec.generation)
        with self._lock:
            previous = self._vms.get(spec.name)
        if previous is not None:
            if previous.process.poll() is None:
                raise InvalidArgument(f"VM {spec.name} is already running")
            previous.cleaned.wait(30)  # its host exited; let its cleanup finish first
        rundir = self.rundir(spec.name)
        rundir.mkdir(parents=True, exist_ok=True)
        # Unix socket paths are limited to 108 bytes: short, and fresh for every boot.
        tag = f"{hashlib.sha256(str(rundir).encode()).hexdigest()[:12]}-{secrets.token_hex(3)}"
        sockdir = Path("/tmp") / f"azimg-vm-{tag}"
        sockdir.mkdir(mode=0o700, exist_ok=True)
        disc = None
        if spec.provisioning is not None:
            disc = rundir / "ovf.iso"
            tmp = rundir / ".ovf.iso.partial"
            with tmp.open("wb") as out:
                write_provisioning_disc(
                    build_ovf_env(spec.provisioning), out, label=disc_label(datetime.now(UTC))
                )
            os.replace(tmp, disc)
        ovmf_vars = None
        if spec.generation == 2:
            ovmf_vars = rundir / "OVMF_VARS.fd"
            if not ovmf_vars.exists():
                shutil.copyfile(OVMF_VARS, ovmf_vars)
        ids = GoalStateIds(
            container_id=str(_uuid_from(spec.vm_id, "container")),
            instance_id=f"{spec.vm_id}._{spec.metadata.name}",
            role_name=spec.metadata.name,
        )
        files = MachineFiles(
            os_disk=spec.os_disk,
            os_disk_format=spec.os_disk_format,
            os_disk_size=spec.os_disk_size,
            serial_log=spec.serial_log or rundir / "serial.log",
            qmp_socket=sockdir / "qmp.sock",
            imds_socket=sockdir / "imds.sock",
            disc=disc,
            ovmf_vars=ovmf_vars,
        )
        machine = Machine(
            generation=spec.generation,
            vcpus=spec.vcpus,
            memory_mib=spec.memory_mib,
            smbios_uuid=smbios_uuid(spec.vm_id, spec.generation),
            mac=mac_for(spec.vm_id),
            accel="tcg",
        )
        machine = replace(machine, accel=self._accel(spec.accel, machine, files))
        state = prov.Provisioning(
            outcome=prov.Outcome.IN_PROGRESS if spec.provisioning else prov.Outcome.COMPLETE
        )
        holder: dict[str, _Running] = {}
        hooks = WireServerHooks(
            on_health=lambda r: self._on_health(holder["vm"], r),
            on_agent_status=lambda s: self._on_agent(holder["vm"], s),
        )
        log = self.request_log(spec.name)
        servers = [
            GuestServer(sockdir / "ws.sock", "wireserver",
                        lambda q: route_wireserver(q, ids, hooks), log),
            GuestServer(sockdir / "hgap.sock", "hostgaplugin",
                        lambda q: route_hostgaplugin(q, ids, hooks), log),
            GuestServer(sockdir / "imds.sock", "imds",
                        lambda q: route_imds(q, spec.metadata), log),
        ]  # fmt: skip
        ssh = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ssh.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ssh.bind(("127.0.0.1", 0))
        ssh.listen(16)
        endpoints = {"wireserver": str(sockdir / "ws.sock"),
                     "hostgaplugin": str(sockdir / "hgap.sock"),
                     "imds": str(sockdir / "imds.sock")}  # fmt: skip
        taps: list[tuple[int, str]] = []
        try:
            taps = self._plug(spec, endpoints, ssh)
            config = {
                "parent_pid": os.getpid(),
                "host_netns": os.readlink("/proc/self/ns/net"),
                "sockets": endpoints,
                "relays": not taps,
                "ssh_fd": None if taps else ssh.fileno(),
                "tap_fds": [fd for fd, _ in taps],
                "guest_ssh_port": GUEST_SSH_PORT,
                "qemu_argv": qemu_argv(machine, files, taps=taps),
                "qemu_pidfile": str(rundir / "qemu.pid"),
            }
            (rundir / "vmhost.json").write_text(json.dumps(config, indent=1))
            fds = (*(fd for fd, _ in taps), *(() if taps else (ssh.fileno(),)))
            process = self._spawner.submit(self._spawn, rundir, fds).result()
        except BaseException:
            for server in servers:
                server.close()
            ssh.close()
            self._unplug(spec)
            raise
        finally:
            for fd, _ in taps:  # the VM host has its own copies now
                os.close(fd)
        (rundir / "vmhost.pid").write_text(
            json.dumps({"pid": process.pid, "sockdir": str(sockdir), "started": time.time()})
        )
        vm = _Running(spec, rundir, sockdir, process, servers, ssh, ids, state)
        holder["vm"] = vm
        with self._lock:
            self._vms[spec.name] = vm
        if spec.provisioning is not None:
            vm.timer = threading.Timer(spec.provisioning_timeout_s, self._on_deadline, [vm])
            vm.timer.daemon = True
            vm.timer.start()
        threading.Thread(
            target=self._watch, args=(vm,), name=f"vm-{spec.name}", daemon=True
        ).start()
        self._events.provisioning(spec.name, state)

    def _accel(self, mode: str, machine: Machine, files: MachineFiles) -> str:
        """TCG, or KVM once a boot self-test of this VM's disk passed on this host."""

        def self_test() -> bool:
            with self._accel_lock:
                if self._kvm_verdict is None:
                    self._kvm_verdict = accel.cached_kvm_verdict(
                        lambda: accel.boot_self_test(machine, files, accel="kvm")
                    )
                return self._kvm_verdict

        return accel.choose_accel(mode, self_test)

    def _plug(
        self, spec: VmSpec, endpoints: dict[str, str], ssh: socket.socket
    ) -> list[tuple[int, str]]:
        """The VM's VNet ports, with its guest endpoints; ``azimg vm ssh`` reaches the
        primary NIC's address through the VNet. Returns ``(tap fd, mac)`` per NIC."""
        if not spec.nics:
            return []
        if self.networks is None:
            raise InvalidArgument(f"VM {spec.name} has VNet NICs but this fabric has no VNets")
        taps = []
        for plug in spec.nics:
            port = replace(plug.port, endpoints=endpoints)
            self.networks.add_port(plug.vnet, port)
            taps.append((self.networks.open_tap(plug.vnet, port.ifname), port.mac))
        primary = spec.nics[0]
        self.networks.serve_tcp(ssh, primary.vnet, str(primary.port.address), 22)
        return taps

    def _unplug(self, spec: VmSpec) -> None:
        if self.networks is not None:
            for plug in spec.nics:
                self.networks.remove_port(plug.vnet, plug.port.ifname)

    def _spawn(self, rundir: Path, fds: tuple[int, ...]) -> subprocess.Popen[bytes]:
        log = (rundir / "vmhost.log").open("ab")
        try:
            return subprocess.Popen(
                ["unshare", "--net", "--", sys.executable, "-m", "azimg.fabric.vmhost",
                 str(rundir / "vmhost.json")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=fds, start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()

    def _watch(self, vm: _Running) -> None:
        code = vm.process.wait()
        if vm.timer is not None:
            vm.timer.cancel()
        for server in vm.servers:
            server.close()
        with contextlib.suppress(OSError):
            vm.ssh_socket.shutdown(socket.SHUT_RDWR)
        vm.ssh_socket.close()
        self._unplug(vm.spec)
        (vm.rundir / "vmhost.pid").unlink(missing_ok=True)
        (vm.rundir / "qemu.pid").unlink(missing_ok=True)
        shutil.rmtree(vm.sockdir, ignore_errors=True)
        # Only now may the name boot again: nothing of this run is left to clean up.
        with self._lock:
            if self._vms.get(vm.spec.name) is vm:
                del self._vms[vm.spec.name]
        vm.cleaned.set()
        self._events.stopped(vm.spec.name, code)

    def stop(self, name: str, *, graceful: bool = False, timeout_s: float = 60.0) -> int:
        """Power the VM off (ACPI first when ``graceful`` and the guest listens for the power
        button) and wait until its host exited."""
        vm = self._get(name)
        if graceful and self.listens_for_power_button(name):
            try:
                with Qmp(vm.sockdir / "qmp.sock", timeout=5) as qmp:
                    qmp.command("system_powerdown")
                vm.process.wait(timeout=timeout_s)
                return self._wait_cleaned(vm)
            except (QmpError, subprocess.TimeoutExpired, OSError):
                pass
        if vm.process.poll() is None:
            vm.process.send_signal(signal.SIGTERM)
            try:
                vm.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(vm.process.pid, signal.SIGKILL)
        return self._wait_cleaned(vm)

    def listens_for_power_button(self, name: str) -> bool:
        """Whether the guest OS enabled the ACPI power-button event (PWRBTN_EN in PM1_EN).

        Firmware never enables it; an ACPI-aware kernel does when it starts. A guest that has
        not (still in firmware, no OS, ``acpi=off``) cannot act on ``system_powerdown``, so
        waiting for it to shut down would only wait out the timeout."""
        try:
            with Qmp(self._get(name).sockdir / "qmp.sock", timeout=5) as qmp:
                out = qmp.command("human-monitor-command", **{"command-line": PM1_EN_READ})
        except (QmpError, OSError):
            return False
        match = re.search(r"=\s*0x([0-9a-fA-F]+)", str(out))
        value = int(match.group(1), 16) if match else UNMAPPED_PORT
        # Before the firmware programs PMBASE the port is unmapped and reads all ones.
        return value != UNMAPPED_PORT and bool(value & PWRBTN_EN)

    def _wait_cleaned(self, vm: _Running) -> int:
        code = vm.process.wait()
        vm.cleaned.wait(30)
        return code

    def restart(self, name: str) -> None:
        """A hard reset, as Azure's restart is from the guest's point of view."""
        with Qmp(self._get(name).sockdir / "qmp.sock") as qmp:
            qmp.command("system_reset")

    def close(self) -> None:
        """Stop every VM this supervisor runs."""
        with self._lock:
            names = list(self._vms)
        for name in names:
            with contextlib.suppress(AzimgError):
                self.stop(name)
        self._spawner.shutdown(wait=True)

    # -- queries -------------------------------------------------------------------------------

    def running(self, name: str) -> bool:
        with self._lock:
            return name in self._vms

    def ssh_port(self, name: str) -> int:
        return int(self._get(name).ssh_socket.getsockname()[1])

    def provisioning(self, name: str) -> prov.Provisioning:
        return self._get(name).state

    def agent_status(self, name: str) -> AgentStatus | None:
        return self._get(name).agent

    def _get(self, name: str) -> _Running:
        with self._lock:
            vm = self._vms.get(name)
        if vm is None:
            raise InvalidArgument(f"VM {name} is not running")
        return vm

    # -- guest events --------------------------------------------------------------------------

    def _on_health(self, vm: _Running, report: HealthReport) -> None:
        with vm.lock:
            before = vm.state
            vm.state = prov.on_health(vm.state, report, vm.ids)
            changed = vm.state.outcome is not before.outcome
        if changed:
            if vm.timer is not None:
                vm.timer.cancel()
            self._events.provisioning(vm.spec.name, vm.state)

    def _on_agent(self, vm: _Running, status: AgentStatus) -> None:
        vm.agent = status
        self._events.agent_status(vm.spec.name, status)

    def _on_deadline(self, vm: _Running) -> None:
        with vm.lock:
            before = vm.state
            vm.state = prov.on_deadline(vm.state, vm.spec.provisioning_timeout_s)
            changed = vm.state.outcome is not before.outcome
        if changed:
            self._events.provisioning(vm.spec.name, vm.state)

    # -- crash recovery ------------------------------------------------------------------------

    def reap_stale(self) -> list[int]:
        """Kill VM hosts a previous supervisor on this root left behind; returns their pids."""
        killed = []
        for pidfile in self.root.glob("*/vmhost.pid"):
            try:
                record = json.loads(pidfile.read_text())
                pid = int(record["pid"])
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError, KeyError):
                pidfile.unlink(missing_ok=True)
                continue
            if b"azimg.fabric.vmhost" in cmdline and str(pidfile.parent).encode() in cmdline:
                try:
                    os.killpg(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            shutil.rmtree(record.get("sockdir", ""), ignore_errors=True)
            pidfile.unlink(missing_ok=True)
        return killed


def _uuid_from(seed: str, purpose: str) -> str:
    digest = hashlib.sha256(f"{purpose}:{seed}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
