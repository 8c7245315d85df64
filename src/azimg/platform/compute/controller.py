"""The compute controller: runs a platform's VMs on the fabric and turns the fabric's events
into VM documents and finished operations. One per app (``app.state``), the VM type's service.

Decisions (reference/arm-api.md §8, provisioning.md §7):
- Its work arrives as jobs the VM domain submitted with the documents that need them
  (create, power, delete); it registers their runners itself, bound to this instance, so
  nothing is found through a module global.
- Create is an operation finished by an outside event: the runner clones the image (through
  ``disk/``), writes the OS disk and launches QEMU; then ``OSProvisioningInprogress`` until the
  guest's first Ready health report, ``OSProvisioningComplete`` until the VM agent reports (or
  a short grace period passes: extensions would install here), then Succeeded. No Ready before
  the provisioning timeout gives ``OSProvisioningTimedOut``, a ProvisioningFailed report gives
  ``OSProvisioningClientError``; the VM keeps running in both cases, as on Azure. Specialized
  VMs skip all of that: the operation ends when QEMU is launched.
- Every document change is a compare-and-set (``virtual_machines.change``), so the fabric's
  reports and API writes (a tags PATCH) never overwrite each other.
- VMs never outlive the platform (fabric/supervisor.py): after a restart no VM runs, and
  ``start`` says so in every document that claims otherwise. A create interrupted by a
  restart ends Failed (its ``on_fail`` marks the VM Failed).
- The serial console is written straight into a blob of the VM's region, so boot diagnostics
  are served by the SAS blob endpoint like any other bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from azimg.errors import AzimgError
from azimg.fabric import provisioning as prov
from azimg.fabric.network import Networks, NicPlug
from azimg.fabric.supervisor import Supervisor, VmSpec
from azimg.fabric.wireserver import AgentStatus
from azimg.platform.compute import os_disk
from azimg.platform.compute.spec import vm_spec
from azimg.platform.errors import PlatformError, VMStartFailed, VmStoppedDuringProvisioning
from azimg.platform.jobs import Jobs, JobSpec, error_body
from azimg.platform.resources import disks
from azimg.platform.resources import virtual_machines as vms
from azimg.platform.resources.network import packets
from azimg.platform.resources.network import public_ip_addresses as pips
from azimg.platform.resources.virtual_machines import VirtualMachine
from azimg.platform.settings import Settings
from azimg.platform.store import BlobRef, Operation, Store

log = logging.getLogger(__name__)

DEFAULT_PROVISIONING_TIMEOUT = 1200.0  # Azure: about 20 minutes
COMPLETE_GRACE_S = 10.0  # OSProvisioningComplete → Succeeded when no agent reports sooner
DEADLINE_MARGIN_S = 300.0  # the create operation's own deadline, after the fabric's
GRACEFUL_STOP_S = 60.0


class ComputeController:
    def __init__(
        self,
        store: Store,
        jobs: Jobs,
        runtime_root: Path,
        *,
        provisioning_timeout_s: float = DEFAULT_PROVISIONING_TIMEOUT,
        accel: str = "tcg",
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.root = runtime_root
        self.timeout = provisioning_timeout_s
        self.accel = accel
        self.supervisor: Supervisor | None = None
        self.networks: Networks | None = None  # VNets with real packets (root only)
        self._lock = threading.RLock()
        self._ids: dict[str, str] = {}  # vm uuid → resource id
        self._creating: dict[str, str] = {}  # vm uuid → create operation id
        self._expected_stop: set[str] = set()
        self._deleted: set[str] = set()
        self._timers: dict[str, threading.Timer] = {}
        self._vm_locks: dict[str, threading.Lock] = {}
        specs = {
            vms.JOB_CREATE: JobSpec(run=self._run_create, on_fail=self._fail_create, awaited=True),
            vms.JOB_POWER: JobSpec(run=self._run_power, on_fail=self._fail_power),
            vms.JOB_DELETE: JobSpec(
                run=self._run_delete, on_fail=self._fail_delete, resumable=True
            ),
        }
        for kind, spec in specs.items():
            jobs.register(kind, spec)

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, jobs: Jobs) -> ComputeController:
        return cls(
            store,
            jobs,
            Path(settings.data_dir) / "fabric",
            provisioning_timeout_s=float(settings.vm_provisioning_timeout),
            accel=str(settings.vm_accel),
        )

    @property
    def create_timeout_s(self) -> float:
        """The create operation's deadline: the fabric's provisioning timeout fires first."""
        return self.timeout + COMPLETE_GRACE_S + DEADLINE_MARGIN_S

    # -- service ---------------------------------------------------------------------------

    def start(self) -> None:
        self.networks = _vnet_fabric(self.store, self.root)
        self.supervisor = Supervisor(self.root, self, networks=self.networks)
        # After a restart no VM runs: say so in every document that claims otherwise.
        for doc in self.store.meta.list(type=vms.VM_TYPE):
            if vms.from_doc(doc).power_state in (*vms.ALLOCATED_STATES, "deallocating"):
                vms.change(self.store, doc.id, _mark_stopped)

    def stop(self) -> None:
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
            self._expected_stop.update(self._ids)
        for timer in timers:
            timer.cancel()
        if self.supervisor is not None:
            self.supervisor.close()
        if self.networks is not None:
            self.networks.close()

    def _fabric(self) -> Supervisor:
        assert self.supervisor is not None, "ComputeController.start() was not called"
        return self.supervisor

    def _update(self, rid: str, **changes: Any) -> VirtualMachine | None:
        return vms.change(self.store, rid, lambda vm: replace(vm, **changes))

    # -- create ----------------------------------------------------------------------------

    def _run_create(self, store: Store, op: Operation) -> None:
        """Prepare the OS disk and launch QEMU; the fabric's events finish the operation."""
        vm = vms.find(store, op.resource_id)
        if vm is None or vm.provisioning_state != "Creating":
            return
        with self._lock:
            self._creating[vm.vm_id] = op.id
        vm = self._update(vm.id, create_operation=op.id) or vm
        with self._vm_lock(vm):
            vms.claim_nics(store, vm)
            if vm.attached:
                self._attach(vm)
            else:
                os_disk.clone(store, vm, BlobRef.from_json(op.params["source"]))
                if disks.find(store, vm.os_disk.id) is None:
                    owner = str(vm.system_data.get("createdBy", ""))
                    disks.save(store, vms.os_disk_document(vm, app_id=owner))
            self._launch(vm, first_boot=True)
        if vm.os_provisioning is None:  # specialized: no provisioning to wait for
            self._finish_create(vm.id, None)

    def _attach(self, vm: VirtualMachine) -> None:
        def take(d: disks.Disk) -> disks.Disk:
            vms.check_attachable(d, vm_id=vm.id)
            return replace(d, managed_by=vm.id, disk_state="Attached")

        disks.change(self.store, vm.os_disk.id, take)

    def _fail_create(self, store: Store, op: Operation, error: Mapping[str, Any]) -> None:
        message = str(error.get("message"))

        def failed(vm: VirtualMachine) -> VirtualMachine | None:
            if vm.provisioning_state != "Creating":
                return None
            running = self.supervisor is not None and self.supervisor.running(vm.vm_id)
            return replace(vm, provisioning_state="Failed", os_provisioning_message=message,
                           power_state=vm.power_state if running else "stopped")  # fmt: skip

        vms.change(store, op.resource_id, failed)

    def _finish_create(self, rid: str, error: Mapping[str, Any] | None) -> None:
        """End the create: Succeeded (the VM too, if still Creating) or Failed with ``error``."""
        vm = vms.change(self.store, rid, _succeeded) if error is None else vms.find(self.store, rid)
        if vm is None:
            return
        with self._lock:
            op_id = self._creating.pop(vm.vm_id, None) or vm.create_operation
        if op_id is None:
            return
        if error is None:
            self.jobs.complete(op_id)
        else:
            self.jobs.fail(op_id, error)

    # -- boot and stop ---------------------------------------------------------------------

    def _launch(self, vm: VirtualMachine, *, first_boot: bool) -> None:
        fabric = self._fabric()
        spec = vm_spec(
            vm,
            os_disk=os_disk.local(self.store, vm.runtime_disk.blob),
            serial_log=os_disk.local(self.store, vms.boot_diagnostics_blob(vm)),
            first_boot=first_boot,
            provisioning_timeout_s=self.timeout,
            accel=self.accel,
        )
        spec, public_ip = self._plug(vm, spec)
        self._update(vm.id, power_state="starting")
        with self._lock:  # a delete racing this boot waits, then finds the VM running
            if vm.vm_id in self._deleted:
                return
            self._ids[vm.vm_id] = vm.id
            self._expected_stop.discard(vm.vm_id)
            try:
                fabric.start(spec)
            except AzimgError as err:
                raise _start_failed(vm, err) from None
        self._update(vm.id, power_state="running")
        connection = {
            "id": vm.id,
            "name": vm.name,
            "resourceGroup": vm.resource_group,
            "sshPort": fabric.ssh_port(vm.vm_id),
            "publicIp": public_ip,
            "adminUsername": vm.os_profile.admin_username if vm.os_profile else None,
            "serialLog": str(spec.serial_log),
        }
        (fabric.rundir(vm.vm_id) / "connection.json").write_text(json.dumps(connection, indent=1))

    def _plug(self, vm: VirtualMachine, spec: VmSpec) -> tuple[VmSpec, str | None]:
        """A VM with NICs boots on their VNets (a Basic Dynamic public IP gets its address
        now) and IMDS reports the primary NIC; without NICs, or without the VNet fabric (not
        root), it keeps the private slirp network."""
        if not vm.network_interfaces or self.networks is None:
            return spec, None
        ids = [n.id for n in vm.network_interfaces]
        for nic_id in ids:
            for pip_id in packets.public_ip_ids(self.store, nic_id):
                pips.assign_dynamic(self.store, pip_id)
        plugs = packets.vm_plugs(self.store, ids)
        fields = packets.imds_fields(self.store, ids[0])
        spec = replace(
            spec,
            nics=tuple(NicPlug(p.vnet, p.port) for p in plugs),
            metadata=replace(spec.metadata, **fields),
        )
        return spec, plugs[0].public_ip

    def _release_dynamic_ips(self, vm: VirtualMachine) -> None:
        for ref in vm.network_interfaces:
            with contextlib.suppress(PlatformError):
                for pip_id in packets.public_ip_ids(self.store, ref.id):
                    pips.release_dynamic(self.store, pip_id)

    def _stop_process(self, vm: VirtualMachine, *, graceful: bool) -> None:
        fabric = self._fabric()
        with self._lock:
            if not fabric.running(vm.vm_id):
                return
            self._expected_stop.add(vm.vm_id)
        fabric.stop(vm.vm_id, graceful=graceful, timeout_s=GRACEFUL_STOP_S)

    def _vm_lock(self, vm: VirtualMachine) -> threading.Lock:
        """One power, create or delete step at a time per VM (its process and its disk)."""
        with self._lock:
            return self._vm_locks.setdefault(vm.vm_id, threading.Lock())

    def _run_power(self, store: Store, op: Operation) -> None:
        """start | powerOff | restart | deallocate. A stop flattens the clone: a VM that is
        not running has a plain fixed VHD as its OS disk (snapshots, SAS and images of it read
        ordinary bytes); deallocate also makes that disk Reserved, so it can be exported."""
        action = op.params["action"]
        vm = vms.get_by_id(store, op.resource_id)
        fabric = self._fabric()
        with self._vm_lock(vm):
            if action == "start":
                if not fabric.running(vm.vm_id):
                    self._reserve(vm, "Attached")
                    self._launch(vm, first_boot=False)
                else:
                    self._update(vm.id, power_state="running")
                return
            if action == "restart":
                fabric.restart(vm.vm_id)
                return
            self._stop_process(vm, graceful=not op.params.get("skipShutdown"))
            runtime = os_disk.flatten_clone(store, vm)
            if action == "powerOff":
                self._update(vm.id, power_state="stopped", runtime_disk=runtime)
                return
            self._reserve(vm, "Reserved")
            self._release_dynamic_ips(vm)
            self._update(vm.id, power_state="deallocated", runtime_disk=runtime)

    def _reserve(self, vm: VirtualMachine, state: str) -> None:
        """The OS disk of a deallocated VM is Reserved (exportable); Attached again on start."""

        def mark(d: disks.Disk) -> disks.Disk | None:
            if (d.managed_by or "").lower() != vm.id.lower() or d.disk_state == state:
                return None
            if state == "Attached" and d.disk_state != "Reserved":
                return None
            return replace(d, disk_state=state)

        disks.change(self.store, vm.os_disk.id, mark)

    def _fail_power(self, store: Store, op: Operation, error: Mapping[str, Any]) -> None:
        """The action did not happen: show the power state the fabric actually has."""
        vm = vms.find(store, op.resource_id)
        if vm is None:
            return
        running = self.supervisor is not None and self.supervisor.running(vm.vm_id)

        def settle(vm: VirtualMachine) -> VirtualMachine:
            if vm.power_state in ("starting", "stopping", "deallocating"):
                return replace(vm, power_state="running" if running else "stopped")
            return vm

        vms.change(store, op.resource_id, settle)

    # -- delete ----------------------------------------------------------------------------

    def _forget(self, vm: VirtualMachine) -> None:
        """Stop ``vm``'s process for good (delete, resource-group delete)."""
        with self._lock:
            self._deleted.add(vm.vm_id)
            timer = self._timers.pop(vm.vm_id, None)
        if timer is not None:
            timer.cancel()
        if self.supervisor is not None:
            self._stop_process(vm, graceful=False)

    def _run_delete(self, store: Store, op: Operation) -> None:
        vm = vms.find(store, op.resource_id)
        if vm is None:
            return
        self._forget(vm)
        with self._lock:
            create_op = self._creating.pop(vm.vm_id, None) or vm.create_operation
        if create_op is not None:  # deleted while still being created: that operation ends
            store.meta.finish_operation(
                create_op,
                status="Canceled",
                error={"code": "OperationPreempted",
                       "message": "The VM was deleted before its creation finished."},
            )  # fmt: skip
        with self._vm_lock(vm):
            self._delete_os_disk(store, vm)
        store.blobs.delete(vms.boot_diagnostics_blob(vm))
        self._release_dynamic_ips(vm)
        vms.release_nics(store, vm)
        store.meta.delete(vm.id)
        if self.supervisor is not None:
            shutil.rmtree(self.supervisor.rundir(vm.vm_id), ignore_errors=True)

    def _delete_os_disk(self, store: Store, vm: VirtualMachine) -> None:
        """deleteOption Delete: the disk and its bytes go; Detach: it stays, Unattached, as a
        fixed VHD (a clone is flattened first). Idempotent (a resumed delete runs it again)."""
        d = disks.find(store, vm.os_disk.id)
        ours = d is not None and (d.managed_by or "").lower() == vm.id.lower()
        if vm.os_disk.delete_option == "Delete":
            if d is not None and ours:
                store.meta.delete(d.id)
                store.blobs.delete(d.blob)
            if not vm.attached:
                os_disk.drop(store, vm.runtime_disk)
            return
        if d is None or not ours:
            if not vm.attached:  # its disk was never written: nothing else owns the clone
                os_disk.drop(store, vm.runtime_disk)
            return
        runtime = os_disk.flatten_clone(store, vm)
        self._update(vm.id, runtime_disk=runtime)
        disks.change(
            store, d.id, lambda cur: replace(cur, managed_by=None, disk_state="Unattached")
        )

    def _fail_delete(self, store: Store, op: Operation, error: Mapping[str, Any]) -> None:
        self._update(op.resource_id, provisioning_state="Failed")

    def release(self, store: Store, vm_doc: Any) -> None:
        """Resource-group deletion: the VM's process and its own bytes go before its
        documents (the OS disk's document frees the clone; the base link is the VM's)."""
        vm = vms.from_doc(vm_doc)
        self._forget(vm)
        if vm.runtime_disk.base is not None:
            store.blobs.delete(vm.runtime_disk.base)
        store.blobs.delete(vms.boot_diagnostics_blob(vm))
        self._release_dynamic_ips(vm)
        vms.release_nics(store, vm)  # NICs in other resource groups are free again

    # -- FabricEvents ----------------------------------------------------------------------

    def provisioning(self, vm: str, state: prov.Provisioning) -> None:
        rid = self._ids.get(vm)
        if rid is None or (state.reports == 0 and state.outcome is not prov.Outcome.TIMED_OUT):
            return  # the supervisor's initial announcement
        if state.outcome is prov.Outcome.COMPLETE:
            updated = self._update(rid, os_provisioning="Complete", provisioned=True, secrets={})
            if updated is not None and updated.agent and updated.agent.status == "Ready":
                self._finish_create(rid, None)
            else:
                timer = threading.Timer(COMPLETE_GRACE_S, self._finish_create, [rid, None])
                timer.daemon = True
                with self._lock:
                    self._timers[vm] = timer
                timer.start()
        elif state.outcome is prov.Outcome.TIMED_OUT:
            message = state.description or "OS provisioning timed out."
            self._fail_provisioning(rid, "TimedOut", "OSProvisioningTimedOut", message)
        elif state.outcome is prov.Outcome.CLIENT_ERROR:
            message = (
                "OS Provisioning failed for VM due to an error reported by the guest: "
                f"{state.description}"
            )
            self._fail_provisioning(rid, "ClientError", "OSProvisioningClientError", message)

    def _fail_provisioning(self, rid: str, outcome: str, code: str, message: str) -> None:
        self._update(rid, provisioning_state="Failed", os_provisioning=outcome,
                     os_provisioning_message=message)  # fmt: skip
        self._finish_create(rid, {"code": code, "message": message})

    def agent_status(self, vm: str, status: AgentStatus) -> None:
        rid = self._ids.get(vm)
        if rid is None:
            return
        updated = self._update(rid, agent=status)
        if (
            updated is not None
            and updated.provisioning_state == "Creating"
            and updated.os_provisioning == "Complete"
            and status.status == "Ready"
        ):
            with self._lock:
                timer = self._timers.pop(vm, None)
            if timer is not None:
                timer.cancel()
            self._finish_create(rid, None)

    def stopped(self, vm: str, exit_code: int) -> None:
        rid = self._ids.get(vm)
        with self._lock:
            expected = vm in self._expected_stop
            self._expected_stop.discard(vm)
        if rid is None or expected:
            return
        # The guest powered itself off (or QEMU died): the VM is stopped, still allocated.
        current = self._update(rid, power_state="stopped")
        if current is not None and current.provisioning_state == "Creating":
            err = VmStoppedDuringProvisioning(exit_code=exit_code)
            self._update(rid, provisioning_state="Failed", os_provisioning_message=err.message)
            self._finish_create(rid, error_body(err))


def _mark_stopped(vm: VirtualMachine) -> VirtualMachine:
    return replace(vm, power_state="stopped")


def _succeeded(vm: VirtualMachine) -> VirtualMachine:
    if vm.provisioning_state != "Creating":
        return vm
    return replace(vm, provisioning_state="Succeeded")


def _start_failed(vm: VirtualMachine, err: AzimgError) -> PlatformError:
    return VMStartFailed(vm=vm.name, reason=err)


def _vnet_fabric(store: Store, root: Path) -> Networks | None:
    """The VNet packet layer, enforcing what the network resources say; None without root
    (then VMs with NICs run on slirp, as VMs without NICs always do)."""
    if os.geteuid() != 0:
        log.warning("not root: VMs run on private slirp networks, not on their VNets")
        return None
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:6]
    try:
        return Networks(tag, desired=lambda keys: packets.desired(store, keys))
    except (AzimgError, OSError):
        log.exception("the VNet fabric could not start: VMs run on private slirp networks")
        return None
