"""The bytes a VM boots (platform/compute/os_disk.py) with a real blob store and qemu-img:
a clone holds its own link of its base, a flatten becomes the OS disk's VHD, and a failing
qemu-img is a clean ``DiskOperationFailed`` (an operation's error), never a crash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from azimg.platform.compute import os_disk
from azimg.platform.errors import DiskOperationFailed
from azimg.platform.resources import disks
from azimg.platform.resources.virtual_machines import (
    ImageReference,
    OsDisk,
    RuntimeDisk,
    VirtualMachine,
    os_disk_document,
)
from azimg.platform.settings import Settings
from azimg.platform.store import BlobRef, Store, open_store

MiB = 1024 * 1024
RG = "/subscriptions/s/resourceGroups/rg/providers"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(Settings(data_dir=tmp_path, regions=("eastus",)))


def _vm(uid: str = "3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff") -> VirtualMachine:
    return VirtualMachine(
        id=f"{RG}/Microsoft.Compute/virtualMachines/vm1",
        name="vm1",
        location="eastus",
        vm_id=uid,
        vm_size="Standard_B1s",
        os_disk=OsDisk(
            f"{RG}/Microsoft.Compute/disks/os1",
            "os1",
            "FromImage",
            "ReadWrite",
            "Standard_LRS",
            "Detach",
            8 * MiB,
        ),
        time_created="2026-12-07T18:00:00.0000000Z",
        system_data={},
        generation=1,
        os_state="Specialized",
        runtime_disk=RuntimeDisk(
            BlobRef("eastus", f"osdisk-{uid}.qcow2"),
            "qcow2",
            8 * MiB,
            base=BlobRef("eastus", f"osdisk-{uid}.base"),
        ),
        image_reference=ImageReference(
            id=f"{RG}/Microsoft.Compute/galleries/g/images/i/versions/1.0.0"
        ),
    )


def _source(store: Store) -> BlobRef:
    ref = BlobRef("eastus", "replica")
    path = store.blobs.local_path(ref)
    assert path is not None
    raw = path.with_suffix(".raw")
    with raw.open("wb") as fh:
        fh.truncate(8 * MiB)
        fh.write(b"BASE")
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vpc", "-o",
                    "subformat=fixed,force_size=on", str(raw), str(path)], check=True)  # fmt: skip
    raw.unlink()
    return ref


def test_clone_then_flatten_makes_the_os_disk_a_vhd(store: Store) -> None:
    vm = _vm()
    source = _source(store)
    os_disk.clone(store, vm, source)
    os_disk.clone(store, vm, source)  # a retried create keeps what the first made
    disks.save(store, os_disk_document(vm, app_id="app"))
    assert disks.get_by_id(store, vm.os_disk.id).blob_format == "qcow2"
    runtime = os_disk.flatten_clone(store, vm)
    d = disks.get_by_id(store, vm.os_disk.id)
    assert (d.blob, d.blob_format) == (runtime.blob, "vhd")
    data = store.blobs.read(d.blob, 0, 4)
    assert data == b"BASE"
    assert store.blobs.read(d.blob, 8 * MiB, 8) == b"conectix"
    assert not store.blobs.exists(vm.runtime_disk.blob)
    assert vm.runtime_disk.base is not None and not store.blobs.exists(vm.runtime_disk.base)


def test_a_clone_of_missing_bytes_fails_cleanly(store: Store) -> None:
    vm = _vm()
    with pytest.raises(DiskOperationFailed) as err:
        os_disk.clone(store, vm, BlobRef("eastus", "gone"))
    assert err.value.code == "InternalDiskManagementError"
    assert "could not be created from its image" in err.value.message
    assert not store.blobs.exists(vm.runtime_disk.blob)


def test_a_flatten_qemu_img_cannot_read_fails_cleanly(store: Store) -> None:
    vm = _vm()
    path = store.blobs.local_path(vm.runtime_disk.blob)
    assert path is not None
    path.write_bytes(b"QFI\xfb" + b"\xff" * 508)  # a qcow2 header that lies
    with pytest.raises(DiskOperationFailed) as err:
        os_disk.flatten_clone(store, vm)
    assert "could not be written as a VHD" in err.value.message
    assert not store.blobs.exists(os_disk.vhd_blob(vm))
    assert path.exists()  # the VM's bytes are untouched
