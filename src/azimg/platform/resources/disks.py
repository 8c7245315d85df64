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
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlparse

from azimg.platform import sas, sources
from azimg.platform.errors import (
    BadRequest,
    Conflict,
    InvalidParameter,
    InvalidVhd,
    NotImplementedFeature,
    OperationNotAllowed,
    PropertyChangeNotAllowed,
    ResourceNotFound,
)
from azimg.platform.ids import ResourceId, resource_id, utc_now
from azimg.platform.jobs import Jobs, JobSpec
from azimg.platform.resources import image_checks
from azimg.platform.resources.common import (
    check_location,
    check_name,
    check_tags,
    enum_value,
    require_document,
    require_resource_group,
    system_data,
)
from azimg.platform.sources import Source, SourceDisk
from azimg.platform.store import BlobRef, Document, Operation, Store

GIB = 1024**3
MIB = 1024**2
FOOTER = 512
MIN_UPLOAD = 20 * MIB + FOOTER
MAX_UPLOAD = 32 * 1024 * GIB + FOOTER
MAX_DISK_GB = 32767

JOB_FILL = "disks.fill"
JOB_REVOKE = "disks.revoke"

DISK_SKUS = (
    "Standard_LRS",
    "Premium_LRS",
    "StandardSSD_LRS",
    "UltraSSD_LRS",
    "Premium_ZRS",
    "StandardSSD_ZRS",
    "PremiumV2_LRS",
)
SNAPSHOT_SKUS = ("Standard_LRS", "Premium_LRS", "Standard_ZRS")
OS_TYPES = ("Windows", "Linux")
GENERATIONS = ("V1", "V2")
#: Every createOption of the API; the ones azimg does not implement are refused by name.
ALL_CREATE_OPTIONS = (
    "Empty",
    "Attach",
    "FromImage",
    "Import",
    "Copy",
    "Restore",
    "Upload",
    "CopyStart",
    "ImportSecure",
    "UploadPreparedSecure",
    "CopyFromSanSnapshot",
)
#: Properties stored and echoed as given (performance and policy knobs; no behaviour here).
ECHOED = (
    "supportedCapabilities",
    "securityProfile",
    "purchasePlan",
    "encryption",
    "networkAccessPolicy",
    "publicNetworkAccess",
    "dataAccessAuthMode",
    "diskAccessId",
    "maxShares",
    "tier",
    "burstingEnabled",
    "diskIOPSReadWrite",
    "diskMBpsReadWrite",
    "diskIOPSReadOnly",
    "diskMBpsReadOnly",
    "optimizedForFrequentAttach",
    "supportsHibernation",
    "availabilityPolicy",
    "incremental",
)


@dataclass(frozen=True)
class Kind:
    """What differs between disks and snapshots."""

    type: str
    noun: str
    skus: tuple[str, ...]
    create_options: tuple[str, ...]
    default_sku: str


DISK = Kind(
    type="Microsoft.Compute/disks",
    noun="disk",
    skus=DISK_SKUS,
    create_options=("Empty", "Upload", "Import", "Copy", "FromImage"),
    default_sku="Standard_LRS",
)
SNAPSHOT = Kind(
    type="Microsoft.Compute/snapshots",
    noun="snapshot",
    skus=SNAPSHOT_SKUS,
    create_options=("Copy", "Import", "Upload", "FromImage"),
    default_sku="Standard_LRS",
)


@dataclass(frozen=True)
class Disk:
    """A disk or a snapshot (``type`` says which)."""

    id: str
    name: str
    type: str
    location: str
    sku: str
    creation_data: Mapping[str, Any]
    disk_size_bytes: int
    disk_state: str
    provisioning_state: str
    unique_id: str
    time_created: str
    blob: BlobRef
    system_data: Mapping[str, Any]
    tags: Mapping[str, str] = field(default_factory=dict)
    zones: tuple[str, ...] = ()
    os_type: str | None = None
    hyper_v_generation: str | None = None
    managed_by: str | None = None
    grant_id: str | None = None
    echoed: Mapping[str, Any] = field(default_factory=dict)
    # "qcow2" while the disk is the copy-on-write clone a running VM boots (platform/compute);
    # copies of it go through ``sources.copy_disk``, which flattens it into a fixed VHD.
    blob_format: str = "vhd"

    @property
    def disk_size_gb(self) -> int:
        return math.ceil(self.disk_size_bytes / GIB)

    @property
    def blob_size(self) -> int:
        """The VHD: data plus the 512-byte footer."""
        return self.disk_size_bytes + FOOTER


@dataclass(frozen=True)
class DiskSource:
    """Bytes a new disk is filled from, and what it inherits."""

    resource_id: str
    blob: BlobRef
    disk_size_bytes: int
    unique_id: str | None = None
    os_type: str | None = None
    hyper_v_generation: str | None = None


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


def _change_from(store: Store, seen: Disk, **changes: Any) -> Disk:
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


def source_from_resource(store: Store, source_id: str) -> tuple[DiskSource, Disk]:
    """Deprecated (images, gallery versions until they use ``sources.resolve``)."""
    src = sources.resolve(
        store,
        source_id,
        accept=(DISK.type, SNAPSHOT.type),
        target="properties.creationData.sourceResourceId",
    )
    d = get_by_id(store, src.id, DISK if src.type == DISK.type else SNAPSHOT)
    return (
        DiskSource(
            resource_id=d.id,
            blob=d.blob,
            disk_size_bytes=d.disk_size_bytes,
            unique_id=d.unique_id,
            os_type=d.os_type,
            hyper_v_generation=d.hyper_v_generation,
        ),
        d,
    )


def source_from_sas_url(store: Store, uri: str) -> DiskSource:
    """``sourceUri`` of Import: a blob on this platform's blob endpoint (a Read SAS URL)."""
    parsed = urlparse(uri)
    parts = parsed.path.strip("/").split("/")
    if parsed.scheme != "https" or len(parts) != 3 or parts[0] != "blob":
        raise InvalidParameter(
            f"The sourceUri '{uri}' is not a blob on this platform's blob endpoint "
            "(https://<host>/blob/<container>/<blob>).",
            target="properties.creationData.sourceUri",
        )
    query = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p)
    from urllib.parse import unquote

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
    return DiskSource(
        resource_id=uri, blob=grant.blob, disk_size_bytes=size - FOOTER, os_type=os_type
    )


#: What ``creationData.imageReference`` / ``galleryImageReference`` may name.
IMAGE_TYPES = ("Microsoft.Compute/images",)
GALLERY_TYPES = (
    "Microsoft.Compute/galleries/images/versions",
    "Microsoft.Compute/galleries/images",
)


def _source_from_image(
    store: Store, ref: Mapping[str, Any], region: str, *, gallery: bool
) -> tuple[Source, SourceDisk]:
    target = "properties.creationData." + ("galleryImageReference" if gallery else "imageReference")
    if ref.get("sharedGalleryImageId") or ref.get("communityGalleryImageId"):
        raise NotImplementedFeature(
            "Creating a disk from a shared or community gallery image is not implemented yet.",
            target=target,
        )
    rid = ref.get("id")
    if not isinstance(rid, str):
        raise InvalidParameter(
            f"The value of parameter {target.rsplit('.', 1)[1]} is invalid.", target=target
        )
    src = sources.resolve(
        store, rid, region=region, accept=GALLERY_TYPES if gallery else IMAGE_TYPES, target=target
    )
    if src.location != region:
        raise BadRequest(
            f"The image '{src.id}' is in region '{src.location}'; it can only be used in the "
            f"same region, not '{region}'.",
            target=target + ".id",
        )
    lun = ref.get("lun")
    return src, src.disk(lun, target=target + (".lun" if lun is not None else ""))


# --- create / update -------------------------------------------------------------------------


def _check_upload_size(n: Any) -> int:
    if not isinstance(n, int) or isinstance(n, bool):
        raise InvalidParameter(
            "uploadSizeBytes is required for createOption Upload.",
            target="properties.creationData.uploadSizeBytes",
        )
    if (n - FOOTER) % MIB:
        raise BadRequest(
            f"The upload size in bytes {n} - 512 bytes for the VHD footer ({n - FOOTER} in this "
            "case) must be a multiple of MiB.",
            target="properties.creationData.uploadSizeBytes",
        )
    if not MIN_UPLOAD <= n <= MAX_UPLOAD:
        raise BadRequest(
            f"The upload size in bytes {n} is outside the supported range {MIN_UPLOAD} "
            f"(20 MiB + 512) to {MAX_UPLOAD} (32 TiB + 512).",
            target="properties.creationData.uploadSizeBytes",
        )
    return n


def _empty_vhd(store: Store, blob: BlobRef, size: int) -> None:
    from azimg.disk.vhd import Footer

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


def _immutable_checks(current: Disk, *, region: str, creation: Mapping[str, Any]) -> None:
    if current.location != region:
        raise PropertyChangeNotAllowed(
            "Changing property 'location' is not allowed.", target="location"
        )
    before = {k: v for k, v in current.creation_data.items() if k != "sourceUniqueId"}
    after = dict(creation)
    if after.get("createOption", "").lower() != str(before.get("createOption", "")).lower() or {
        k: v for k, v in after.items() if k != "createOption"
    } != {k: v for k, v in before.items() if k != "createOption"}:
        raise PropertyChangeNotAllowed(
            "Changing property 'creationData' is not allowed.",
            target="properties.creationData",
        )


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    location: Any,
    properties: Mapping[str, Any],
    app_id: str,
    jobs: Jobs,
    sku: str | None = None,
    tags: Any = None,
    zones: tuple[str, ...] = (),
    kind: Kind = DISK,
) -> tuple[Disk, Operation | None]:
    """The disk as stored now, and the operation of the copy it still needs (None when it
    is ready). A copy's operation is written in the same transaction as the disk."""
    require_resource_group(store, subscription_id, resource_group)
    check_name(name, kind=kind.noun)
    region = check_location(store, location, rtype=kind.type)
    clean_tags = check_tags(tags)
    sku_name = enum_value(sku, kind.skus, target="sku.name") if sku else None
    os_type = properties.get("osType")
    if os_type is not None:
        os_type = enum_value(os_type, OS_TYPES, target="properties.osType")
    generation = properties.get("hyperVGeneration")
    if generation is not None:
        generation = enum_value(generation, GENERATIONS, target="properties.hyperVGeneration")
    echoed = {k: properties[k] for k in ECHOED if properties.get(k) is not None}
    rid = _id(kind, subscription_id, resource_group, name)
    creation = dict(properties.get("creationData") or {})
    size_gb = properties.get("diskSizeGB")

    existing = store.meta.get(rid)
    if existing is not None:
        current = from_doc(existing)
        if creation:
            _immutable_checks(current, region=region, creation=creation)
        if size_gb is not None and size_gb != current.disk_size_gb:
            current = _grow(store, current, size_gb, kind)
        updated = replace(
            current,
            tags=clean_tags if tags is not None else current.tags,
            sku=sku_name or current.sku,
            os_type=os_type or current.os_type,
            hyper_v_generation=generation or current.hyper_v_generation,
            echoed={**current.echoed, **echoed},
            system_data=system_data(app_id, current.system_data.get("createdAt")),
        )
        return _save(store, updated), None  # TODO(core): CAS in the typed-command rewrite

    if not creation.get("createOption"):
        raise InvalidParameter(
            "Required parameter 'creationData.createOption' is missing (null).",
            target="properties.creationData.createOption",
        )
    option = enum_value(
        creation["createOption"], ALL_CREATE_OPTIONS, target="properties.creationData.createOption"
    )
    creation["createOption"] = option
    if option == "Attach":
        raise InvalidParameter(
            "createOption 'Attach' is only valid for a virtual machine's disks.",
            target="properties.creationData.createOption",
        )
    if option not in kind.create_options:
        raise NotImplementedFeature(
            f"createOption '{option}' is not implemented for {kind.noun}s by azimg.",
            target="properties.creationData.createOption",
        )
    if size_gb is not None and (not isinstance(size_gb, int) or not 1 <= size_gb <= MAX_DISK_GB):
        raise InvalidParameter(
            f"The value {size_gb} of diskSizeGB is out of range; it must be 1 to {MAX_DISK_GB}.",
            target="properties.diskSizeGB",
        )

    blob = BlobRef(region=region, key=uuid.uuid4().hex)
    unique_id = str(uuid.uuid4())
    now = utc_now()
    fill: Fill | None = None
    state = "Unattached"
    provisioning = "Succeeded"
    source: Source | None = None
    source_disk: SourceDisk | None = None

    if option == "Empty":
        if size_gb is None:
            raise InvalidParameter(
                "Required parameter 'diskSizeGB' is missing (null).",
                target="properties.diskSizeGB",
            )
        size = size_gb * GIB
    elif option == "Upload":
        size = _check_upload_size(creation.get("uploadSizeBytes")) - FOOTER
        state = "ReadyToUpload"
    else:
        if option == "Copy":
            if not creation.get("sourceResourceId"):
                raise InvalidParameter(
                    "Required parameter 'creationData.sourceResourceId' is missing (null).",
                    target="properties.creationData.sourceResourceId",
                )
            source = sources.resolve(
                store,
                creation["sourceResourceId"],
                accept=(DISK.type, SNAPSHOT.type),
                target="properties.creationData.sourceResourceId",
            )
            source_disk = source.disk()
            if source.location != region:
                raise BadRequest(
                    f"The source {source.type.split('/')[-1][:-1]} "
                    f"'{ResourceId.parse(source.id).name}' is in region '{source.location}'; a "
                    f"Copy must be in the same region ('{region}'). Use CopyStart for a copy "
                    "across regions.",
                    target="properties.creationData.sourceResourceId",
                )
            creation["sourceUniqueId"] = source.unique_id
        elif option == "Import":
            if not creation.get("sourceUri"):
                raise InvalidParameter(
                    "Required parameter 'creationData.sourceUri' is missing (null).",
                    target="properties.creationData.sourceUri",
                )
            imported = source_from_sas_url(store, creation["sourceUri"])
            source_disk = SourceDisk(
                lun=None, blob=imported.blob, size_bytes=imported.disk_size_bytes
            )
            source = Source(
                id=imported.resource_id,
                type="",
                location=region,
                disks=(source_disk,),
                os_type=imported.os_type,
            )
        else:  # FromImage
            if creation.get("imageReference"):
                source, source_disk = _source_from_image(
                    store, creation["imageReference"], region, gallery=False
                )
            elif creation.get("galleryImageReference"):
                source, source_disk = _source_from_image(
                    store, creation["galleryImageReference"], region, gallery=True
                )
            else:
                raise InvalidParameter(
                    "Required parameter 'creationData.imageReference' is missing (null).",
                    target="properties.creationData.imageReference",
                )
        assert source_disk is not None
        size = source_disk.size_bytes
        if size_gb is not None and size_gb * GIB != size and size_gb != math.ceil(size / GIB):
            raise NotImplementedFeature(
                f"Resizing a {kind.noun} while copying it is not implemented by azimg; "
                "omit diskSizeGB.",
                target="properties.diskSizeGB",
            )
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
        name=name,
        type=kind.type,
        location=region,
        sku=sku_name or kind.default_sku,
        creation_data=creation,
        disk_size_bytes=size,
        disk_state=state,
        provisioning_state=provisioning,
        unique_id=unique_id,
        time_created=now,
        blob=blob,
        system_data=system_data(app_id, now=now),
        tags=clean_tags,
        zones=zones,
        os_type=os_type,
        hyper_v_generation=generation,
        echoed=echoed,
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


def _grow(store: Store, d: Disk, size_gb: Any, kind: Kind) -> Disk:
    """Resize to ``size_gb``: grow only, only while no VM runs on it and no SAS is out. The
    VHD footer moves to the new end (same unique id); the old footer's page becomes zeros."""
    from azimg.disk.vhd import Footer

    if not isinstance(size_gb, int) or not 1 <= size_gb <= MAX_DISK_GB:
        raise InvalidParameter(
            f"The value {size_gb} of diskSizeGB is out of range; it must be 1 to {MAX_DISK_GB}.",
            target="properties.diskSizeGB",
        )
    if kind is not DISK:
        raise OperationNotAllowed(
            "The size of a snapshot cannot be changed.", target="properties.diskSizeGB"
        )
    new_size = size_gb * GIB
    if new_size < d.disk_size_bytes:
        raise BadRequest(
            f"Disk '{d.name}' cannot be shrunk from {d.disk_size_gb} GB to {size_gb} GB; "
            "only increasing the size is supported.",
            target="properties.diskSizeGB",
        )
    if d.disk_state not in ("Unattached", "Reserved") or d.provisioning_state != "Succeeded":
        raise OperationNotAllowed(
            f"Disk '{d.name}' can be resized only when it is unattached or its VM is "
            f"deallocated; it is {d.disk_state}.",
            target="properties.diskSizeGB",
        )
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


def update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    properties: Mapping[str, Any],
    app_id: str,
    sku: str | None = None,
    tags: Any = None,
    kind: Kind = DISK,
) -> Disk:
    """PATCH: tags, sku, osType, hyperVGeneration and the echoed knobs."""
    current = get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name, kind=kind
    )
    if "diskSizeGB" in properties and properties["diskSizeGB"] != current.disk_size_gb:
        current = _grow(store, current, properties["diskSizeGB"], kind)
    os_type = properties.get("osType")
    generation = properties.get("hyperVGeneration")
    updated = replace(
        current,
        tags=check_tags(tags) if tags is not None else current.tags,
        sku=enum_value(sku, kind.skus, target="sku.name") if sku else current.sku,
        os_type=enum_value(os_type, OS_TYPES, target="properties.osType")
        if os_type
        else current.os_type,
        hyper_v_generation=enum_value(generation, GENERATIONS, target="properties.hyperVGeneration")
        if generation
        else current.hyper_v_generation,
        echoed={**current.echoed, **{k: properties[k] for k in ECHOED if k in properties}},
        system_data=system_data(app_id, current.system_data.get("createdAt")),
    )
    return _save(store, updated)


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


def run_revoke(store: Store, op: Operation) -> None:
    """endGetAccess as a job: the footer check reads the blob, and Azure reports InvalidVhd
    through the operation."""
    parts = ResourceId.parse(op.resource_id)
    kind = DISK if parts.type.lower() == DISK.type.lower() else SNAPSHOT
    where = {"subscription_id": parts.subscription, "resource_group": parts.resource_group}
    upload_ends = get(store, **where, name=parts.name, kind=kind).disk_state == "ActiveUpload"
    d = revoke_access(store, **where, name=parts.name, kind=kind)
    if upload_ends:  # the platform checks every image it is given (image_checks.py)
        image_checks.record(store, d.id)
    return None


#: The job kinds of disks and snapshots (declared for both in ``platform/registry.py``).
JOBS: Mapping[str, JobSpec] = {
    JOB_FILL: JobSpec(run=run_fill, on_fail=fail_fill, resumable=True),
    JOB_REVOKE: JobSpec(run=run_revoke, resumable=True),
}
JOB_GRANT = "disks.grant"


def begin_revoke_access(
    store: Store,
    *,
    jobs: Jobs,
    subscription_id: str,
    resource_group: str,
    name: str,
    kind: Kind = DISK,
) -> Operation:
    """endGetAccess as an operation (the footer check reads the whole upload's end)."""
    d = get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name, kind=kind
    )
    return jobs.submit(JOB_REVOKE, action="post", resource_id=d.id, location=d.location)


# --- access ----------------------------------------------------------------------------------


def grant_access(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    access: Any,
    duration_seconds: Any,
    blob_base_url: str,
    jobs: Jobs,
    kind: Kind = DISK,
) -> Operation:
    """beginGetAccess: a SAS URL for reading (any idle disk) or writing (an Upload disk),
    as a finished operation whose output is the ``accessSAS``."""
    d = get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name, kind=kind
    )
    level = enum_value(access, ("None", "Read", "Write"), target="access")
    if level == "None":
        raise InvalidParameter("The access level 'None' cannot be granted.", target="access")
    sas.check_duration(duration_seconds)
    if d.provisioning_state != "Succeeded":
        raise OperationNotAllowed(
            f"The {kind.noun} '{d.name}' is {d.provisioning_state}; access cannot be granted."
        )
    if level == "Write":
        if d.disk_state not in ("ReadyToUpload", "ActiveUpload"):
            raise OperationNotAllowed(
                f"Write access can only be granted to a {kind.noun} created for upload "
                f"(diskState ReadyToUpload); '{d.name}' is {d.disk_state}.",
                target="access",
            )
        new_state, perms = "ActiveUpload", "rw"
    else:
        if d.disk_state in ("ReadyToUpload", "ActiveUpload"):
            raise OperationNotAllowed(
                f"Read access cannot be granted to '{d.name}' while it is {d.disk_state}; "
                "upload it and call endGetAccess first.",
                target="access",
            )
        if d.disk_state in ("Attached", "Frozen", "ActiveSASFrozen"):
            raise OperationNotAllowed(
                f"The {kind.noun} '{d.name}' is attached to a running VM ({d.managed_by}); "
                "stop (deallocate) the VM first."
            )
        new_state, perms = ("ActiveSAS" if d.disk_state != "Reserved" else "Reserved"), "r"
    sas.revoke_grant(store, d.grant_id)
    grant = sas.create_grant(
        store,
        resource_id=d.id,
        blob=d.blob,
        permissions=perms,
        duration_seconds=duration_seconds,
    )
    try:
        _change_from(store, d, disk_state=new_state, grant_id=grant.id)
    except Conflict:
        sas.revoke_grant(store, grant.id)
        raise
    return jobs.record_done(
        JOB_GRANT,
        action="post",
        resource_id=d.id,
        location=d.location,
        output={"accessSAS": sas.url(store, grant, blob_base_url=blob_base_url)},
    )


def _vhd_problem(store: Store, d: Disk) -> str | None:
    from azimg.disk.vhd import FOOTER_COOKIE, Footer, azure_footer_problems

    size = store.blobs.size(d.blob)
    raw = store.blobs.read(d.blob, size - FOOTER, FOOTER)
    if raw[:8] != FOOTER_COOKIE:
        return (
            f"The specified cookie value in VHD footer indicates that disk '{d.name}' with blob "
            f"'{d.blob.key}' is not a supported VHD. Disk is expected to have cookie value "
            "'conectix'."
        )
    footer = Footer.unpack(raw, at=size - FOOTER, verify=False)
    problems = azure_footer_problems(footer, size)
    if problems:
        return f"The VHD uploaded to disk '{d.name}' is not a supported VHD: " + "; ".join(problems)
    return None


def revoke_access(
    store: Store, *, subscription_id: str, resource_group: str, name: str, kind: Kind = DISK
) -> Disk:
    """endGetAccess: end the SAS; an upload ends only with a VHD Azure would accept."""
    d = get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name, kind=kind
    )
    # Writes admitted before this point land before the footer check; later ones are refused.
    with sas.WRITES.closed(d.id):
        if d.disk_state == "ActiveUpload":
            problem = _vhd_problem(store, d)
            if problem:
                raise InvalidVhd(problem)
            new_state = "Unattached"
        elif d.disk_state == "ActiveSAS":
            new_state = "Unattached"
        else:
            new_state = d.disk_state
        sas.revoke_grant(store, d.grant_id)
        return _change_from(store, d, disk_state=new_state, grant_id=None)


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
    from azimg.platform.errors import BlobWriteNotAllowed

    doc = store.meta.get(disk_id)
    if doc is None:
        raise BlobWriteNotAllowed("The disk behind this SAS no longer exists.")
    state = doc.body.get("disk_state")
    if state != "ActiveUpload":
        raise BlobWriteNotAllowed(
            f"The disk is {state}; pages can be written only while it is ActiveUpload."
        )
