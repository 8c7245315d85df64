"""An image or a version made from a VM's OS disk while it is a qcow2 clone in use gets a fixed
VHD, never the qcow2 (issue 9: "a snapshot, Read SAS or image of a VM's OS disk yields VHD
bytes"). Real store (SQLite + filesystem blobs), real qemu-img clone, the real copy jobs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from azimg.disk.clone import create_clone
from azimg.platform.resources import images, replication
from azimg.platform.resources.gallery_versions import JOB_REPLICATE, JOBS, model
from azimg.platform.resources.gallery_versions.rules import TargetRegion
from azimg.platform.store import BlobRef, Operation, Store
from azimg.platform.store.filesystem import FilesystemBlobStore
from azimg.platform.store.sql import SqlMetadataStore

MIB = 1024 * 1024
RG = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute"
PATTERN = b"AZIMG-CLONE-SOURCE" * 100


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    meta = SqlMetadataStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    yield Store(
        meta=meta, blobs=FilesystemBlobStore(tmp_path / "b", ("eastus",)), regions=("eastus",)
    )
    meta.close()


def _path(store: Store, ref: BlobRef) -> Path:
    path = store.blobs.local_path(ref)
    assert path is not None
    return path


@pytest.fixture
def clone(store: Store, tmp_path: Path) -> BlobRef:
    """A VM's OS disk as compute keeps it while allocated: a qcow2 over a fixed VHD."""
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as fh:
        fh.truncate(4 * MIB)
        fh.write(PATTERN)
    base = BlobRef("eastus", "base.vhd")
    subprocess.run(
        ["qemu-img", "convert", "-q", "-f", "raw", "-O", "vpc", "-o",
         "subformat=fixed,force_size=on", str(raw), str(_path(store, base))],
        check=True,
    )  # fmt: skip
    ref = BlobRef("eastus", "osdisk.qcow2")
    create_clone(_path(store, base), _path(store, ref))
    assert _path(store, ref).read_bytes()[:4] == b"QFI\xfb"
    return ref


def _is_the_vhd(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) == 4 * MIB + 512
    assert data[-512:].startswith(b"conectix")  # a fixed VHD's footer, not qcow2's header
    assert data[: len(PATTERN)] == PATTERN


def test_an_image_of_a_running_vms_disk_is_a_vhd(store: Store, clone: BlobRef) -> None:
    dst = BlobRef("eastus", "image-os")
    img = images.Image(
        id=f"{RG}/images/img",
        name="img",
        location="eastus",
        os_type="Linux",
        os_state="Generalized",
        hyper_v_generation="V2",
        source={"managedDisk": {"id": f"{RG}/disks/os"}},
        os_disk_blob=dst,
        os_disk_size_bytes=4 * MIB,
        provisioning_state="Creating",
        system_data={},
    )
    store.meta.put(images.to_doc(img))
    op = Operation.new(
        images.JOB_COPY,
        action="put",
        resource_id=img.id,
        location="eastus",
        params={
            "image_id": img.id,
            "src": clone.to_json(),
            "format": "qcow2",
            "dst": dst.to_json(),
        },
    )
    images.JOBS[images.JOB_COPY].run(store, op)
    assert images.get_by_id(store, img.id).provisioning_state == "Succeeded"
    _is_the_vhd(_path(store, dst))


def test_a_version_replica_of_a_running_vms_disk_is_a_vhd(store: Store, clone: BlobRef) -> None:
    rid = f"{RG}/galleries/g/images/def/versions/1.0.0"
    disk = model.SourceDisk(lun=None, blob=clone, size=4 * MIB + 512, format="qcow2")
    replicas, _ = replication.plan_replicas(
        [("eastus", 1)], [(None, clone, disk.size, disk.format)], key_prefix="v"
    )
    version = model.GalleryImageVersion(
        id=rid,
        name="1.0.0",
        location="eastus",
        target_regions=(TargetRegion("eastus", 1, "Standard_LRS"),),
        replica_count=1,
        storage_account_type="Standard_LRS",
        replication_mode="Full",
        exclude_from_latest=False,
        end_of_life_date=None,
        published_date="2026-12-07T18:00:00.0000000Z",
        source_id=f"{RG}/virtualMachines/vm",
        disks=(disk,),
        replicas=replicas,
    )
    store.meta.put(model.to_doc(version))
    op = Operation.new(
        JOB_REPLICATE, action="put", resource_id=rid, location="eastus", params={"rate": None}
    )
    JOBS[JOB_REPLICATE].run(store, op)
    done = model.from_doc(store.meta.get(rid))  # type: ignore[arg-type]
    assert done.provisioning_state == "Succeeded"
    (replica,) = done.replicas
    _is_the_vhd(_path(store, replica.disks[0].target))
