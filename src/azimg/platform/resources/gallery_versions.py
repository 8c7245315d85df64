"""Gallery image versions (``Microsoft.Compute/galleries/images/versions``): rules and operations.

The rules are pure functions over plain data (table-tested in tests/unit/test_gallery_*):
version names, target regions, source/definition compatibility, disk-image shape, ``latest``
and deletion. Replication state lives in ``replication.py``.

Decisions (reference/arm-api.md §7.4, §7.5):
- ``latest`` is the highest Major.Minor.Patch among versions that are provisioned
  (Succeeded, or Updating while a new region is added), not excluded (version-wide or in the
  asked region) and, when a region is asked, with a Completed replica there. A Failed version
  is never ``latest``. ``endOfLifeDate`` is informational for Azure and does not remove a
  version from ``latest``; it only matters for ``blockDeletionBeforeEndOfLife``.
- ``replicationMode: Shallow`` is accepted for the source region only and still makes a copy
  (a reflink where the filesystem allows), so deleting the source never breaks the version.
- The replication of one PUT/PATCH is one durable operation whose replicas copy on their own
  threads; it occupies one platform job worker until every replica is done.
- Sources: a managed image, another gallery version (``storageProfile.source.id``) or a disk /
  snapshot (``osDiskImage.source.id``). Disks and snapshots carry no OS state: the definition's
  is taken. A missing ``hyperVGeneration`` on a source means V1, as on Azure.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from azimg.platform.errors import (
    BadRequest,
    Conflict,
    DeleteGalleryImageVersionBlockedBeforeEndOfLife,
    InvalidParameter,
    NotImplementedFeature,
    OperationNotAllowed,
    PlatformError,
    PreconditionFailed,
    PropertyChangeNotAllowed,
    ReplicationFailed,
    ResourceNotFound,
    UnsupportedProperty,
)
from azimg.platform.jobs import JobSpec
from azimg.platform.resources import galleries, gallery_images, replication
from azimg.platform.resources.common import (
    check_location,
    check_tags,
    require_document,
    resource_id,
    system_data,
)
from azimg.platform.settings import normalise_location
from azimg.platform.store import BlobRef, Document, Operation, Store

log = logging.getLogger(__name__)

_INT32_MAX = 2**31 - 1
_VERSION_NAME_MESSAGE = (
    "The image version name is invalid. The image version name should follow "
    "Major(int).Minor(int).Patch(int) format, for e.g: 1.0.0, 2018.12.1 etc."
)

GALLERY_STORAGE_ACCOUNT_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS")
STORAGE_ACCOUNT_STRATEGIES = ("PreferStandard_ZRS", "DefaultStandard_LRS")
REPLICATION_MODES = ("Full", "Shallow")
HOST_CACHING = ("None", "ReadOnly", "ReadWrite")
MAX_REPLICAS_PER_REGION = 100


# --- names ----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class VersionNumber:
    """``Major.Minor.Patch``, each a non-negative 32-bit integer; orders numerically."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, name: str) -> VersionNumber:
        parts = name.split(".")
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
            raise InvalidParameter(_VERSION_NAME_MESSAGE, target="galleryImageVersionName")
        numbers = [int(p) for p in parts]
        if any(n > _INT32_MAX for n in numbers):
            raise InvalidParameter(_VERSION_NAME_MESSAGE, target="galleryImageVersionName")
        return cls(*numbers)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


# --- target regions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetRegion:
    name: str  # as the client spelled it
    regional_replica_count: int
    storage_account_type: str
    exclude_from_latest: bool = False

    @property
    def key(self) -> str:
        return normalise_location(self.name)


def _enum(value: Any, allowed: Sequence[str], target: str) -> str:
    """Enum values compare case-insensitively and are stored in canonical casing."""
    if isinstance(value, str):
        for a in allowed:
            if a.lower() == value.lower():
                return a
    raise InvalidParameter(
        f"The value '{value}' of parameter '{target}' is not allowed. "
        f"Allowed values are: {', '.join(allowed)}.",
        target=target,
    )


def _replica_count(value: Any, target: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"The value of parameter {target} is invalid.", target=target)
    if not 1 <= value <= MAX_REPLICAS_PER_REGION:
        raise InvalidParameter(
            f"The value {value} of parameter {target} is out of range. "
            f"The value must be between 1 and {MAX_REPLICAS_PER_REGION}, inclusive.",
            target=target,
        )
    return value


def resolve_target_regions(
    *,
    location: str,
    target_regions: Sequence[Mapping[str, Any]] | None,
    replica_count: int | None,
    storage_account_type: str | None,
    known_regions: Sequence[str],
) -> tuple[TargetRegion, ...]:
    """Validate ``publishingProfile.targetRegions`` and fill Azure's defaults.

    No list means the source region only. Each region needs a name the platform knows, no
    region twice, and the version's own location must be among them. A region's replica
    count defaults to ``publishingProfile.replicaCount`` (default 1) and its storage type to
    the profile's (default Standard_LRS).
    """
    default_count = (
        1
        if replica_count is None
        else _replica_count(replica_count, "publishingProfile.replicaCount")
    )
    default_type = (
        "Standard_LRS"
        if storage_account_type is None
        else _enum(
            storage_account_type,
            GALLERY_STORAGE_ACCOUNT_TYPES,
            "publishingProfile.storageAccountType",
        )
    )
    raw = list(target_regions) if target_regions else [{"name": location}]
    out: list[TargetRegion] = []
    for i, entry in enumerate(raw):
        target = f"publishingProfile.targetRegions[{i}]"
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameter(
                f"Required parameter '{target}.name' is missing (null).", target=f"{target}.name"
            )
        if normalise_location(name) not in known_regions:
            raise InvalidParameter(
                f"The provided location '{name}' is not available for resource type "
                f"'Microsoft.Compute/galleries'. List of available regions for the resource "
                f"type is '{','.join(known_regions)}'.",
                target=f"{target}.name",
            )
        count = entry.get("regionalReplicaCount")
        sat = entry.get("storageAccountType")
        if entry.get("encryption") is not None:
            raise UnsupportedProperty(
                "Disk encryption sets are not supported by azimg.", target=f"{target}.encryption"
            )
        out.append(
            TargetRegion(
                name=name,
                regional_replica_count=(
                    default_count
                    if count is None
                    else _replica_count(count, f"{target}.regionalReplicaCount")
                ),
                storage_account_type=(
                    default_type
                    if sat is None
                    else _enum(sat, GALLERY_STORAGE_ACCOUNT_TYPES, f"{target}.storageAccountType")
                ),
                exclude_from_latest=bool(entry.get("excludeFromLatest") or False),
            )
        )
    keys = [t.key for t in out]
    if len(set(keys)) != len(keys):
        raise InvalidParameter(
            "Duplicate regions are not allowed in target publishing regions.",
            target="publishingProfile.targetRegions",
        )
    if normalise_location(location) not in keys:
        raise InvalidParameter(
            f"Gallery image version publishing profile regions '{', '.join(t.name for t in out)}' "
            f"must contain the location of image version '{location}'.",
            target="publishingProfile.targetRegions",
        )
    return tuple(out)


# --- sources ----------------------------------------------------------------------------------

SOURCE_TYPES_TOP = ("Microsoft.Compute/images", "Microsoft.Compute/galleries/images/versions")
SOURCE_TYPES_DISK = ("Microsoft.Compute/disks", "Microsoft.Compute/snapshots")
VM_TYPE = "Microsoft.Compute/virtualMachines"

_ONE_SOURCE_MESSAGE = (
    "The gallery artifact version source can only be specified either directly under "
    "storageProfile or within individual OS or data disks. One and only one source type "
    "(user image, snapshot, disk, virtual machine) can be provided."
)


_ID_TYPE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/(?P<type>.+)$", re.IGNORECASE
)


def resource_type_of(resource_id: str) -> str | None:
    """``Microsoft.Compute/galleries/images/versions`` for a version id, etc. (canonical case)."""
    m = _ID_TYPE.match(resource_id)
    if not m:
        return None
    segments = m.group("type").split("/")
    if len(segments) < 3 or len(segments) % 2 == 0:
        return None
    namespace = segments[0]
    types = segments[1::2]
    canonical = {
        t.lower(): t
        for t in (
            "Microsoft.Compute/images",
            "Microsoft.Compute/disks",
            "Microsoft.Compute/snapshots",
            "Microsoft.Compute/virtualMachines",
            "Microsoft.Compute/galleries",
            "Microsoft.Compute/galleries/images",
            "Microsoft.Compute/galleries/images/versions",
        )
    }
    joined = "/".join([namespace, *types])
    return canonical.get(joined.lower(), joined)


@dataclass(frozen=True)
class DiskImageSpec:
    """One disk image as asked: ``lun`` None for the OS disk."""

    lun: int | None
    source_id: str | None
    host_caching: str = "None"


def check_storage_profile(
    *,
    source_id: str | None,
    os_disk_image: DiskImageSpec | None,
    data_disk_images: Sequence[DiskImageSpec],
) -> None:
    """Exactly one source style; disk-level ids are disks or snapshots; LUNs and ids unique."""
    has_top = bool(source_id)
    disk_ids = [
        d.source_id for d in ([os_disk_image] if os_disk_image else []) + list(data_disk_images)
    ]
    has_disk = any(disk_ids)
    if has_top == has_disk:
        raise InvalidParameter(_ONE_SOURCE_MESSAGE, target="storageProfile")
    if has_top:
        assert source_id is not None
        kind = resource_type_of(source_id)
        if kind is None:
            raise InvalidParameter(
                f"Property id '{source_id}' at path 'properties.storageProfile.source.id' is "
                "invalid. Expect fully qualified resource Id that start with "
                "'/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.",
                target="storageProfile.source.id",
            )
        if kind not in (*SOURCE_TYPES_TOP, VM_TYPE):
            raise InvalidParameter(
                f"The source id: {source_id} must either be a managed image, virtual machine "
                "or another gallery image version.",
                target="storageProfile.source.id",
            )
        return
    if os_disk_image is None or not os_disk_image.source_id:
        raise InvalidParameter(
            "Required parameter 'storageProfile.osDiskImage.source.id' is missing (null).",
            target="storageProfile.osDiskImage",
        )
    luns = [d.lun for d in data_disk_images]
    if any(lun is None for lun in luns):
        raise InvalidParameter(
            "Required parameter 'dataDiskImages.lun' is missing (null).",
            target="storageProfile.dataDiskImages",
        )
    if len(set(luns)) != len(luns):
        raise InvalidParameter(
            "Duplicated lun numbers have been detected in the input data disks. Lun number "
            "must be unique for each data disk.",
            target="storageProfile.dataDiskImages",
        )
    present = [i for i in disk_ids if i]
    for image in [os_disk_image, *data_disk_images]:
        if image.source_id and resource_type_of(image.source_id) not in SOURCE_TYPES_DISK:
            raise InvalidParameter(
                f"The source id: {image.source_id} must be a managed disk or snapshot.",
                target="storageProfile.osDiskImage.source.id"
                if image.lun is None
                else "storageProfile.dataDiskImages.source.id",
            )
    lowered = [i.lower() for i in present]
    if len(set(lowered)) != len(lowered):
        if any(
            d.source_id and d.source_id.lower() == os_disk_image.source_id.lower()
            for d in data_disk_images
        ):
            raise InvalidParameter(
                "OSDiskImage and DataDiskImage cannot point to same blob "
                f"{os_disk_image.source_id}.",
                target="storageProfile",
            )
        raise InvalidParameter(
            "Duplicated source ids are found in the input disks. Source id should be unique "
            "for each disk.",
            target="storageProfile",
        )


@dataclass(frozen=True)
class SourceFacts:
    """What a source tells about the OS it holds (None = the source does not say)."""

    id: str
    location: str
    os_type: str | None
    os_state: str | None
    hyper_v_generation: str | None


@dataclass(frozen=True)
class DefinitionFacts:
    os_type: str
    os_state: str
    hyper_v_generation: str


def check_source_location(source: SourceFacts, version_location: str) -> None:
    """Sources must live in the version's region (its ``location``)."""
    if normalise_location(source.location) != normalise_location(version_location):
        raise InvalidParameter(
            f"Source {source.id} is not found. Please check source exists, and is in the same "
            "region as gallery image version being created.",
            target="storageProfile",
        )


def check_source_matches_definition(source: SourceFacts, definition: DefinitionFacts) -> None:
    """OS state, Hyper-V generation and OS type of the source must be the definition's."""
    if source.os_state is not None and source.os_state.lower() != definition.os_state.lower():
        raise BadRequest(
            f"The resource with id '{source.id}' has a different OS state ['{source.os_state}'] "
            f"than the parent gallery image OS state ['{definition.os_state}'].",
            target="storageProfile",
        )
    generation = source.hyper_v_generation or "V1"
    if generation.lower() != definition.hyper_v_generation.lower():
        raise BadRequest(
            f"The resource with id '{source.id}' has a different Hypervisor generation "
            f"['{generation}'] than the parent gallery image Hypervisor generation "
            f"['{definition.hyper_v_generation}'].",
            target="storageProfile",
        )
    if source.os_type is not None and source.os_type.lower() != definition.os_type.lower():
        raise BadRequest(
            f"The resource with id '{source.id}' has a different OS type ['{source.os_type}'] "
            f"than the parent gallery image OS type generation ['{definition.os_type}'].",
            target="storageProfile",
        )


# --- latest -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatestCandidate:
    """What ``latest`` looks at, per version."""

    name: str
    provisioned: bool  # provisioningState Succeeded, or Updating (served where replicated)
    exclude_from_latest: bool
    regions: Mapping[str, tuple[bool, bool]]  # region key -> (excluded there, replica ready)


def select_latest(
    candidates: Iterable[LatestCandidate], *, definition_id: str, region: str | None = None
) -> LatestCandidate:
    """The highest version that is provisioned and not excluded (in ``region`` if given)."""
    eligible: list[tuple[VersionNumber, LatestCandidate]] = []
    any_version = False
    for c in candidates:
        any_version = True
        if not c.provisioned or c.exclude_from_latest:
            continue
        if region is not None:
            where = c.regions.get(normalise_location(region))
            if where is None or where[0] or not where[1]:
                continue
        eligible.append((VersionNumber.parse(c.name), c))
    if not eligible:
        if region is not None and any_version:
            raise InvalidParameter(
                f"The gallery image {definition_id} is not available in {region} region. Please "
                "contact image owner to replicate to this region, or change your requested "
                "region.",
                target="imageReference",
            )
        raise InvalidParameter(
            f'There is no latest image version exists for "{definition_id}"',
            target="imageReference",
        )
    return max(eligible, key=lambda pair: pair[0])[1]


# --- deletion ---------------------------------------------------------------------------------


def check_deletable(
    *, block_before_end_of_life: bool, end_of_life: datetime | None, now: datetime
) -> None:
    """``safetyProfile.blockDeletionBeforeEndOfLife`` holds a version until its EOL date."""
    if block_before_end_of_life and (end_of_life is None or end_of_life > now):
        raise DeleteGalleryImageVersionBlockedBeforeEndOfLife(
            "Deletion of Gallery image version is not allowed because the image is enabled for "
            "blockDeletionBeforeEndOfLife and its endOfLifeDate has not reached yet."
        )


# --- the resource -----------------------------------------------------------------------------

VERSION_TYPE = "Microsoft.Compute/galleries/images/versions"
JOB_REPLICATE = "gallery_versions.replicate"
_GIB = 1024**3


@dataclass(frozen=True)
class SourceDisk:
    """One disk image of a version: the source's bytes, frozen when the version was made."""

    lun: int | None
    blob: BlobRef
    size: int
    host_caching: str = "None"
    source_id: str | None = None  # the disk or snapshot id, for osDiskImage/dataDiskImages

    @property
    def size_in_gb(self) -> int:
        return -(-self.size // _GIB)

    def to_json(self) -> dict[str, Any]:
        return {
            "lun": self.lun,
            "blob": self.blob.to_json(),
            "size": self.size,
            "hostCaching": self.host_caching,
            "sourceId": self.source_id,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SourceDisk:
        return cls(
            lun=raw["lun"],
            blob=BlobRef.from_json(raw["blob"]),
            size=int(raw["size"]),
            host_caching=raw.get("hostCaching", "None"),
            source_id=raw.get("sourceId"),
        )


@dataclass(frozen=True)
class GalleryImageVersion:
    id: str
    name: str
    location: str
    target_regions: tuple[TargetRegion, ...]
    replica_count: int
    storage_account_type: str
    replication_mode: str
    exclude_from_latest: bool
    end_of_life_date: str | None
    published_date: str
    source_id: str | None  # storageProfile.source.id (image or version)
    disks: tuple[SourceDisk, ...]
    replicas: tuple[replication.Replica, ...]
    allow_deletion_of_replicated_locations: bool = True
    block_deletion_before_end_of_life: bool = False
    updating: bool = False
    deleting: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    system_data: Mapping[str, str] = field(default_factory=dict)

    @property
    def status(self) -> tuple[replication.RegionalReplicationStatus, ...]:
        return replication.summary([t.key for t in self.target_regions], self.replicas)

    @property
    def aggregated_state(self) -> replication.AggregatedReplicationState:
        return replication.aggregate(self.status)

    @property
    def provisioning_state(self) -> str:
        if self.deleting:
            return "Deleting"
        return replication.provisioning_state(self.aggregated_state, updating=self.updating)

    @property
    def os_disk(self) -> SourceDisk:
        return next(d for d in self.disks if d.lun is None)

    @property
    def data_disks(self) -> tuple[SourceDisk, ...]:
        return tuple(d for d in self.disks if d.lun is not None)


def _region_to_json(t: TargetRegion) -> dict[str, Any]:
    return {
        "name": t.name,
        "regionalReplicaCount": t.regional_replica_count,
        "storageAccountType": t.storage_account_type,
        "excludeFromLatest": t.exclude_from_latest,
    }


def _from_doc(doc: Document) -> GalleryImageVersion:
    b = doc.body
    return GalleryImageVersion(
        id=doc.id,
        name=b["name"],
        location=b["location"],
        target_regions=tuple(
            TargetRegion(
                name=t["name"],
                regional_replica_count=t["regionalReplicaCount"],
                storage_account_type=t["storageAccountType"],
                exclude_from_latest=t["excludeFromLatest"],
            )
            for t in b["targetRegions"]
        ),
        replica_count=b["replicaCount"],
        storage_account_type=b["storageAccountType"],
        replication_mode=b["replicationMode"],
        exclude_from_latest=b["excludeFromLatest"],
        end_of_life_date=b.get("endOfLifeDate"),
        published_date=b["publishedDate"],
        source_id=b.get("sourceId"),
        disks=tuple(SourceDisk.from_json(d) for d in b["disks"]),
        replicas=tuple(replication.Replica.from_json(r) for r in b["replicas"]),
        allow_deletion_of_replicated_locations=b.get("allowDeletionOfReplicatedLocations", True),
        block_deletion_before_end_of_life=b.get("blockDeletionBeforeEndOfLife", False),
        updating=b.get("updating", False),
        deleting=b.get("deleting", False),
        tags=b.get("tags", {}),
        system_data=b.get("systemData", {}),
    )


def _to_doc(v: GalleryImageVersion) -> Document:
    blobs = tuple(d.target for r in v.replicas for d in r.disks)
    return Document(
        id=v.id,
        type=VERSION_TYPE,
        location=v.location,
        blobs=blobs,
        body={
            "name": v.name,
            "location": v.location,
            "targetRegions": [_region_to_json(t) for t in v.target_regions],
            "replicaCount": v.replica_count,
            "storageAccountType": v.storage_account_type,
            "replicationMode": v.replication_mode,
            "excludeFromLatest": v.exclude_from_latest,
            "endOfLifeDate": v.end_of_life_date,
            "publishedDate": v.published_date,
            "sourceId": v.source_id,
            "disks": [d.to_json() for d in v.disks],
            "replicas": [r.to_json() for r in v.replicas],
            "allowDeletionOfReplicatedLocations": v.allow_deletion_of_replicated_locations,
            "blockDeletionBeforeEndOfLife": v.block_deletion_before_end_of_life,
            "updating": v.updating,
            "deleting": v.deleting,
            "tags": dict(v.tags),
            "systemData": dict(v.system_data),
        },
    )


def _save(store: Store, v: GalleryImageVersion) -> GalleryImageVersion:
    store.meta.put(_to_doc(v))
    return v


def version_id(
    subscription_id: str, resource_group: str, gallery: str, image: str, name: str
) -> str:
    return resource_id(
        subscription_id,
        resource_group,
        "Microsoft.Compute/galleries",
        gallery,
        "images",
        image,
        "versions",
        name,
    )


def latest_candidates(versions: Iterable[GalleryImageVersion]) -> list[LatestCandidate]:
    """What ``select_latest`` needs to know about each stored version."""
    out = []
    for v in versions:
        status = {s.region: s for s in v.status}
        regions = {
            t.key: (
                t.exclude_from_latest,
                status[t.key].state is replication.ReplicationState.COMPLETED,
            )
            for t in v.target_regions
        }
        out.append(
            LatestCandidate(
                name=v.name,
                # a version replicating to a newly added region is still served where it is
                provisioned=v.provisioning_state in ("Succeeded", "Updating"),
                exclude_from_latest=v.exclude_from_latest,
                regions=regions,
            )
        )
    return out


def _definition(
    store: Store, subscription_id: str, resource_group: str, gallery: str, image: str
) -> gallery_images.GalleryImage:
    rid = gallery_images.image_id(subscription_id, resource_group, gallery, image)
    galleries.require_parent(store, rid, gallery_images.IMAGE_TYPE, f"{gallery}/{image}")
    return gallery_images.get_by_id(store, rid)


def list_by_image(
    store: Store, *, subscription_id: str, resource_group: str, gallery: str, image: str
) -> list[GalleryImageVersion]:
    parent = _definition(store, subscription_id, resource_group, gallery, image)
    return [_from_doc(d) for d in store.meta.list(type=VERSION_TYPE, parent=parent.id)]


def latest(store: Store, definition_id: str, *, region: str | None = None) -> GalleryImageVersion:
    """The version ``latest`` means for ``definition_id`` (in ``region``, when given)."""
    definition = gallery_images.get_by_id(store, definition_id)
    versions = [_from_doc(d) for d in store.meta.list(type=VERSION_TYPE, parent=definition.id)]
    chosen = select_latest(latest_candidates(versions), definition_id=definition.id, region=region)
    return next(v for v in versions if v.name == chosen.name)


def get(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
) -> GalleryImageVersion:
    """One version; the name ``latest`` resolves to the highest eligible version."""
    if name.lower() == "latest":
        definition = gallery_images.image_id(subscription_id, resource_group, gallery, image)
        return latest(store, definition)
    rid = version_id(subscription_id, resource_group, gallery, image, name)
    return _from_doc(require_document(store, rid, VERSION_TYPE))


def get_by_id(store: Store, rid: str) -> GalleryImageVersion:
    """A version by id; ``…/versions/latest`` and a definition id both mean ``latest``."""
    kind = resource_type_of(rid)
    if kind == gallery_images.IMAGE_TYPE:
        return latest(store, rid)
    if kind == VERSION_TYPE and rid.rstrip("/").rsplit("/", 1)[1].lower() == "latest":
        return latest(store, rid.rstrip("/").rsplit("/", 2)[0])
    return _from_doc(require_document(store, rid, VERSION_TYPE))


@dataclass(frozen=True)
class Deployable:
    """What a disk or VM made from a gallery image needs: the bytes in its region."""

    version_id: str
    os_type: str
    os_state: str
    hyper_v_generation: str
    os_disk: BlobRef
    os_disk_size: int
    data_disks: tuple[tuple[int, BlobRef, int], ...]  # (lun, blob, size)


def resolve_for_deployment(store: Store, reference_id: str, region: str) -> Deployable:
    """``galleryImageReference.id`` / ``imageReference.id`` (version, ``latest`` or definition)
    → the Completed replica's blobs in ``region``; Azure's errors when there is none."""
    region_key = normalise_location(region)
    kind = resource_type_of(reference_id)
    if kind == gallery_images.IMAGE_TYPE or reference_id.rstrip("/").lower().endswith(
        "/versions/latest"
    ):
        definition_id = (
            reference_id
            if kind == gallery_images.IMAGE_TYPE
            else reference_id.rstrip("/").rsplit("/", 2)[0]
        )
        version = latest(store, definition_id, region=region_key)
    else:
        version = get_by_id(store, reference_id)
    definition = gallery_images.get_by_id(store, version.id.rsplit("/", 2)[0])
    replica = replication.serving_replica(version.replicas, region_key)
    if replica is None or version.provisioning_state == "Deleting":
        raise InvalidParameter(
            f"The gallery image {version.id} is not available in {region} region. Please "
            "contact image owner to replicate to this region, or change your requested region.",
            target="imageReference",
        )
    os_copy = next(d for d in replica.disks if d.lun is None)
    return Deployable(
        version_id=version.id,
        os_type=definition.os_type,
        os_state=definition.os_state,
        hyper_v_generation=definition.hyper_v_generation,
        os_disk=os_copy.target,
        os_disk_size=os_copy.size,
        data_disks=tuple((d.lun, d.target, d.size) for d in replica.disks if d.lun is not None),
    )


# --- sources: what a disk, snapshot, managed image or version holds ----------------------------


@dataclass(frozen=True)
class ResolvedSource:
    facts: SourceFacts
    disks: tuple[SourceDisk, ...]


def _not_found_source(source_id: str) -> InvalidParameter:
    return InvalidParameter(
        f"Source was not found: {source_id}. Please make sure the source exists.",
        target="storageProfile",
    )


def _disk_like(store: Store, source_id: str, lun: int | None, caching: str) -> ResolvedSource:
    """A managed disk or snapshot: its one blob, OS type and generation (no OS state)."""
    from azimg.platform.resources import disks

    try:
        source, disk = disks.source_from_resource(store, source_id)
    except ResourceNotFound:
        raise _not_found_source(source_id) from None
    return ResolvedSource(
        facts=SourceFacts(
            id=disk.id,
            location=disk.location,
            os_type=source.os_type,
            os_state=None,
            hyper_v_generation=source.hyper_v_generation,
        ),
        disks=(
            SourceDisk(
                lun=lun,
                blob=source.blob,
                size=store.blobs.size(source.blob),
                host_caching=caching,
                source_id=disk.id,
            ),
        ),
    )


def _managed_image(store: Store, source_id: str) -> ResolvedSource:
    """A managed image (OS disk only in azimg): its bytes and its OS state and generation."""
    from azimg.platform.resources import images

    try:
        image = images.get_by_id(store, source_id)
    except ResourceNotFound:
        raise _not_found_source(source_id) from None
    if image.provisioning_state != "Succeeded":
        raise OperationNotAllowed(
            f"The image '{image.name}' is {image.provisioning_state}; it cannot be a source yet."
        )
    return ResolvedSource(
        facts=SourceFacts(
            id=image.id,
            location=image.location,
            os_type=image.os_type,
            os_state=image.os_state,
            hyper_v_generation=image.hyper_v_generation,
        ),
        disks=(
            SourceDisk(
                lun=None,
                blob=image.os_disk_blob,
                size=store.blobs.size(image.os_disk_blob),
                host_caching=image.caching or "None",
            ),
        ),
    )


def _virtual_machine(store: Store, source_id: str, location: str) -> ResolvedSource:
    """A VM's OS disk, through the VM module's ``image_source`` hook (the one managed images
    use); generalized or specialized as the VM is."""
    try:
        from azimg.platform.resources import virtual_machines
    except ImportError:
        virtual_machines = None  # type: ignore[assignment]
    resolve = getattr(virtual_machines, "image_source", None)
    if resolve is None:
        raise NotImplementedFeature(
            "A gallery image version from a virtual machine is not available yet; capture a "
            "managed image or a snapshot of its OS disk instead.",
            target="storageProfile.source.id",
        )
    src = resolve(store, vm_id=source_id, region=location)
    return ResolvedSource(
        facts=SourceFacts(
            id=source_id,
            location=src.location,
            os_type=src.os_type,
            os_state="Generalized" if src.generalized else "Specialized",
            hyper_v_generation=src.hyper_v_generation,
        ),
        disks=(SourceDisk(lun=None, blob=src.blob, size=store.blobs.size(src.blob)),),
    )


def _other_version(store: Store, source_id: str, location: str) -> ResolvedSource:
    """Another gallery version: its Completed replica in this version's region."""
    try:
        other = get_by_id(store, source_id)
    except PlatformError:
        raise _not_found_source(source_id) from None
    definition = gallery_images.get_by_id(store, other.id.rsplit("/", 2)[0])
    replica = replication.serving_replica(other.replicas, normalise_location(location))
    if replica is None:
        raise InvalidParameter(
            f"Source {source_id} is not found. Please check source exists, and is in the same "
            "region as gallery image version being created.",
            target="storageProfile.source.id",
        )
    caching = {d.lun: d.host_caching for d in other.disks}
    return ResolvedSource(
        facts=SourceFacts(
            id=other.id,
            location=location,
            os_type=definition.os_type,
            os_state=definition.os_state,
            hyper_v_generation=definition.hyper_v_generation,
        ),
        disks=tuple(
            SourceDisk(lun=d.lun, blob=d.target, size=d.size, host_caching=caching[d.lun])
            for d in replica.disks
        ),
    )


def resolve_source(
    store: Store,
    *,
    location: str,
    source_id: str | None,
    os_disk_image: DiskImageSpec | None,
    data_disk_images: Sequence[DiskImageSpec],
) -> ResolvedSource:
    check_storage_profile(
        source_id=source_id, os_disk_image=os_disk_image, data_disk_images=data_disk_images
    )
    if source_id:
        kind = resource_type_of(source_id)
        if kind == VM_TYPE:
            resolved = _virtual_machine(store, source_id, location)
        elif kind == VERSION_TYPE:
            resolved = _other_version(store, source_id, location)
        else:
            resolved = _managed_image(store, source_id)
        check_source_location(resolved.facts, location)
        return resolved
    assert os_disk_image is not None and os_disk_image.source_id
    os_part = _disk_like(store, os_disk_image.source_id, None, os_disk_image.host_caching)
    check_source_location(os_part.facts, location)
    disks = list(os_part.disks)
    for spec in data_disk_images:
        assert spec.source_id
        part = _disk_like(store, spec.source_id, spec.lun, spec.host_caching)
        check_source_location(part.facts, location)
        disks.extend(part.disks)
    return ResolvedSource(facts=os_part.facts, disks=tuple(disks))


# --- operations -------------------------------------------------------------------------------


def _disk_spec(raw: Any, *, lun_required: bool, target: str) -> DiskImageSpec:
    if not isinstance(raw, Mapping):
        raise InvalidParameter(f"The value of parameter {target} is invalid.", target=target)
    source = raw.get("source") or {}
    if source.get("uri") or source.get("storageAccountId"):
        raise UnsupportedProperty(
            "Disk image sources by storage blob URI are not supported by azimg; use a managed "
            "disk or snapshot id.",
            target=f"{target}.source.uri",
        )
    lun = raw.get("lun")
    if lun_required and (isinstance(lun, bool) or not isinstance(lun, int) or lun < 0):
        raise InvalidParameter(
            f"Required parameter '{target}.lun' is missing (null).", target=f"{target}.lun"
        )
    caching = raw.get("hostCaching") or "None"
    return DiskImageSpec(
        lun=lun if lun_required else None,
        source_id=source.get("id"),
        host_caching=_enum(caching, HOST_CACHING, f"{target}.hostCaching"),
    )


def _storage_specs(
    storage_profile: Any,
) -> tuple[str | None, DiskImageSpec | None, list[DiskImageSpec]]:
    if not isinstance(storage_profile, Mapping):
        raise InvalidParameter(
            "Required parameter 'storageProfile' is missing (null).", target="storageProfile"
        )
    source = storage_profile.get("source") or {}
    for unsupported in ("virtualMachineId", "communityGalleryImageId"):
        if source.get(unsupported):
            raise NotImplementedFeature(
                f"storageProfile.source.{unsupported} is not implemented by azimg yet.",
                target=f"storageProfile.source.{unsupported}",
            )
    os_raw = storage_profile.get("osDiskImage")
    os_spec = (
        _disk_spec(os_raw, lun_required=False, target="storageProfile.osDiskImage")
        if os_raw is not None
        else None
    )
    data = [
        _disk_spec(d, lun_required=True, target=f"storageProfile.dataDiskImages[{i}]")
        for i, d in enumerate(storage_profile.get("dataDiskImages") or [])
    ]
    return source.get("id"), os_spec, data


def _bool(value: Any, target: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidParameter(f"The value of parameter {target} is invalid.", target=target)
    return value


def _eol(value: Any) -> str | None:
    if value is None:
        return None
    return gallery_images.parse_date(value, "publishingProfile.endOfLifeDate").strftime(
        "%Y-%m-%dT%H:%M:%S+00:00"
    )


def _changed(prop: str) -> PropertyChangeNotAllowed:
    return PropertyChangeNotAllowed(
        f"Changing property 'galleryImageVersion.properties.{prop}' is not allowed.",
        target=f"properties.{prop}",
    )


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
    location: Any,
    properties: Mapping[str, Any],
    caller: str,
    tags: Any = None,
    now: datetime | None = None,
) -> tuple[GalleryImageVersion, bool]:
    """Validate, record the version with its replicas queued, and say if it was created.

    The caller submits ``JOB_REPLICATE`` when the returned version is not yet Succeeded.
    """
    now = now or datetime.now(UTC)
    definition = _definition(store, subscription_id, resource_group, gallery, image)
    VersionNumber.parse(name)
    region = check_location(store, location, rtype=VERSION_TYPE)
    clean_tags = check_tags(tags)
    publishing = properties.get("publishingProfile") or {}
    if not isinstance(publishing, Mapping):
        raise InvalidParameter(
            "The value of parameter publishingProfile is invalid.", target="publishingProfile"
        )
    if publishing.get("storageAccountType") and publishing.get("storageAccountStrategy"):
        raise InvalidParameter(
            "storageAccountType and storageAccountStrategy cannot both be specified.",
            target="publishingProfile.storageAccountStrategy",
        )
    if publishing.get("targetExtendedLocations"):
        raise UnsupportedProperty(
            "Edge zones (targetExtendedLocations) are not supported by azimg.",
            target="publishingProfile.targetExtendedLocations",
        )
    strategy = publishing.get("storageAccountStrategy")
    account_type = publishing.get("storageAccountType")
    if strategy is not None:
        strategy = _enum(
            strategy, STORAGE_ACCOUNT_STRATEGIES, "publishingProfile.storageAccountStrategy"
        )
        account_type = "Standard_ZRS" if strategy == "PreferStandard_ZRS" else "Standard_LRS"
    targets = resolve_target_regions(
        location=location,
        target_regions=publishing.get("targetRegions"),
        replica_count=publishing.get("replicaCount"),
        storage_account_type=account_type,
        known_regions=store.regions,
    )
    mode = _enum(
        publishing.get("replicationMode") or "Full",
        REPLICATION_MODES,
        "publishingProfile.replicationMode",
    )
    if mode == "Shallow" and [t.key for t in targets] != [region]:
        raise InvalidParameter(
            "Shallow replication mode only supports the source region as a target region.",
            target="publishingProfile.targetRegions",
        )
    safety = properties.get("safetyProfile") or {}
    allow_region_removal = safety.get("allowDeletionOfReplicatedLocations")
    allow_region_removal = True if allow_region_removal is None else allow_region_removal
    block_before_eol = _bool(
        safety.get("blockDeletionBeforeEndOfLife"), "safetyProfile.blockDeletionBeforeEndOfLife"
    )
    for unsupported in ("securityProfile", "restore", "imageMetadataProfiles"):
        if properties.get(unsupported):
            raise UnsupportedProperty(
                f"The property 'properties.{unsupported}' is not supported by azimg.",
                target=f"properties.{unsupported}",
            )
    source_id, os_spec, data_specs = _storage_specs(properties.get("storageProfile"))
    rid = version_id(subscription_id, resource_group, gallery, image, name)
    doc = store.meta.get(rid)
    current = _from_doc(doc) if doc is not None and doc.type == VERSION_TYPE else None

    if current is not None:
        if current.deleting:
            raise OperationNotAllowed(
                f"Operation 'Update Gallery Image Version' is not allowed on {current.name} "
                "since it is marked for deletion. You can only retry the Delete operation (or "
                "wait for an ongoing one to complete)."
            )
        if current.provisioning_state in ("Creating", "Updating"):
            raise OperationNotAllowed(
                f"Operation 'Update Gallery Image Version' is not allowed on {current.name} "
                "while its replication is in progress; wait for it to finish."
            )
        if normalise_location(current.location) != region:
            raise Conflict(
                f"The resource '{current.name}' already exists in location "
                f"'{current.location}'. A resource with the same name cannot be created in "
                f"location '{region}'. Please select a new resource name.",
                target="location",
            )
        _check_same_source(current, source_id, os_spec, data_specs)
        if account_type is not None and current.storage_account_type != (
            _enum(account_type, GALLERY_STORAGE_ACCOUNT_TYPES, "storageAccountType")
        ):
            raise _changed("publishingProfile.storageAccountType")
        if mode != current.replication_mode:
            raise _changed("publishingProfile.replicationMode")
        removed = {t.key for t in current.target_regions} - {t.key for t in targets}
        if removed and not current.allow_deletion_of_replicated_locations:
            raise OperationNotAllowed(
                "Removing replicated regions ("
                f"{', '.join(sorted(removed))}) is not allowed because "
                "safetyProfile.allowDeletionOfReplicatedLocations is false."
            )
        disks = current.disks
        published = current.published_date
        resolved_source_id = current.source_id
    else:
        resolved = resolve_source(
            store,
            location=region,
            source_id=source_id,
            os_disk_image=os_spec,
            data_disk_images=data_specs,
        )
        check_source_matches_definition(
            resolved.facts,
            DefinitionFacts(
                os_type=definition.os_type,
                os_state=definition.os_state,
                hyper_v_generation=definition.hyper_v_generation,
            ),
        )
        disks = resolved.disks
        published = now.strftime("%Y-%m-%dT%H:%M:%S.%f0+00:00")
        resolved_source_id = resolved.facts.id if source_id else None

    key_prefix = replica_key_prefix(rid)
    keep, drop = replication.plan_replicas(
        [(t.key, t.regional_replica_count) for t in targets],
        [(d.lun, d.blob, d.size) for d in disks],
        key_prefix=key_prefix,
        existing=current.replicas if current else (),
    )
    # A re-PUT retries what failed, as Azure suggests ("trigger the command again").
    keep = tuple(
        replace(r, state=replication.ReplicaState.QUEUED, copied=0, details=None)
        if r.state is replication.ReplicaState.FAILED
        else r
        for r in keep
    )
    for gone in drop:
        for d in gone.disks:
            store.blobs.delete(d.target)
    version = GalleryImageVersion(
        id=current.id if current else rid,
        name=current.name if current else name,
        location=current.location if current else region,
        target_regions=targets,
        replica_count=publishing.get("replicaCount") or 1,
        storage_account_type=current.storage_account_type
        if current
        else (
            targets[0].storage_account_type
            if account_type is None
            else _enum(account_type, GALLERY_STORAGE_ACCOUNT_TYPES, "storageAccountType")
        ),
        replication_mode=mode,
        exclude_from_latest=_bool(
            publishing.get("excludeFromLatest"), "publishingProfile.excludeFromLatest"
        ),
        end_of_life_date=_eol(publishing.get("endOfLifeDate")),
        published_date=published,
        source_id=resolved_source_id,
        disks=disks,
        replicas=keep,
        allow_deletion_of_replicated_locations=bool(allow_region_removal),
        block_deletion_before_end_of_life=block_before_eol,
        updating=current is not None,
        tags=clean_tags,
        system_data=system_data(caller, current.system_data.get("createdAt") if current else None),
    )
    return _save(store, version), current is None


def replica_key_prefix(rid: str) -> str:
    """Replica blobs of a version are ``{prefix}-r{index}-{os|lunN}`` in each region's root."""
    return f"v-{uuid.uuid5(uuid.NAMESPACE_URL, rid.lower()).hex[:16]}"


def _check_same_source(
    current: GalleryImageVersion,
    source_id: str | None,
    os_spec: DiskImageSpec | None,
    data_specs: Sequence[DiskImageSpec],
) -> None:
    """An update may repeat the source or leave it out, never change it."""
    if source_id and (current.source_id or "").lower() != source_id.lower():
        raise _changed("storageProfile.source.id")
    current_os = current.os_disk.source_id
    if os_spec and os_spec.source_id and (current_os or "").lower() != os_spec.source_id.lower():
        raise _changed("storageProfile.osDiskImage.source.id")
    known = {d.lun: d for d in current.data_disks}
    for spec in data_specs:
        old = known.get(spec.lun)
        if old is None or (
            spec.source_id and (old.source_id or "").lower() != spec.source_id.lower()
        ):
            raise InvalidParameter(
                "Adding new Data Disks or changing the LUN of a Data Disk in an existing Image "
                "is not allowed.",
                target="storageProfile.dataDiskImages",
            )


def update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
    properties: Mapping[str, Any],
    caller: str,
    tags: Any = None,
) -> GalleryImageVersion:
    """PATCH: the given parts of the publishing and safety profiles change, the rest stays."""
    current = get(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=name,
    )
    merged = to_properties(current)
    for part in ("publishingProfile", "safetyProfile"):
        if properties.get(part) is not None:
            merged[part] = {**merged.get(part, {}), **properties[part]}
    if properties.get("storageProfile") is not None:
        merged["storageProfile"] = properties["storageProfile"]
    version, _ = create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=current.name,
        location=current.location,
        properties=merged,
        caller=caller,
        tags=tags if tags is not None else current.tags,
    )
    return version


def to_properties(v: GalleryImageVersion, *, expand_replication: bool = False) -> dict[str, Any]:
    """The wire ``properties`` object."""
    os_disk = v.os_disk
    storage: dict[str, Any] = {
        "osDiskImage": {"sizeInGB": os_disk.size_in_gb, "hostCaching": os_disk.host_caching},
        "dataDiskImages": [
            {"lun": d.lun, "sizeInGB": d.size_in_gb, "hostCaching": d.host_caching}
            | ({"source": {"id": d.source_id}} if d.source_id else {})
            for d in v.data_disks
        ],
    }
    if v.source_id:
        storage["source"] = {"id": v.source_id}
    elif os_disk.source_id:
        storage["osDiskImage"]["source"] = {"id": os_disk.source_id}
    publishing: dict[str, Any] = {
        "targetRegions": [_region_to_json(t) for t in v.target_regions],
        "replicaCount": v.replica_count,
        "excludeFromLatest": v.exclude_from_latest,
        "publishedDate": v.published_date,
        "storageAccountType": v.storage_account_type,
        "replicationMode": v.replication_mode,
    }
    if v.end_of_life_date:
        publishing["endOfLifeDate"] = v.end_of_life_date
    props: dict[str, Any] = {
        "publishingProfile": publishing,
        "storageProfile": storage,
        "safetyProfile": {
            "allowDeletionOfReplicatedLocations": v.allow_deletion_of_replicated_locations,
            "blockDeletionBeforeEndOfLife": v.block_deletion_before_end_of_life,
            "reportedForPolicyViolation": False,
        },
        "provisioningState": v.provisioning_state,
    }
    if expand_replication:
        status = v.status
        props["replicationStatus"] = {
            "aggregatedState": replication.aggregate(status).value,
            "summary": [
                {"region": _display(v, s.region), "state": s.state.value, "progress": s.progress}
                | ({"details": s.details} if s.details else {})
                for s in status
            ],
        }
    return props


def _display(v: GalleryImageVersion, key: str) -> str:
    return next((t.name for t in v.target_regions if t.key == key), key)


def begin_delete(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
    now: datetime | None = None,
) -> GalleryImageVersion | None:
    """Mark the version Deleting (None when it does not exist: deletes are idempotent).

    The caller submits ``JOB_DELETE``, which stops replication and frees every replica.
    """
    _definition(store, subscription_id, resource_group, gallery, image)
    rid = version_id(subscription_id, resource_group, gallery, image, name)
    doc = store.meta.get(rid)
    if doc is None or doc.type != VERSION_TYPE:
        return None
    current = _from_doc(doc)
    eol = (
        gallery_images.parse_date(current.end_of_life_date, "endOfLifeDate")
        if current.end_of_life_date
        else None
    )
    check_deletable(
        block_before_end_of_life=current.block_deletion_before_end_of_life,
        end_of_life=eol,
        now=now or datetime.now(UTC),
    )
    return _save(store, replace(current, deleting=True))


def finish_delete(store: Store, rid: str) -> None:
    doc = store.meta.get(rid)
    if doc is None:
        return
    for blob in doc.blobs:
        store.blobs.delete(blob)
    store.meta.delete(rid)


# --- jobs -------------------------------------------------------------------------------------

JOB_DELETE = "gallery_versions.delete"
_PROGRESS_EVERY = 0.25  # seconds between progress writes of one replica
_REPLICA_THREADS = 4


class _Gone(Exception):
    """The version was deleted (or is being deleted) while it replicated."""


class _VersionWriter:
    """One replication run's writes of the version document.

    The run's replica threads take turns through ``lock``; anyone else (a DELETE marking the
    version Deleting, a resource-group delete) is detected through the document's ETag, so
    their write is never overwritten by a progress update.
    """

    def __init__(self, store: Store, rid: str) -> None:
        self.store = store
        self.rid = rid
        self.lock = threading.Lock()

    def _load_doc(self) -> tuple[Document, GalleryImageVersion]:
        doc = self.store.meta.get(self.rid)
        if doc is None or doc.type != VERSION_TYPE:
            raise _Gone(self.rid)
        version = _from_doc(doc)
        if version.deleting:
            raise _Gone(self.rid)
        return doc, version

    def load(self) -> GalleryImageVersion:
        return self._load_doc()[1]

    def save(self, change: Callable[[GalleryImageVersion], GalleryImageVersion]) -> None:
        """Apply ``change`` to the current document, retrying if someone else wrote first."""
        with self.lock:
            while True:
                doc, version = self._load_doc()
                try:
                    self.store.meta.put(_to_doc(change(version)), if_match=doc.etag)
                    return
                except PreconditionFailed:
                    continue

    def put_replica(self, replica: replication.Replica) -> None:
        def change(version: GalleryImageVersion) -> GalleryImageVersion:
            replicas = tuple(
                replica if (r.region, r.index) == (replica.region, replica.index) else r
                for r in version.replicas
            )
            return replace(version, replicas=replicas)

        self.save(change)


def _replicate_one(
    writer: _VersionWriter, replica: replication.Replica, rate: int | None
) -> replication.Replica:
    replica = replication.start(replica)
    last = 0.0

    def report(done: int) -> None:
        nonlocal replica, last
        replica = replication.advance(replica, done)
        now = time.monotonic()
        if now - last >= _PROGRESS_EVERY:
            last = now
            writer.put_replica(replica)  # raises _Gone: the copy stops

    try:
        writer.put_replica(replica)
        try:
            replication.copy_replica(writer.store.blobs, replica, rate=rate, report=report)
        except (OSError, PlatformError) as err:
            reason = err.message if isinstance(err, PlatformError) else (err.strerror or str(err))
            log.warning(
                "replica %s#%d of %s failed: %s", replica.region, replica.index, writer.rid, reason
            )
            replica = replication.fail(replica, reason)
        else:
            replica = replication.complete(replica)
        writer.put_replica(replica)
    except _Gone:
        # Deleted under our feet: whoever deleted it may have freed the blobs before this
        # copy wrote them, so drop what this replica wrote.
        for d in replica.disks:
            writer.store.blobs.delete(d.target)
        raise
    return replica


def _run_replication(store: Store, op: Operation) -> Mapping[str, Any] | None:
    """Copy every replica that is not done yet; resumable (a restart re-runs this).

    ``op.params["rate"]`` is the platform's replication rate when the copy was asked for.
    """
    writer = _VersionWriter(store, op.resource_id)
    rate = op.params.get("rate")
    try:
        writer.save(
            lambda v: replace(v, replicas=tuple(replication.after_restart(r) for r in v.replicas))
        )
        todo = [r for r in writer.load().replicas if not r.done]
        if todo:
            with ThreadPoolExecutor(min(_REPLICA_THREADS, len(todo))) as pool:
                list(pool.map(lambda r: _replicate_one(writer, r, rate), todo))
        writer.save(lambda v: replace(v, updating=False))
        version = writer.load()
    except _Gone:
        raise Conflict(
            f"The gallery image version '{op.resource_id.rsplit('/', 1)[1]}' was deleted "
            "before its replication finished."
        ) from None
    if version.aggregated_state is replication.AggregatedReplicationState.FAILED:
        failed = [s for s in version.status if s.state is replication.ReplicationState.FAILED]
        raise ReplicationFailed(
            "; ".join(f"{_display(version, s.region)}: {s.details}" for s in failed),
            target="publishingProfile.targetRegions",
        )
    return None


def _on_replication_failed(store: Store, op: Operation, _error: Mapping[str, Any]) -> None:
    """A run that could not finish: replicas still in flight end Failed, never Creating."""
    doc = store.meta.get(op.resource_id)
    if doc is None or doc.type != VERSION_TYPE:
        return
    version = _from_doc(doc)
    replicas = tuple(
        r if r.done else replication.fail(r, "the replication job was interrupted")
        for r in version.replicas
    )
    _save(store, replace(version, replicas=replicas, updating=False))


def _run_delete(store: Store, op: Operation) -> Mapping[str, Any] | None:
    finish_delete(store, op.resource_id)
    return None


def job_specs() -> dict[str, JobSpec]:
    return {
        JOB_REPLICATE: JobSpec(
            run=_run_replication, on_fail=_on_replication_failed, resumable=True, dedicated=True
        ),
        JOB_DELETE: JobSpec(run=_run_delete, resumable=True),
    }


def disk_source(store: Store, *, version_id: str, region: str, lun: int | None = None) -> Any:
    """The disks module's contract for ``galleryImageReference``: the bytes of one disk image
    of a version (or of ``latest``) in ``region``, as a ``disks.DiskSource``."""
    from azimg.platform.resources.disks import DiskSource

    dep = resolve_for_deployment(store, version_id, region)
    if lun is None:
        blob, size = dep.os_disk, dep.os_disk_size
    else:
        match = [(b, n) for found, b, n in dep.data_disks if found == lun]
        if not match:
            raise InvalidParameter(
                "The value of parameter imageReference is invalid.",
                target="properties.creationData.galleryImageReference.lun",
            )
        blob, size = match[0]
    return DiskSource(
        resource_id=dep.version_id,
        blob=blob,
        disk_size_bytes=size - 512,
        os_type=dep.os_type,
        hyper_v_generation=dep.hyper_v_generation,
    )
