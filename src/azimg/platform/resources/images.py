"""Managed images: a generalized OS disk captured from a disk, snapshot, blob or VM.

Rules (reference §6.3): the source must be generalized and in the image's region; exactly one
source; osType and osState are required for disk/snapshot/blob sources. The image keeps its
own copy of the bytes (a job, ``JOB_COPY``), so deleting the source later does not break it —
as in Azure. A VM source is resolved by ``virtual_machines.image_source(store, *, vm_id,
region) -> ImageSource`` when the VM module provides it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from azimg.platform.errors import (
    BadRequest,
    InvalidParameter,
    NotImplementedFeature,
    OperationNotAllowed,
    PropertyChangeNotAllowed,
)
from azimg.platform.jobs import JobSpec
from azimg.platform.resources import disks
from azimg.platform.resources.common import (
    check_location,
    check_name,
    check_tags,
    enum_value,
    parse_id,
    require_document,
    require_resource_group,
    resource_id,
    system_data,
    update_if,
    utc_now,
)
from azimg.platform.store import BlobRef, Document, Operation, Store

TYPE = "Microsoft.Compute/images"
JOB_COPY = "images.copy"
OS_STATES = ("Generalized", "Specialized")
CACHING = ("None", "ReadOnly", "ReadWrite")


@dataclass(frozen=True)
class ImageSource:
    """What an image is captured from (a VM module answers with one of these)."""

    resource_id: str
    blob: BlobRef
    disk_size_bytes: int
    location: str
    os_type: str | None = None
    hyper_v_generation: str | None = None
    generalized: bool = True


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


def _to_doc(img: Image) -> Document:
    body = asdict(img)
    body["os_disk_blob"] = img.os_disk_blob.to_json()
    return Document(
        id=img.id, type=TYPE, body=body, location=img.location, blobs=(img.os_disk_blob,)
    )


def from_doc(doc: Document) -> Image:
    b = dict(doc.body)
    b["os_disk_blob"] = BlobRef.from_json(b["os_disk_blob"])
    return Image(**b)


def _save(store: Store, img: Image) -> Image:
    store.meta.put(_to_doc(img))
    return img


def get_by_id(store: Store, rid: str) -> Image:
    return from_doc(require_document(store, rid, TYPE))


def get(store: Store, *, subscription_id: str, resource_group: str, name: str) -> Image:
    return get_by_id(store, resource_id(subscription_id, resource_group, TYPE, name))


def list_by_resource_group(
    store: Store, *, subscription_id: str, resource_group: str
) -> list[Image]:
    rg = require_resource_group(store, subscription_id, resource_group)
    return [from_doc(d) for d in store.meta.list(type=TYPE, prefix=rg.id + "/")]


def list_by_subscription(store: Store, *, subscription_id: str) -> list[Image]:
    return [
        from_doc(d) for d in store.meta.list(type=TYPE, prefix=f"/subscriptions/{subscription_id}/")
    ]


def _from_disk_or_snapshot(store: Store, rid: str, target: str) -> ImageSource:
    kind = parse_id(rid)["type"].lower()
    expected = (
        disks.DISK.type.lower()
        if target.endswith("managedDisk.id")
        else (disks.SNAPSHOT.type.lower())
    )
    if kind != expected:
        raise InvalidParameter(
            f"The resource '{rid}' is not a {'disk' if 'managedDisk' in target else 'snapshot'}.",
            target=target,
        )
    src, d = disks.source_from_resource(store, rid)
    security = (d.echoed.get("securityProfile") or {}).get("securityType")
    if security and security != "Standard":
        raise OperationNotAllowed(
            f"Creation of managed images are not supported for disks with {security} "
            "security type.",
            target=target,
        )
    return ImageSource(
        resource_id=d.id,
        blob=src.blob,
        disk_size_bytes=src.disk_size_bytes,
        location=d.location,
        os_type=src.os_type,
        hyper_v_generation=src.hyper_v_generation,
    )


def _from_vm(store: Store, vm_id: str, region: str) -> ImageSource:
    try:
        from azimg.platform.resources import virtual_machines
    except ImportError:
        virtual_machines = None  # type: ignore[assignment]
    resolve = getattr(virtual_machines, "image_source", None)
    if resolve is None:
        raise NotImplementedFeature(
            "Creating an image from a virtual machine is not available yet.",
            target="properties.sourceVirtualMachine.id",
        )
    src: ImageSource = resolve(store, vm_id=vm_id, region=region)
    if not src.generalized:
        raise OperationNotAllowed(
            f"The operation 'Create Image' requires the Virtual Machine "
            f"'{vm_id.rsplit('/', 1)[1]}' to be Generalized.",
            target="properties.sourceVirtualMachine.id",
        )
    return src


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    spec: ImageSpec,
    app_id: str,
) -> tuple[Image, bool]:
    """The image as stored and whether it is new (a new image still needs ``JOB_COPY``)."""
    require_resource_group(store, subscription_id, resource_group)
    check_name(name, kind="image")
    region = check_location(store, spec.location, rtype=TYPE)
    clean_tags = check_tags(spec.tags)
    rid = resource_id(subscription_id, resource_group, TYPE, name)
    os_disk = spec.os_disk
    vm = spec.source_virtual_machine_id
    sources = {
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
            raise PropertyChangeNotAllowed(
                "Changing property 'location' is not allowed.", target="location"
            )
        given = {k: ({"id": v} if k != "blobUri" else v) for k, v in sources.items()}
        if (sources and given != dict(current.source)) or (
            vm and vm.lower() != (current.source_virtual_machine or "").lower()
        ):
            raise PropertyChangeNotAllowed(
                "Changing property 'storageProfile.osDisk' source is not allowed.",
                target="properties.storageProfile.osDisk",
            )
        updated = replace(
            current,
            tags=clean_tags if spec.tags is not None else current.tags,
            system_data=system_data(app_id, current.system_data.get("createdAt")),
        )
        return _save(store, updated), False

    if len(sources) + (1 if vm else 0) != 1:
        raise InvalidParameter(
            "Exactly one source must be given: sourceVirtualMachine, or one of "
            "storageProfile.osDisk.managedDisk, .snapshot, .blobUri.",
            target="properties.storageProfile.osDisk",
        )
    os_state_raw = os_disk.os_state
    os_type_raw = os_disk.os_type
    if not vm:
        if os_type_raw is None:
            raise InvalidParameter(
                "Required parameter 'osDisk.osType' is missing (null).",
                target="properties.storageProfile.osDisk.osType",
            )
        if os_state_raw is None:
            raise InvalidParameter(
                "Required parameter 'osDisk.osState' is missing (null).",
                target="properties.storageProfile.osDisk.osState",
            )
    os_state = (
        enum_value(os_state_raw, OS_STATES, target="properties.storageProfile.osDisk.osState")
        if os_state_raw
        else "Generalized"
    )
    if os_state != "Generalized":
        raise InvalidParameter(
            "Managed images can only be created from a generalized source: "
            "osDisk.osState must be 'Generalized'. Use an Azure Compute Gallery image "
            "definition for specialized images.",
            target="properties.storageProfile.osDisk.osState",
        )

    if vm:
        src = _from_vm(store, vm, region)
    elif "blobUri" in sources:
        ds = disks.source_from_sas_url(store, sources["blobUri"])
        src = ImageSource(
            resource_id=sources["blobUri"],
            blob=ds.blob,
            disk_size_bytes=ds.disk_size_bytes,
            location=ds.blob.region,
            os_type=ds.os_type,
        )
    elif "managedDisk" in sources:
        src = _from_disk_or_snapshot(
            store, sources["managedDisk"], "properties.storageProfile.osDisk.managedDisk.id"
        )
    else:
        src = _from_disk_or_snapshot(
            store, sources["snapshot"], "properties.storageProfile.osDisk.snapshot.id"
        )
    if src.location != region:
        raise BadRequest(
            f"The source '{src.resource_id}' is in region '{src.location}'; a managed image "
            f"must be created in the same region as its source ('{region}').",
            target="location",
        )

    os_type = (
        enum_value(os_type_raw, disks.OS_TYPES, target="properties.storageProfile.osDisk.osType")
        if os_type_raw
        else src.os_type
    )
    if not os_type:
        raise InvalidParameter(
            "Required parameter 'osDisk.osType' is missing (null).",
            target="properties.storageProfile.osDisk.osType",
        )
    gen_raw = spec.hyper_v_generation
    generation = (
        enum_value(gen_raw, disks.GENERATIONS, target="properties.hyperVGeneration")
        if gen_raw
        else None
    )
    if generation and src.hyper_v_generation and generation != src.hyper_v_generation:
        raise InvalidParameter(
            f"The hyperVGeneration '{generation}' of the image does not match the source's "
            f"'{src.hyper_v_generation}'.",
            target="properties.hyperVGeneration",
        )
    caching = os_disk.caching
    img = Image(
        id=rid,
        name=name,
        location=region,
        os_type=os_type,
        os_state=os_state,
        hyper_v_generation=generation or src.hyper_v_generation or "V1",
        source={k: ({"id": v} if k != "blobUri" else v) for k, v in sources.items()},
        os_disk_blob=BlobRef(region=region, key=uuid.uuid4().hex),
        os_disk_size_bytes=src.disk_size_bytes,
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
    _save(store, img)
    return img, True


def copy_params(img: Image, source_blob: BlobRef) -> dict[str, Any]:
    return {"image_id": img.id, "src": source_blob.to_json(), "dst": img.os_disk_blob.to_json()}


def source_blob_of(store: Store, img: Image) -> BlobRef:
    """The blob a new image copies from (re-resolved, as the job may run after a restart)."""
    if img.source_virtual_machine:
        return _from_vm(store, img.source_virtual_machine, img.location).blob
    if "blobUri" in img.source:
        return disks.source_from_sas_url(store, img.source["blobUri"]).blob
    rid = (img.source.get("managedDisk") or img.source.get("snapshot"))["id"]
    return disks.source_from_resource(store, rid)[0].blob


def _mark(store: Store, rid: str, blob: BlobRef, state: str) -> bool:
    """As ``disks._mark``: only the image that owns ``blob``, never a resurrected one."""

    def change(doc: Document) -> Document | None:
        image = from_doc(doc)
        if image.os_disk_blob != blob:
            return None
        return _to_doc(replace(image, provisioning_state=state))

    return update_if(store, rid, change)


def run_copy(store: Store, op: Operation) -> None:
    src, dst = BlobRef.from_json(op.params["src"]), BlobRef.from_json(op.params["dst"])
    store.blobs.copy(src, dst)
    if not _mark(store, op.params["image_id"], dst, "Succeeded"):
        store.blobs.delete(dst)
    return None


def fail_copy(store: Store, op: Operation, error: Mapping[str, Any]) -> None:
    _mark(store, op.params["image_id"], BlobRef.from_json(op.params["dst"]), "Failed")


def job_specs() -> dict[str, JobSpec]:
    return {JOB_COPY: JobSpec(run=run_copy, on_fail=fail_copy, resumable=True)}


def update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    tags: Mapping[str, str] | None,
    app_id: str,
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


def disk_source(
    store: Store, *, image_id: str, region: str, lun: int | None = None
) -> disks.DiskSource:
    """For disks FromImage (and VMs): the image's OS disk bytes, usable only in its region."""
    img = get_by_id(store, image_id)
    if lun is not None:
        raise InvalidParameter(
            "The value of parameter imageReference is invalid.",
            target="properties.creationData.imageReference.lun",
        )
    if img.provisioning_state != "Succeeded":
        raise OperationNotAllowed(f"The image '{img.name}' is {img.provisioning_state}.")
    if img.location != region:
        raise BadRequest(
            f"The managed image '{img.name}' is in region '{img.location}'; it can only be used "
            f"in the same region, not '{region}'.",
            target="properties.creationData.imageReference.id",
        )
    return disks.DiskSource(
        resource_id=img.id,
        blob=img.os_disk_blob,
        disk_size_bytes=img.os_disk_size_bytes,
        os_type=img.os_type,
        hyper_v_generation=img.hyper_v_generation,
    )
