"""Managed disks: create (Empty, Upload, Import, Copy, FromImage), update, access, delete.

A disk's bytes are one blob holding a fixed VHD (data + 512-byte footer), as Azure keeps
them, so a Read SAS downloads a ready ``.vhd`` and an Upload disk receives exactly what the
client sends. Snapshots share this model (``snapshots.py`` calls these functions with
``SNAPSHOT``), so the rules live once.

diskState machine (reference §4.4): Upload → ReadyToUpload → (grant Write) ActiveUpload →
(revoke, valid footer) Unattached; Unattached → (grant Read) ActiveSAS → (revoke) Unattached.
Creates that copy bytes (Import, Copy, FromImage) return the disk in ``Creating`` and leave
the copy to a job (``JOB_FILL``), resumable after a crash.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import unquote, urlparse

from azimg.disk.vhd import Footer
from azimg.platform import sas, sources
from azimg.platform.disk_errors import (
    AttachOnlyForVirtualMachines,
    CopyAcrossRegions,
    CreateOptionNotImplemented,
    DiskResizeNeedsIdle,
    DiskShrinkNotAllowed,
    DiskSizeOutOfRange,
    ImageInAnotherRegion,
    MissingRequiredParameter,
    ResizeWhileCopyingNotImplemented,
    SnapshotSizeFixed,
    UploadSizeNotMiBAligned,
    UploadSizeOutOfRange,
)
from azimg.platform.errors import (
    BlobWriteNotAllowed,
    Conflict,
    InvalidParameter,
    NotImplementedFeature,
    OperationNotAllowed,
    PropertyChangeNotAllowed,
    ResourceNotFound,
)
from azimg.platform.ids import ResourceId, resource_id, utc_now
from azimg.platform.jobs import Jobs, JobSpec
from azimg.platform.resources.common import (
    check_location,
    check_name,
    check_tags,
    enum_value,
    not_found,
    require_document,
    require_resource_group,
    system_data,
)
from azimg.platform.resources.disk_model import (  # re-exported: other modules say disks.X
    ALL_CREATE_OPTIONS,
    DISK,
    DISK_SKUS,
    FOOTER,
    GENERATIONS,
    GIB,
    MAX_DISK_GB,
    MAX_UPLOAD,
    MIB,
    MIN_UPLOAD,
    OS_TYPES,
    SNAPSHOT,
    SNAPSHOT_SKUS,
    CreationData,
    Disk,
    DiskChange,
    DiskSpec,
    ImageRef,
    Kind,
)
from azimg.platform.sources import Source, SourceDisk
from azimg.platform.store import BlobRef, Document, Operation, Store

__all__ = [  # the model's names, re-exported so callers keep saying ``disks.Disk``
    "ALL_CREATE_OPTIONS",
    "DISK",
    "DISK_SKUS",
    "GENERATIONS",
    "GIB",
    "MAX_UPLOAD",
    "MIB",
    "MIN_UPLOAD",
    "OS_TYPES",
    "SNAPSHOT",
    "SNAPSHOT_SKUS",
    "CreationData",
    "Disk",
    "DiskChange",
    "DiskSpec",
    "ImageRef",
    "Kind",
]

JOB_FILL = "disks.fill"


# --- persistence -----------------------------------------------------------------------------


def _to_doc(d: Disk) -> Document:
    body = asdict(d)
    body["blob"] = d.blob.to_json()
    body["zones"] = list(d.zones)
    return Document(id=d.id, type=d.type, body=body, location=d.location, blobs=(d.blob,))


def from_doc(doc: Document) -> Disk:
    b = dict(doc.body)
    b["blob"] = BlobRef.from_json(b["blob"])
    b["zones"] = tuple(b.get("zones", ()))
    b["creation_data"] = CreationData.from_json(b["creation_data"])
    return Disk(**b)


def _save(store: Store, d: Disk) -> Disk:
    store.meta.put(_to_doc(d))
    return d


def _change(store: Store, rid: str, fn: Callable[[Disk], Disk | None]) -> Disk | None:
    """``store.update`` (compare-and-set on the ETag) in terms of ``Disk``."""

    def change(doc: Document) -> Document | None:
        new = fn(from_doc(doc))
        return _to_doc(new) if new is not None else None

    written = store.update(rid, change)
    return from_doc(written) if written is not None else None


def change_if_unchanged(store: Store, seen: Disk, **changes: Any) -> Disk:
    """Apply ``changes`` to the disk if it is still in the state ``seen`` (same bytes, state
    and grant); 409 when someone changed it in between (the caller's checks were on ``seen``)."""

    def fn(cur: Disk) -> Disk | None:
        same = (cur.blob, cur.disk_state, cur.grant_id, cur.managed_by) == (
            seen.blob,
            seen.disk_state,
            seen.grant_id,
            seen.managed_by,
        )
        return replace(cur, **changes) if same else None

    out = _change(store, seen.id, fn)
    if out is None:
        raise Conflict(
            f"The {seen.type.split('/')[-1][:-1]} '{seen.name}' was changed by another "
            "operation; retry."
        )
    return out


def save(store: Store, d: Disk) -> Disk:
    """Store a ``Disk`` another resource type made (a VM's OS disk), in this module's format."""
    return _save(store, d)


def find(store: Store, rid: str) -> Disk | None:
    """The disk or snapshot ``rid``, or None (for the VM controller, which must cope)."""
    doc = store.meta.get(rid)
    return from_doc(doc) if doc is not None else None


def change(store: Store, rid: str, fn: Callable[[Disk], Disk | None]) -> Disk | None:
    """For other types (a VM attaching, reserving, flattening its OS disk): ``fn`` on the
    current disk under compare-and-set; None when the disk is gone or ``fn`` declined."""
    return _change(store, rid, fn)


def _id(kind: Kind, subscription_id: str, resource_group: str, name: str) -> str:
    return resource_id(subscription_id, resource_group, kind.type, name)


def get_by_id(store: Store, rid: str, kind: Kind = DISK) -> Disk:
    return from_doc(require_document(store, rid, kind.type))


def get(
    store: Store, *, subscription_id: str, resource_group: str, name: str, kind: Kind = DISK
) -> Disk:
    return get_by_id(store, _id(kind, subscription_id, resource_group, name), kind)


def list_by_resource_group(
    store: Store, *, subscription_id: str, resource_group: str, kind: Kind = DISK
) -> list[Disk]:
    rg = require_resource_group(store, subscription_id, resource_group)
    return [from_doc(d) for d in store.meta.list(type=kind.type, prefix=rg.id + "/")]


def list_by_subscription(store: Store, *, subscription_id: str, kind: Kind = DISK) -> list[Disk]:
    return [
        from_doc(d)
        for d in store.meta.list(type=kind.type, prefix=f"/subscriptions/{subscription_id}/")
    ]


# --- sources ---------------------------------------------------------------------------------


def _as_source(d: Disk) -> Source:
    """A disk or snapshot as a copy source (the resolver the registry declares for both)."""
    if d.disk_state in ("ReadyToUpload", "ActiveUpload"):
        raise OperationNotAllowed(
            f"The {d.type.split('/')[-1][:-1]} '{d.name}' is in state {d.disk_state}; finish "
            "the upload (endGetAccess) before copying it."
        )
    if d.provisioning_state != "Succeeded":
        raise OperationNotAllowed(
            f"The {d.type.split('/')[-1][:-1]} '{d.name}' is {d.provisioning_state}; it cannot "
            "be copied yet."
        )
    return Source(
        id=d.id,
        type=d.type,
        location=d.location,
        disks=(
            SourceDisk(
                lun=None,
                blob=d.blob,
                size_bytes=d.disk_size_bytes,
                source_id=d.id,
                format=d.blob_format,
            ),
        ),
        os_type=d.os_type,
        hyper_v_generation=d.hyper_v_generation,
        unique_id=d.unique_id,
    )


def resolve_disk(store: Store, rid: str, *, region: str | None = None) -> Source:
    return _as_source(get_by_id(store, rid, DISK))


def resolve_snapshot(store: Store, rid: str, *, region: str | None = None) -> Source:
    return _as_source(get_by_id(store, rid, SNAPSHOT))


def source_from_sas_url(store: Store, uri: str) -> Source:
    """``sourceUri`` of Import (and a managed image's ``blobUri``): a blob on this platform's
    blob endpoint (a Read SAS URL), as a source whose id is the URL."""
    parsed = urlparse(uri)
    parts = parsed.path.strip("/").split("/")
    if parsed.scheme != "https" or len(parts) != 3 or parts[0] != "blob":
        raise InvalidParameter(
            f"The sourceUri '{uri}' is not a blob on this platform's blob endpoint "
            "(https://<host>/blob/<container>/<blob>).",
            target="properties.creationData.sourceUri",
        )
    query = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p)
    grant = sas.check(
        store,
        container=parts[1],
        blob=parts[2],
        query={k: unquote(v) for k, v in query.items()},
        need="r",
    )
    size = store.blobs.size(grant.blob)
    if size <= FOOTER or (size - FOOTER) % MIB:
        raise InvalidParameter(
            f"The blob at '{uri}' is {size} bytes; a VHD page blob is a whole number of MiB "
            "plus the 512-byte footer.",
            target="properties.creationData.sourceUri",
        )
    doc = store.meta.get(grant.resource_id)
    os_type = doc.body.get("os_type") if doc else None
    disk = SourceDisk(lun=None, blob=grant.blob, size_bytes=size - FOOTER)
    return Source(id=uri, type="blob", location=grant.blob.region, disks=(disk,), os_type=os_type)


#: What ``creationData.imageReference`` / ``galleryImageReference`` may name.
IMAGE_TYPES = ("Microsoft.Compute/images",)
GALLERY_TYPES = (
    "Microsoft.Compute/galleries/images/versions",
    "Microsoft.Compute/galleries/images",
)


def _source_from_image(
    store: Store, ref: ImageRef, region: str, *, gallery: bool
) -> tuple[Source, SourceDisk]:
    target = "properties.creationData." + ("galleryImageReference" if gallery else "imageReference")
    if ref.shared_gallery_image_id or ref.community_gallery_image_id:
        raise NotImplementedFeature(
            "Creating a disk from a shared or community gallery image is not implemented yet.",
            target=target,
        )
    if not ref.id:
        raise MissingRequiredParameter(
            parameter=target.rsplit(".", 1)[1] + ".id", target=target + ".id"
        )
    src = sources.resolve(
        store,
        ref.id,
        region=region,
        accept=GALLERY_TYPES if gallery else IMAGE_TYPES,
        target=target + ".id",
    )
    if src.location != region:
        raise ImageInAnotherRegion(
            id=src.id, source_region=src.location, region=region, target=target + ".id"
        )
    lun = ref.lun
    return src, src.disk(lun, target=target + (".lun" if lun is not None else ""))


# --- create / update -------------------------------------------------------------------------


def _check_upload_size(n: int | None) -> int:
    if n is None:
        raise MissingRequiredParameter(
            parameter="creationData.uploadSizeBytes",
            target="properties.creationData.uploadSizeBytes",
        )
    if (n - FOOTER) % MIB:
        raise UploadSizeNotMiBAligned(size=n, data=n - FOOTER)
    if not MIN_UPLOAD <= n <= MAX_UPLOAD:
        raise UploadSizeOutOfRange(size=n, min=MIN_UPLOAD, max=MAX_UPLOAD)
    return n


def _check_size_gb(size_gb: int) -> int:
    if not 1 <= size_gb <= MAX_DISK_GB:
        raise DiskSizeOutOfRange(size=size_gb, max=MAX_DISK_GB)
    return size_gb


def _empty_vhd(store: Store, blob: BlobRef, size: int) -> None:
    store.blobs.create(blob, size + FOOTER)
    store.blobs.write_pages(blob, size, Footer.for_fixed_disk(size).pack())


@dataclass(frozen=True)
class Fill:
    """A copy a new disk waits for (the work of ``JOB_FILL``)."""

    disk_id: str
    kind: str  # Kind.type
    src: BlobRef
    dst: BlobRef
    format: str = "vhd"  # of ``src`` (SourceDisk.format)

    def to_params(self) -> dict[str, Any]:
        return {
            "disk_id": self.disk_id,
            "kind": self.kind,
            "src": self.src.to_json(),
            "dst": self.dst.to_json(),
            "format": self.format,
        }


def _immutable_checks(current: Disk, *, region: str, creation: CreationData | None) -> None:
    if current.location != region:
        raise PropertyChangeNotAllowed.of(property="location", target="location")
    if creation is None:
        return
    before = replace(current.creation_data, source_unique_id=None)
    after = replace(creation, source_unique_id=None)
    same_option = (after.create_option or "").lower() == (before.create_option or "").lower()
    if not same_option or replace(after, create_option=None) != replace(before, create_option=None):
        raise PropertyChangeNotAllowed.of(property="creationData", target="properties.creationData")


def _update_existing(
    store: Store, current: Disk, spec: DiskSpec, *, region: str, app_id: str, kind: Kind
) -> Disk:
    """PUT on an existing disk: what may change changes, under its ETag."""
    _immutable_checks(current, region=region, creation=spec.creation)
    change = DiskChange(
        subscription_id=spec.subscription_id,
        resource_group=spec.resource_group,
        name=spec.name,
        sku=spec.sku,
        tags=spec.tags,
        disk_size_gb=spec.disk_size_gb,
        os_type=spec.os_type,
        hyper_v_generation=spec.hyper_v_generation,
        echo=spec.echo,
    )
    return _apply(store, current, change, app_id=app_id, kind=kind)


def _resolve_fill_source(
    store: Store, creation: CreationData, option: str, region: str
) -> tuple[Source, SourceDisk, CreationData]:
    """The bytes a Copy, Import or FromImage disk is filled from."""
    if option == "Copy":
        if not creation.source_resource_id:
            raise MissingRequiredParameter(
                parameter="creationData.sourceResourceId",
                target="properties.creationData.sourceResourceId",
            )
        source = sources.resolve(
            store,
            creation.source_resource_id,
            accept=(DISK.type, SNAPSHOT.type),
            target="properties.creationData.sourceResourceId",
        )
        if source.location != region:
            raise CopyAcrossRegions(
                noun=source.type.split("/")[-1][:-1],
                name=ResourceId.parse(source.id).name,
                source_region=source.location,
                region=region,
            )
        creation = replace(creation, source_unique_id=source.unique_id)
        return source, source.disk(), creation
    if option == "Import":
        if not creation.source_uri:
            raise MissingRequiredParameter(
                parameter="creationData.sourceUri", target="properties.creationData.sourceUri"
            )
        source = replace(source_from_sas_url(store, creation.source_uri), type="", location=region)
        return source, source.disks[0], creation
    # FromImage
    if creation.image_reference is not None:
        source, disk = _source_from_image(store, creation.image_reference, region, gallery=False)
    elif creation.gallery_image_reference is not None:
        source, disk = _source_from_image(
            store, creation.gallery_image_reference, region, gallery=True
        )
    else:
        raise MissingRequiredParameter(
            parameter="creationData.imageReference",
            target="properties.creationData.imageReference",
        )
    return source, disk, creation


def _enums(
    kind: Kind, sku: str | None, os_type: str | None, generation: str | None
) -> tuple[str | None, str | None, str | None]:
    """sku, osType and hyperVGeneration in their canonical casing (None where not given)."""
    return (
        enum_value(sku, kind.skus, target="sku.name") if sku else None,
        enum_value(os_type, OS_TYPES, target="properties.osType") if os_type else None,
        enum_value(generation, GENERATIONS, target="properties.hyperVGeneration")
        if generation
        else None,
    )


def create_or_update(
    store: Store, spec: DiskSpec, *, app_id: str, jobs: Jobs, kind: Kind = DISK
) -> tuple[Disk, Operation | None]:
    """The disk as stored now, and the operation of the copy it still needs (None when it
    is ready). A copy's operation is written in the same transaction as the disk."""
    require_resource_group(store, spec.subscription_id, spec.resource_group)
    check_name(spec.name, kind=kind.noun)
    region = check_location(store, spec.location, rtype=kind.type)
    clean_tags = check_tags(spec.tags)
    sku_name, os_type, generation = _enums(kind, spec.sku, spec.os_type, spec.hyper_v_generation)
    rid = _id(kind, spec.subscription_id, spec.resource_group, spec.name)

    existing = store.meta.get(rid)
    if existing is not None:
        current = from_doc(existing)
        return _update_existing(store, current, spec, region=region, app_id=app_id, kind=kind), None

    creation = spec.creation
    if creation is None or not creation.create_option:
        raise MissingRequiredParameter(
            parameter="creationData.createOption",
            target="properties.creationData.createOption",
        )
    option = enum_value(
        creation.create_option, ALL_CREATE_OPTIONS, target="properties.creationData.createOption"
    )
    creation = replace(creation, create_option=option)
    if option == "Attach":
        raise AttachOnlyForVirtualMachines()
    if option not in kind.create_options:
        raise CreateOptionNotImplemented(option=option, noun=kind.noun)
    size_gb = _check_size_gb(spec.disk_size_gb) if spec.disk_size_gb is not None else None

    blob = BlobRef(region=region, key=uuid.uuid4().hex)
    now = utc_now()
    fill: Fill | None = None
    state = "Unattached"
    provisioning = "Succeeded"

    if option == "Empty":
        if size_gb is None:
            raise MissingRequiredParameter(parameter="diskSizeGB", target="properties.diskSizeGB")
        size = size_gb * GIB
    elif option == "Upload":
        size = _check_upload_size(creation.upload_size_bytes) - FOOTER
        state = "ReadyToUpload"
    else:
        source, source_disk, creation = _resolve_fill_source(store, creation, option, region)
        size = source_disk.size_bytes
        if size_gb is not None and size_gb * GIB != size and size_gb != math.ceil(size / GIB):
            raise ResizeWhileCopyingNotImplemented(noun=kind.noun)
        os_type = os_type or source.os_type
        generation = generation or source.hyper_v_generation
        provisioning = "Creating"
        fill = Fill(
            disk_id=rid, kind=kind.type, src=source_disk.blob, dst=blob, format=source_disk.format
        )

    if option == "Empty":
        _empty_vhd(store, blob, size)
    elif option == "Upload":
        store.blobs.create(blob, size + FOOTER)

    disk = Disk(
        id=rid,
        name=spec.name,
        type=kind.type,
        location=region,
        sku=sku_name or kind.default_sku,
        creation_data=creation,
        disk_size_bytes=size,
        disk_state=state,
        provisioning_state=provisioning,
        unique_id=str(uuid.uuid4()),
        time_created=now,
        blob=blob,
        system_data=system_data(app_id, now=now),
        tags=clean_tags,
        zones=spec.zones,
        os_type=os_type,
        hyper_v_generation=generation,
        echoed=dict(spec.echo),
    )
    if fill is None:
        return _save(store, disk), None
    op = jobs.submit(
        JOB_FILL,
        action="put",
        resource_id=disk.id,
        location=disk.location,
        params=fill.to_params(),
        document=_to_doc(disk),
    )
    return disk, op


def _grow(store: Store, d: Disk, size_gb: int, kind: Kind) -> Disk:
    """Resize to ``size_gb``: grow only, only while no VM runs on it and no SAS is out. The
    VHD footer moves to the new end (same unique id); the old footer's page becomes zeros."""
    _check_size_gb(size_gb)
    if kind is not DISK:
        raise SnapshotSizeFixed()
    new_size = size_gb * GIB
    if new_size < d.disk_size_bytes:
        raise DiskShrinkNotAllowed(name=d.name, size=d.disk_size_gb, wanted=size_gb)
    if d.disk_state not in ("Unattached", "Reserved") or d.provisioning_state != "Succeeded":
        raise DiskResizeNeedsIdle(name=d.name, state=d.disk_state)
    old = d.disk_size_bytes
    raw = store.blobs.read(d.blob, old, FOOTER)
    try:
        unique = Footer.unpack(raw, at=old).unique_id
    except Exception:  # a footer we cannot read: the new one gets a fresh id
        unique = None
    store.blobs.resize(d.blob, new_size + FOOTER)
    store.blobs.write_pages(
        d.blob, new_size, Footer.for_fixed_disk(new_size, unique_id=unique).pack()
    )
    store.blobs.clear_pages(d.blob, old, old + FOOTER)
    return replace(d, disk_size_bytes=new_size)


def _apply(store: Store, current: Disk, change: DiskChange, *, app_id: str, kind: Kind) -> Disk:
    """Validate ``change`` against ``current``, grow the bytes if asked, then write the new
    fields under the document's ETag (a concurrent attach or grant is not overwritten)."""
    tags = check_tags(change.tags) if change.tags is not None else None
    sku, os_type, generation = _enums(kind, change.sku, change.os_type, change.hyper_v_generation)
    if change.disk_size_gb is not None and change.disk_size_gb != current.disk_size_gb:
        current = _grow(store, current, change.disk_size_gb, kind)
    grown_to = current.disk_size_bytes

    def fn(cur: Disk) -> Disk | None:
        if cur.blob != current.blob:
            return None  # replaced by a new disk of the same name
        return replace(
            cur,
            disk_size_bytes=max(cur.disk_size_bytes, grown_to),
            tags=tags if tags is not None else cur.tags,
            sku=sku or cur.sku,
            os_type=os_type or cur.os_type,
            hyper_v_generation=generation or cur.hyper_v_generation,
            echoed={**cur.echoed, **change.echo},
            system_data=system_data(app_id, cur.system_data.get("createdAt")),
        )

    out = _change(store, current.id, fn)
    if out is None:
        raise not_found(kind.type, current.name, ResourceId.parse(current.id).resource_group)
    return out


def update(store: Store, change: DiskChange, *, app_id: str, kind: Kind = DISK) -> Disk:
    """PATCH: tags, sku, size (grow), osType, hyperVGeneration and the echoed knobs."""
    current = get(
        store,
        subscription_id=change.subscription_id,
        resource_group=change.resource_group,
        name=change.name,
        kind=kind,
    )
    return _apply(store, current, change, app_id=app_id, kind=kind)


# --- the fill job ----------------------------------------------------------------------------


def _mark(store: Store, rid: str, blob: BlobRef, state: str) -> bool:
    """Set the provisioning state of the disk that owns ``blob``; False when that disk is gone
    (deleted, or replaced by a new one of the same name)."""

    def change(doc: Document) -> Document | None:
        disk = from_doc(doc)
        return _to_doc(replace(disk, provisioning_state=state)) if disk.blob == blob else None

    return store.update(rid, change) is not None


def run_fill(store: Store, op: Operation) -> None:
    """Copy the source bytes into the new disk and mark it Succeeded (idempotent)."""
    p = op.params
    src, dst = BlobRef.from_json(p["src"]), BlobRef.from_json(p["dst"])
    sources.copy_disk(store, SourceDisk(None, src, 0, format=p.get("format", "vhd")), dst)
    if not _mark(store, p["disk_id"], dst, "Succeeded"):  # deleted meanwhile: drop the copy
        store.blobs.delete(dst)
    return None


def fail_fill(store: Store, op: Operation, error: Mapping[str, Any]) -> None:
    _mark(store, op.params["disk_id"], BlobRef.from_json(op.params["dst"]), "Failed")


#: The job kinds of disks and snapshots (access jobs: ``disk_access.JOBS``).
JOBS: Mapping[str, JobSpec] = {
    JOB_FILL: JobSpec(run=run_fill, on_fail=fail_fill, resumable=True),
}


# --- delete ----------------------------------------------------------------------------------


def delete(
    store: Store, *, subscription_id: str, resource_group: str, name: str, kind: Kind = DISK
) -> bool:
    """Remove the disk and its bytes; False when there was nothing to delete (204)."""
    require_resource_group(store, subscription_id, resource_group)
    doc = store.meta.get(_id(kind, subscription_id, resource_group, name))
    if doc is None:
        return False
    d = from_doc(doc)
    if d.managed_by or d.disk_state in ("Attached", "Reserved", "Frozen", "ActiveSASFrozen"):
        raise OperationNotAllowed(f"Disk {d.name} is attached to VM {d.managed_by}.", target="name")
    if d.disk_state == "ActiveSAS":
        raise OperationNotAllowed(
            f"The {kind.noun} '{d.name}' has an active SAS (diskState ActiveSAS); call "
            "endGetAccess before deleting it."
        )
    sas.revoke_grant(store, d.grant_id)
    store.meta.delete(d.id)
    store.blobs.delete(d.blob)
    return True


def set_attachment(store: Store, *, disk_id: str, vm_id: str | None, state: str) -> Disk:
    """For the VM module: mark a disk Attached/Reserved to ``vm_id``, or Unattached (None)."""
    get_by_id(store, disk_id)  # 404 when it is not a disk
    out = _change(store, disk_id, lambda cur: replace(cur, managed_by=vm_id, disk_state=state))
    if out is None:
        raise ResourceNotFound(f"The disk '{disk_id}' was deleted meanwhile.")
    return out


def check_upload_open(store: Store, disk_id: str) -> None:
    """The blob endpoint's write gate: only a disk in ActiveUpload takes page writes."""
    doc = store.meta.get(disk_id)
    if doc is None:
        raise BlobWriteNotAllowed("The disk behind this SAS no longer exists.")
    state = doc.body.get("disk_state")
    if state != "ActiveUpload":
        raise BlobWriteNotAllowed(
            f"The disk is {state}; pages can be written only while it is ActiveUpload."
        )
