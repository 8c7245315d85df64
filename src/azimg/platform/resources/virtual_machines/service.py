"""VM operations: create, read, update tags, power, generalize, delete (reference §8).

Pure domain: typed commands in, ``VirtualMachine`` out, no threads or processes. Work that
takes time is a job written in the same transaction as the document that needs it:
- create writes the VM (Creating) with its create operation; the compute controller
  (``platform/compute``) runs it: clones the image through ``disk/``, writes the OS disk,
  boots, and the fabric's events finish it;
- power actions write the transitional power state with their operation;
- delete writes Deleting with its operation.
Every later change goes through ``store.update`` (compare-and-set on the ETag), so a tags
PATCH and the fabric's power-state report cannot overwrite each other.

Sources come from ``platform/sources.py``: a gallery image or version, or a managed image;
or ``osDisk.createOption: Attach`` of an Unattached managed disk. A generalized source needs
``osProfile``; a specialized one or an attached disk forbids it (Azure's messages).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from azimg.platform import errors, sas, sources
from azimg.platform.errors import PreconditionFailed
from azimg.platform.ids import ResourceId
from azimg.platform.jobs import Jobs
from azimg.platform.resources import disks
from azimg.platform.resources.common import (
    Reads,
    check_location,
    check_name,
    check_tags,
    enum_value,
    require_document,
    require_resource_group,
    resource_id,
    system_data,
    utc_now,
)
from azimg.platform.resources.network import network_interfaces as nics
from azimg.platform.resources.virtual_machines import rules
from azimg.platform.resources.virtual_machines.commands import CreateVm, UpdateVm
from azimg.platform.resources.virtual_machines.model import (
    JOB_CREATE,
    JOB_DELETE,
    JOB_POWER,
    VM_TYPE,
    ImageReference,
    NetworkInterfaceRef,
    OsDisk,
    RuntimeDisk,
    VirtualMachine,
    boot_diagnostics_blob,
    from_doc,
    to_doc,
    vm_resource_id,
)
from azimg.platform.store import BlobRef, Document, Operation, Store

#: What ``imageReference.id`` may name.
IMAGE_TYPES = (
    "Microsoft.Compute/galleries/images/versions",
    "Microsoft.Compute/galleries/images",
    "Microsoft.Compute/images",
)
GIB = 1024**3


# --- reads -----------------------------------------------------------------------------------


_READS = Reads(VM_TYPE, from_doc)
get_by_id = _READS.get_by_id
get = _READS.get
list_by_resource_group = _READS.list_by_resource_group
list_by_subscription = _READS.list_by_subscription


def find(store: Store, rid: str) -> VirtualMachine | None:
    doc = store.meta.get(rid)
    return from_doc(doc) if doc is not None else None


def change(
    store: Store, rid: str, fn: Callable[[VirtualMachine], VirtualMachine | None]
) -> VirtualMachine | None:
    """``store.update`` (the one compare-and-set) in terms of ``VirtualMachine``: ``fn`` gets
    the current VM and returns the new one, or None to write nothing."""

    def on_doc(doc: Document) -> Document | None:
        new = fn(from_doc(doc))
        return to_doc(new, etag=doc.etag) if new is not None else None

    written = store.update(rid, on_doc)
    return from_doc(written) if written is not None else None


# --- create ----------------------------------------------------------------------------------


def _attached_disk(
    store: Store, cmd: CreateVm, region: str
) -> tuple[disks.Disk, rules.SourceFacts]:
    os_disk = cmd.os_disk
    if cmd.image_reference.given:
        raise errors.AttachWithImage(target="osDisk")
    if not os_disk.managed_disk_id:
        raise errors.RequiredVmParameter(
            name="osDisk.managedDisk.id", target="osDisk.managedDisk.id"
        )
    d = disks.get_by_id(store, os_disk.managed_disk_id)
    check_attachable(d, vm_id=None)
    if d.location != region:
        raise errors.AttachedDiskRegion(disk=d.name, region=d.location, vm_region=region,
                                        target="osDisk.managedDisk.id")  # fmt: skip
    if (os_disk.os_type or d.os_type or "").lower() != "linux":
        raise errors.AttachedDiskNotLinux(target="osDisk.osType")
    facts = rules.SourceFacts("Specialized", rules.generation_of(d.hyper_v_generation), True)
    return d, facts


def check_attachable(d: disks.Disk, *, vm_id: str | None) -> None:
    """An OS disk to attach: Unattached (or already this VM's, when a create is retried)."""
    if vm_id is not None and d.managed_by and d.managed_by.lower() == vm_id.lower():
        return
    if d.managed_by or d.disk_state != "Unattached":
        owner = f"VM '{d.managed_by}'" if d.managed_by else f"state {d.disk_state}"
        raise errors.DiskNotAttachable(disk=d.name, owner=owner, target="osDisk.managedDisk.id")


def _image_source(
    store: Store, cmd: CreateVm, region: str
) -> tuple[sources.Source, ImageReference]:
    ref = cmd.image_reference
    if not ref.id:
        if ref.given:
            raise errors.ImageReferenceKindNotImplemented(target="imageReference")
        raise errors.RequiredVmParameter(
            name="storageProfile.imageReference", target="imageReference"
        )
    src = sources.resolve(
        store, ref.id, region=region, accept=IMAGE_TYPES, target="imageReference.id"
    )
    if src.location != region:
        raise errors.ImageRegion(image=src.id, region=src.location, vm_region=region,
                                 target="imageReference.id")  # fmt: skip
    if len(src.disks) > 1:
        raise errors.VmFeatureNotImplemented(
            feature="Creating a VM from an image with data disks", target="imageReference"
        )
    exact = None
    if ResourceId.parse(src.id).types[-1].lower() == "versions":
        exact = ResourceId.parse(src.id).name
    return src, ImageReference(id=ref.id, exact_version=exact)


def create(
    store: Store, jobs: Jobs, cmd: CreateVm, *, boot_timeout_s: float
) -> tuple[VirtualMachine, Operation]:
    """Validate and record a new VM (Creating) with its create operation, in one write."""
    check_name(cmd.name, kind="virtual machine", max_len=64)
    require_resource_group(store, cmd.subscription_id, cmd.resource_group)
    region = check_location(store, cmd.location, rtype=VM_TYPE)
    tags = check_tags(cmd.tags)
    vm_size = rules.check_vm_size(cmd.vm_size)
    if cmd.data_disks:
        raise errors.VmDataDisksNotImplemented(target="storageProfile.dataDisks")
    os_in = cmd.os_disk
    option = enum_value(
        os_in.create_option or "FromImage", rules.OS_DISK_CREATE_OPTIONS,
        target="storageProfile.osDisk.createOption",
    )  # fmt: skip
    delete_option = enum_value(
        os_in.delete_option or "Detach", rules.OS_DISK_DELETE_OPTIONS,
        target="storageProfile.osDisk.deleteOption",
    )  # fmt: skip
    caching = enum_value(
        os_in.caching or "ReadWrite", rules.CACHING, target="storageProfile.osDisk.caching"
    )
    sku_in = os_in.storage_account_type
    rid = vm_resource_id(cmd.subscription_id, cmd.resource_group, cmd.name)
    vm_uuid = str(uuid.uuid4())
    params: dict[str, Any] = {}
    image_ref: ImageReference | None = None
    if option == "Attach":
        d, facts = _attached_disk(store, cmd, region)
        sku = d.sku
        os_disk = OsDisk(id=d.id, name=d.name, create_option="Attach", caching=caching,
                         storage_account_type=sku, delete_option=delete_option,
                         size_bytes=d.disk_size_bytes)  # fmt: skip
        runtime = RuntimeDisk(blob=d.blob, format="vhd", size=d.disk_size_bytes)
    else:
        src, image_ref = _image_source(store, cmd, region)
        facts = rules.SourceFacts(
            src.os_state or "Generalized", rules.generation_of(src.hyper_v_generation), False
        )
        sku = enum_value(
            sku_in or "Standard_LRS", disks.DISK_SKUS,
            target="storageProfile.osDisk.managedDisk.storageAccountType",
        )  # fmt: skip
        disk_name = os_in.name or f"{cmd.name}_OsDisk_1_{uuid.uuid4().hex}"
        check_name(disk_name, kind="disk")
        disk_id = resource_id(cmd.subscription_id, cmd.resource_group, disks.DISK.type, disk_name)
        if store.meta.get(disk_id) is not None:
            raise errors.OsDiskNameTaken(disk=disk_name, resource_group=cmd.resource_group,
                                         target="osDisk.name")  # fmt: skip
        source_disk = src.disk(None, target="imageReference")
        size = source_disk.size_bytes
        os_disk = OsDisk(id=disk_id, name=disk_name, create_option="FromImage", caching=caching,
                         storage_account_type=sku, delete_option=delete_option,
                         size_bytes=size)  # fmt: skip
        runtime = RuntimeDisk(
            blob=BlobRef(region, f"osdisk-{vm_uuid}.qcow2"),
            format="qcow2",
            size=size,
            base=BlobRef(region, f"osdisk-{vm_uuid}.base"),
        )
        params = {
            "source": source_disk.blob.to_json(),
            "sourceId": src.id,
            "sourceType": src.type,
        }
    os_profile = rules.check_os_profile(cmd.os_profile, facts)
    secrets: dict[str, str] = {}
    if cmd.os_profile is not None and os_profile is not None:
        if cmd.os_profile.admin_password is not None:
            secrets["adminPassword"] = cmd.os_profile.admin_password
        if cmd.os_profile.custom_data is not None:
            secrets["customData"] = cmd.os_profile.custom_data
    nic_refs = _check_nics(store, rid, region, cmd.network_interfaces)
    now = utc_now()
    vm = VirtualMachine(
        id=rid,
        name=cmd.name,
        location=region,
        vm_id=vm_uuid,
        vm_size=vm_size,
        os_disk=os_disk,
        time_created=now,
        system_data=system_data(cmd.app_id, now=now),
        generation=facts.generation,
        os_state=facts.os_state,
        runtime_disk=runtime,
        image_reference=image_ref,
        os_profile=os_profile,
        os_provisioning="InProgress" if os_profile is not None else None,
        tags=tags,
        network_interfaces=nic_refs,
        security=cmd.security,
        boot_diagnostics=cmd.boot_diagnostics,
        license_type=cmd.license_type,
        user_data=cmd.user_data,
        secrets=secrets,
    )
    # The NICs and the OS disk are claimed by the create job (``claim``), after the VM and its
    # operation are written: a crash in between leaves no NIC or disk owned by no VM.
    try:
        op = jobs.expect(JOB_CREATE, action="put", resource_id=rid, location=region,
                         timeout=boot_timeout_s, params=params, document=to_doc(vm),
                         if_none_match=True)  # fmt: skip
    except PreconditionFailed:
        raise errors.VmCreateInProgress(vm=cmd.name) from None
    return vm, op


def claim_nics(store: Store, vm: VirtualMachine) -> None:
    """One VM per NIC: a NIC another VM took since the request was checked fails the create
    with ``NicInUse`` (the create job calls this; idempotent for the same VM)."""
    for ref in vm.network_interfaces:
        nics.attach(store, nic_id=ref.id, vm_id=vm.id, primary=bool(ref.primary))


def _check_nics(
    store: Store, vm_id: str, region: str, refs: tuple[NetworkInterfaceRef, ...]
) -> tuple[NetworkInterfaceRef, ...]:
    """``networkProfile.networkInterfaces`` checked by Network's rules, canonical ids, the
    primary first. (A VM without them keeps today's private slirp network.)"""
    checked = nics.check_for_vm(
        store, vm_id=vm_id, location=region,
        refs=tuple(nics.VmNic(r.id, r.primary) for r in refs),
    )  # fmt: skip
    options = {r.id.lower(): r.delete_option for r in refs}
    return tuple(NetworkInterfaceRef(c.id, c.primary, options.get(c.id.lower())) for c in checked)


def release_nics(store: Store, vm: VirtualMachine) -> None:
    """The VM's NICs are free again (its delete; a create that did not happen)."""
    for ref in vm.network_interfaces:
        nics.detach(store, nic_id=ref.id, vm_id=vm.id)


def os_disk_document(vm: VirtualMachine, *, app_id: str) -> disks.Disk:
    """The managed disk a FromImage VM boots (``managedBy`` the VM, Attached)."""
    assert vm.image_reference is not None
    now = utc_now()
    ref_type = ResourceId.parse(vm.image_reference.id).types[0].lower()
    image = disks.ImageRef(id=vm.image_reference.id)
    if ref_type == "galleries":
        creation = disks.CreationData(create_option="FromImage", gallery_image_reference=image)
    else:
        creation = disks.CreationData(create_option="FromImage", image_reference=image)
    return disks.Disk(
        id=vm.os_disk.id,
        name=vm.os_disk.name,
        type=disks.DISK.type,
        location=vm.location,
        sku=vm.os_disk.storage_account_type,
        creation_data=creation,
        disk_size_bytes=vm.os_disk.size_bytes,
        disk_state="Attached",
        provisioning_state="Succeeded",
        unique_id=str(uuid.uuid4()),
        time_created=now,
        blob=vm.runtime_disk.blob,
        system_data=system_data(app_id, now=now),
        os_type="Linux",
        hyper_v_generation=f"V{vm.generation}",
        managed_by=vm.id,
        blob_format=vm.runtime_disk.format,
    )


# --- update ----------------------------------------------------------------------------------


def update(store: Store, cmd: UpdateVm) -> VirtualMachine:
    """PATCH (or PUT on an existing VM): tags change; other properties may only restate."""
    rid = vm_resource_id(cmd.subscription_id, cmd.resource_group, cmd.name)
    current = get_by_id(store, rid)
    rules.check_put_on_existing(current, cmd)
    if cmd.tags is None:
        return current
    tags = check_tags(cmd.tags)
    if cmd.if_match is not None:
        doc = require_document(store, rid, VM_TYPE)
        new = replace(from_doc(doc), tags=tags)
        return from_doc(store.meta.put(to_doc(new), if_match=cmd.if_match))
    updated = change(store, rid, lambda vm: replace(vm, tags=tags))
    if updated is None:
        return get_by_id(store, rid)  # deleted in between: the 404 of a missing VM
    return updated


# --- actions ---------------------------------------------------------------------------------


def _transition(vm: VirtualMachine, action: str) -> str:
    """The power state shown while ``action`` runs (unchanged when there is nothing to do)."""
    state = vm.power_state
    if action == "start" and state in ("stopped", "deallocated"):
        return "starting"
    if action == "powerOff" and state in ("starting", "running"):
        return "stopping"
    if action == "deallocate" and state != "deallocated":
        return "deallocating"
    return state


def _submit_with(
    store: Store,
    jobs: Jobs,
    rid: str,
    kind: str,
    action: str,
    fn: Callable[[VirtualMachine], VirtualMachine],
    params: dict[str, Any] | None = None,
) -> Operation:
    """Submit ``kind`` with the VM as ``fn`` makes it, in one write (retried on a lost race)."""
    while True:
        doc = require_document(store, rid, VM_TYPE)
        vm = fn(from_doc(doc))
        try:
            return jobs.submit(kind, action=action, resource_id=vm.id, location=vm.location,
                               params=params, document=to_doc(vm), if_match=doc.etag)  # fmt: skip
        except PreconditionFailed:
            continue


def power(
    store: Store,
    jobs: Jobs,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    action: str,
    skip_shutdown: bool = False,
) -> Operation:
    """start | powerOff | restart | deallocate: checked now, run by the compute controller."""
    rid = vm_resource_id(subscription_id, resource_group, name)

    def begin(vm: VirtualMachine) -> VirtualMachine:
        rules.check_action(vm, action)
        return replace(vm, power_state=_transition(vm, action))

    params = {"action": action, "skipShutdown": skip_shutdown}
    return _submit_with(store, jobs, rid, JOB_POWER, "post", begin, params)


def delete(
    store: Store, jobs: Jobs, *, subscription_id: str, resource_group: str, name: str
) -> Operation | None:
    """Mark the VM Deleting with its delete operation; None when there is no such VM (204)."""
    rid = vm_resource_id(subscription_id, resource_group, name)
    if store.meta.get(rid) is None:
        require_resource_group(store, subscription_id, resource_group)
        return None
    return _submit_with(store, jobs, rid, JOB_DELETE, "delete",
                        lambda vm: replace(vm, provisioning_state="Deleting"))  # fmt: skip


def generalize(store: Store, *, subscription_id: str, resource_group: str, name: str) -> None:
    """Mark the VM generalized (irreversible); only a stopped or deallocated VM."""
    rid = vm_resource_id(subscription_id, resource_group, name)

    def mark(vm: VirtualMachine) -> VirtualMachine:
        rules.check_generalize(vm)
        return replace(vm, generalized=True)

    get_by_id(store, rid)
    change(store, rid, mark)


# --- sources and boot diagnostics --------------------------------------------------------------


def resolve_os_disk(store: Store, rid: str, *, region: str | None = None) -> sources.Source:
    """A VM as a source (managed image or gallery version from a VM): its OS disk's bytes,
    generalized or specialized as the VM is. While the VM is allocated those bytes may be its
    qcow2 clone (``SourceDisk.format``); copying them flattens them into a fixed VHD."""
    vm = get_by_id(store, rid)
    if region is not None and vm.location != region:
        raise errors.VmSourceRegion(vm=vm.name, region=vm.location, wanted=region,
                                    target="properties.sourceVirtualMachine.id")  # fmt: skip
    d = disks.get_by_id(store, vm.os_disk.id)
    return sources.Source(
        id=vm.id,
        type=VM_TYPE,
        location=vm.location,
        disks=(
            sources.SourceDisk(
                lun=None,
                blob=d.blob,
                size_bytes=d.disk_size_bytes,
                source_id=d.id,
                format=d.blob_format,
            ),
        ),
        os_type="Linux",
        os_state="Generalized" if vm.generalized else "Specialized",
        hyper_v_generation=f"V{vm.generation}",
    )


def boot_diagnostics_url(
    store: Store, vm: VirtualMachine, *, blob_base_url: str, minutes: int
) -> str:
    blob = boot_diagnostics_blob(vm)
    if not store.blobs.exists(blob):
        raise errors.BootDiagnosticsNotReady(vm=vm.name)
    grant = sas.create_grant(
        store, resource_id=vm.id, blob=blob, permissions="r", duration_seconds=minutes * 60
    )
    return sas.url(store, grant, blob_base_url=blob_base_url)


def size_gb(vm: VirtualMachine) -> int:
    return -(-vm.os_disk.size_bytes // GIB)
