"""Managed images: a generalized OS disk captured from a disk, snapshot, blob or VM.

Rules (reference §6.3): the source must be generalized and in the image's region; exactly one
source; osType and osState are required for disk/snapshot/blob sources. The image keeps its
own copy of the bytes (a job, ``JOB_COPY``), so deleting the source later does not break it —
as in Azure. Disks, snapshots and VMs are resolved through ``platform/sources.py``; an image
is a source itself through ``resolve_image``. The copy job is submitted with the new image's
document in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from azimg.platform import sources
from azimg.platform.gallery_errors import (
    ExactlyOneImageSource,
    ImageFromSecurityTypeNotSupported,
    ImageGenerationMismatch,
    ImageSourceInOtherRegion,
    ManagedImageNotGeneralized,
    PropertyChange,
    RequiredParameterMissing,
    SourceNotReady,
    VmNotGeneralized,
)
from azimg.platform.jobs import Jobs, JobSpec
from azimg.platform.resources import disks, image_checks
from azimg.platform.resources.common import (
    Reads,
    check_location,
    check_name,
    check_tags,
    enum_value,
    require_resource_group,
    resource_id,
    system_data,
    utc_now,
)
from azimg.platform.store import BlobRef, Document, Operation, Store

TYPE = "Microsoft.Compute/images"
JOB_COPY = "images.copy"
VM_TYPE = "Microsoft.Compute/virtualMachines"
OS_STATES = ("Generalized", "Specialized")
CACHING = ("None", "ReadOnly", "ReadWrite")


@dataclass(frozen=True)
class OsDiskSpec:
    """``storageProfile.osDisk`` as given (None = not given)."""

    os_type: str | None = None
    os_state: str | None = None
    managed_disk_id: str | None = None
    snapshot_id: str | None = None
    blob_uri: str | None = None
    caching: str | None = None
    storage_account_type: str | None = None


@dataclass(frozen=True)
class ImageSpec:
    """A PUT of a managed image."""

    location: str | None
    os_disk: OsDiskSpec = field(default_factory=OsDiskSpec)
    source_virtual_machine_id: str | None = None
    hyper_v_generation: str | None = None
    zone_resilient: bool | None = None
    tags: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    location: str
    os_type: str
    os_state: str
    hyper_v_generation: str
    source: Mapping[str, Any]  # {"managedDisk": {"id"}} | {"snapshot": {"id"}} | {"blobUri"}
    os_disk_blob: BlobRef
    os_disk_size_bytes: int
    provisioning_state: str
    system_data: Mapping[str, Any]
    tags: Mapping[str, str] = field(default_factory=dict)
    source_virtual_machine: str | None = None
    caching: str | None = None
    storage_account_type: str | None = None
    zone_resilient: bool = False

    @property
    def os_disk_size_gb(self) -> int:
        return -(-self.os_disk_size_bytes // disks.GIB)


def to_doc(img: Image) -> Document:
    body = asdict(img)
    body["os_disk_blob"] = img.os_disk_blob.to_json()
    return Document(
        id=img.id, type=TYPE, body=body, location=img.location, blobs=(img.os_disk_blob,)
    )


def from_doc(doc: Document) -> Image:
    b = dict(doc.body)
    b["os_disk_blob"] = BlobRef.from_json(b["os_disk_blob"])
    return Image(**b)


_READS = Reads(TYPE, from_doc)
get_by_id = _READS.get_by_id
get = _READS.get
list_by_resource_group = _READS.list_by_resource_group
list_by_subscription = _READS.list_by_subscription


def _captured(
    store: Store, rid: str, kind: str, *, region: str | None, target: str
) -> sources.Source:
    return sources.resolve(store, rid, region=region, accept=(kind,), target=target)


def _from_disk_or_snapshot(store: Store, rid: str, kind: str, target: str) -> sources.Source:
    src = _captured(store, rid, kind, region=None, target=target)
    owner = disks.get_by_id(
        store, src.id, disks.DISK if kind == disks.DISK.type else disks.SNAPSHOT
    )
    security = (owner.echoed.get("securityProfile") or {}).get("securityType")
    if security and security != "Standard":
        raise ImageFromSecurityTypeNotSupported(target=target, security=security)
    return src


def _from_vm(store: Store, vm_id: str, region: str) -> sources.Source:
    src = _captured(
        store, vm_id, VM_TYPE, region=region, target="properties.sourceVirtualMachine.id"
    )
    if src.os_state != "Generalized":
        raise VmNotGeneralized(
            target="properties.sourceVirtualMachine.id", vm=vm_id.rsplit("/", 1)[1]
        )
    return src


def _source_of(
    store: Store, source: Mapping[str, Any], vm: str | None, region: str
) -> sources.Source:
    """What an image is captured from: ``source`` as stored (``{"managedDisk": {"id"}}`` …)
    or the VM ``vm``."""
    if vm:
        return _from_vm(store, vm, region)
    if "blobUri" in source:
        return disks.source_from_sas_url(store, source["blobUri"])
    if "managedDisk" in source:
        return _from_disk_or_snapshot(
            store,
            source["managedDisk"]["id"],
            disks.DISK.type,
            "properties.storageProfile.osDisk.managedDisk.id",
        )
    return _from_disk_or_snapshot(
        store,
        source["snapshot"]["id"],
        disks.SNAPSHOT.type,
        "properties.storageProfile.osDisk.snapshot.id",
    )


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    spec: ImageSpec,
    app_id: str,
    jobs: Jobs,
) -> tuple[Image, Operation | None]:
    """The image as stored, and the copy of its bytes when it is new (``JOB_COPY``, submitted
    with the image's document in one transaction)."""
    require_resource_group(store, subscription_id, resource_group)
    check_name(name, kind="image")
    region = check_location(store, spec.location, rtype=TYPE)
    clean_tags = check_tags(spec.tags)
    rid = resource_id(subscription_id, resource_group, TYPE, name)
    os_disk = spec.os_disk
    vm = spec.source_virtual_machine_id
    given_sources = {
        k: v
        for k, v in {
            "managedDisk": os_disk.managed_disk_id,
            "snapshot": os_disk.snapshot_id,
            "blobUri": os_disk.blob_uri,
        }.items()
        if v
    }

    existing = store.meta.get(rid)
    if existing is not None:
        current = from_doc(existing)
        if current.location != region:
            raise PropertyChange(target="location", prop="location")
        given = {k: ({"id": v} if k != "blobUri" else v) for k, v in given_sources.items()}
        if (given_sources and given != dict(current.source)) or (
            vm and vm.lower() != (current.source_virtual_machine or "").lower()
        ):
            raise PropertyChange(
                target="properties.storageProfile.osDisk", prop="storageProfile.osDisk"
            )
        updated = replace(
            current,
            tags=clean_tags if spec.tags is not None else current.tags,
            system_data=system_data(app_id, current.system_data.get("createdAt")),
        )
        store.meta.put(to_doc(updated), if_match=existing.etag)
        return updated, None

    if len(given_sources) + (1 if vm else 0) != 1:
        raise ExactlyOneImageSource(target="properties.storageProfile.osDisk")
    os_state_raw = os_disk.os_state
    os_type_raw = os_disk.os_type
    if not vm:
        if os_type_raw is None:
            raise RequiredParameterMissing(
                target="properties.storageProfile.osDisk.osType", name="osDisk.osType"
            )
        if os_state_raw is None:
            raise RequiredParameterMissing(
                target="properties.storageProfile.osDisk.osState", name="osDisk.osState"
            )
    os_state = (
        enum_value(os_state_raw, OS_STATES, target="properties.storageProfile.osDisk.osState")
        if os_state_raw
        else "Generalized"
    )
    if os_state != "Generalized":
        raise ManagedImageNotGeneralized(target="properties.storageProfile.osDisk.osState")

    source = {k: ({"id": v} if k != "blobUri" else v) for k, v in given_sources.items()}
    src = _source_of(store, source, vm, region)
    if src.location != region:
        raise ImageSourceInOtherRegion(
            target="location", id=src.id, region=src.location, location=region
        )

    os_type = (
        enum_value(os_type_raw, disks.OS_TYPES, target="properties.storageProfile.osDisk.osType")
        if os_type_raw
        else src.os_type
    )
    if not os_type:
        raise RequiredParameterMissing(
            target="properties.storageProfile.osDisk.osType", name="osDisk.osType"
        )
    gen_raw = spec.hyper_v_generation
    generation = (
        enum_value(gen_raw, disks.GENERATIONS, target="properties.hyperVGeneration")
        if gen_raw
        else None
    )
    if generation and src.hyper_v_generation and generation != src.hyper_v_generation:
        raise ImageGenerationMismatch(
            target="properties.hyperVGeneration", given=generation, source=src.hyper_v_generation
        )
    caching = os_disk.caching
    img = Image(
        id=rid,
        name=name,
        location=region,
        os_type=os_type,
        os_state=os_state,
        hyper_v_generation=generation or src.hyper_v_generation or "V1",
        source=source,
        os_disk_blob=BlobRef(region=region, key=uuid.uuid4().hex),
        os_disk_size_bytes=src.disk().size_bytes,
        provisioning_state="Creating",
        system_data=system_data(app_id, now=utc_now()),
        tags=clean_tags,
        source_virtual_machine=vm,
        caching=enum_value(caching, CACHING, target="properties.storageProfile.osDisk.caching")
        if caching
        else None,
        storage_account_type=os_disk.storage_account_type,
        zone_resilient=bool(spec.zone_resilient),
    )
    op = jobs.submit(
        JOB_COPY,
        action="put",
        resource_id=img.id,
        location=img.location,
        params={
            "image_id": img.id,
            "src": src.disk().blob.to_json(),
            "format": src.disk().format,
            "dst": img.os_disk_blob.to_json(),
        },
        document=to_doc(img),
        if_none_match=True,
    )
    return img, op


def _mark(store: Store, rid: str, blob: BlobRef, state: str) -> bool:
    """As ``disks._mark``: only the image that owns ``blob``, never a resurrected one."""

    def change(doc: Document) -> Document | None:
        image = from_doc(doc)
        if image.os_disk_blob != blob:
            return None
        return to_doc(replace(image, provisioning_state=state))

    return store.update(rid, change) is not None


def run_copy(store: Store, op: Operation) -> None:
    """The image's own fixed VHD: a copy, or a flatten when the source is a VM's running
    clone (``format`` qcow2), never the qcow2 itself."""
    src, dst = BlobRef.from_json(op.params["src"]), BlobRef.from_json(op.params["dst"])
    fmt = op.params.get("format", "vhd")
    sources.copy_disk(store, sources.SourceDisk(None, src, 0, format=fmt), dst)
    if not _mark(store, op.params["image_id"], dst, "Succeeded"):
        store.blobs.delete(dst)
    else:  # the platform checks every image it is given (image_checks.py)
        image_checks.record(store, op.params["image_id"])
    return None


def fail_copy(store: Store, op: Operation, error: Mapping[str, Any]) -> None:
    _mark(store, op.params["image_id"], BlobRef.from_json(op.params["dst"]), "Failed")


JOBS: dict[str, JobSpec] = {JOB_COPY: JobSpec(run=run_copy, on_fail=fail_copy, resumable=True)}


def update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    tags: Mapping[str, str] | None,
    app_id: str,
    jobs: Jobs,
) -> Image:
    """PATCH: only tags change on a managed image."""
    current = get(store, subscription_id=subscription_id, resource_group=resource_group, name=name)
    image, _ = create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        spec=ImageSpec(location=current.location, tags=tags if tags is not None else current.tags),
        app_id=app_id,
        jobs=jobs,
    )
    return image


def delete(store: Store, *, subscription_id: str, resource_group: str, name: str) -> bool:
    require_resource_group(store, subscription_id, resource_group)
    doc = store.meta.get(resource_id(subscription_id, resource_group, TYPE, name))
    if doc is None:
        return False
    img = from_doc(doc)
    store.meta.delete(img.id)
    store.blobs.delete(img.os_disk_blob)
    return True


def resolve_image(store: Store, rid: str, *, region: str | None = None) -> sources.Source:
    """The ``platform/sources`` resolver of managed images: the OS disk, in the image's own
    region (callers compare ``location``: an image is used only where it lives)."""
    img = get_by_id(store, rid)
    if img.provisioning_state != "Succeeded":
        raise SourceNotReady(
            target="imageReference.id", kind="image", name=img.name, state=img.provisioning_state
        )
    disk = sources.SourceDisk(
        lun=None, blob=img.os_disk_blob, size_bytes=img.os_disk_size_bytes, caching=img.caching
    )
    return sources.Source(
        id=img.id,
        type=TYPE,
        location=img.location,
        disks=(disk,),
        os_type=img.os_type,
        os_state=img.os_state,
        hyper_v_generation=img.hyper_v_generation,
    )
