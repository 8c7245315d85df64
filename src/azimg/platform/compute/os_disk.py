"""The bytes a VM boots, through ``disk/clone.py``: clone, flatten, drop.

A FromImage VM boots a qcow2 clone over its own hard link of the image's bytes (``base``), so
creating it takes constant time and deleting the gallery version later cannot break it. The
clone exists only while the VM is allocated: deallocate, and a delete that keeps the disk
(``deleteOption: Detach``), flatten it into a fixed VHD, which then becomes the OS disk's blob,
so a Reserved or detached disk is a plain managed disk for every other operation.

A failing ``qemu-img`` surfaces as ``DiskOperationFailed``: the job ends Failed with that
message, never a 500.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from azimg.disk.clone import create_clone, flatten
from azimg.errors import AzimgError
from azimg.platform.errors import DiskOperationFailed, VmFeatureNotImplemented
from azimg.platform.resources import disks
from azimg.platform.resources.virtual_machines import RuntimeDisk, VirtualMachine
from azimg.platform.store import BlobRef, Store


def local(store: Store, ref: BlobRef) -> Path:
    path = store.blobs.local_path(ref)
    if path is None:
        raise VmFeatureNotImplemented(feature="VMs over a blob store without local files")
    return path


def vhd_blob(vm: VirtualMachine) -> BlobRef:
    """Where a clone of ``vm`` is flattened to."""
    return BlobRef(vm.location, f"osdisk-{vm.vm_id}.vhd")


def clone(store: Store, vm: VirtualMachine, source: BlobRef) -> None:
    """Make ``vm``'s qcow2 clone over its own link of ``source`` (kept when a retried create
    finds it made)."""
    disk = vm.runtime_disk
    assert disk.format == "qcow2" and disk.base is not None, vm.id
    target = local(store, disk.blob)
    if target.exists():
        return
    try:
        create_clone(local(store, source), target, base=local(store, disk.base))
    except AzimgError as err:
        raise DiskOperationFailed(vm=vm.name, what="created from its image", reason=err) from None


def flatten_clone(store: Store, vm: VirtualMachine, *, in_use: bool = False) -> RuntimeDisk:
    """Flatten ``vm``'s clone into a fixed VHD that becomes its OS disk's blob; the clone and
    its base link go. Returns the runtime disk the VM boots from now on."""
    disk = vm.runtime_disk
    if disk.format != "qcow2":
        return disk
    vhd = vhd_blob(vm)
    try:
        flatten(local(store, disk.blob), local(store, vhd), in_use=in_use)
    except AzimgError as err:
        raise DiskOperationFailed(vm=vm.name, what="written as a VHD", reason=err) from None
    store.blobs.record_local_write(vhd)
    # The OS disk names the VHD now (if it still named the clone: a retried delete may not).
    disks.change(
        store,
        vm.os_disk.id,
        lambda d: replace(d, blob=vhd, blob_format="vhd") if d.blob == disk.blob else None,
    )
    drop(store, disk)
    return RuntimeDisk(blob=vhd, format="vhd", size=disk.size)


def drop(store: Store, disk: RuntimeDisk) -> None:
    """Delete a runtime disk's own bytes (the clone and its base link; a VHD it names)."""
    store.blobs.delete(disk.blob)
    if disk.base is not None:
        store.blobs.delete(disk.base)
