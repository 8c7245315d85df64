"""Pure rules of gallery image versions, table-tested in tests/unit/test_gallery_versions.py.

Version names, target regions, the storage profile's shape, source/definition compatibility,
``latest`` and deletion: functions over plain data that raise Azure's errors and do no I/O.

Decisions (reference/arm-api.md §7.4, §7.5):
- ``latest`` is the highest Major.Minor.Patch among versions that are provisioned
  (Succeeded, or Updating while a new region is added), not excluded (version-wide or in the
  asked region) and, when a region is asked, with a Completed replica there. A Failed version
  is never ``latest``. ``endOfLifeDate`` is informational for Azure and does not remove a
  version from ``latest``; it only matters for ``blockDeletionBeforeEndOfLife``.
- Disks and snapshots carry no OS state: the definition's is taken. A missing
  ``hyperVGeneration`` on a source means V1, as on Azure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from azimg.platform.errors import (
    BadRequest,
    DeleteGalleryImageVersionBlockedBeforeEndOfLife,
    InvalidParameter,
)
from azimg.platform.ids import resource_type
from azimg.platform.resources.common import enum_value
from azimg.platform.resources.gallery_versions.commands import DiskImageSpec, TargetRegionSpec
from azimg.platform.settings import normalise_location

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


def _replica_count(value: int, target: str) -> int:
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
    target_regions: Sequence[TargetRegionSpec] | None,
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
        else enum_value(
            storage_account_type,
            GALLERY_STORAGE_ACCOUNT_TYPES,
            target="publishingProfile.storageAccountType",
        )
    )
    raw = list(target_regions) if target_regions else [TargetRegionSpec(name=location)]
    out: list[TargetRegion] = []
    for i, entry in enumerate(raw):
        target = f"publishingProfile.targetRegions[{i}]"
        name = entry.name
        if name is None or not name.strip():
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
        count, sat = entry.regional_replica_count, entry.storage_account_type
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
                    else enum_value(
                        sat, GALLERY_STORAGE_ACCOUNT_TYPES, target=f"{target}.storageAccountType"
                    )
                ),
                exclude_from_latest=bool(entry.exclude_from_latest),
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
_DISK_KINDS = {t.lower() for t in SOURCE_TYPES_DISK}
VM_TYPE = "Microsoft.Compute/virtualMachines"

_ONE_SOURCE_MESSAGE = (
    "The gallery artifact version source can only be specified either directly under "
    "storageProfile or within individual OS or data disks. One and only one source type "
    "(user image, snapshot, disk, virtual machine) can be provided."
)


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
        kind = resource_type(source_id)
        if not kind:
            raise InvalidParameter(
                f"Property id '{source_id}' at path 'properties.storageProfile.source.id' is "
                "invalid. Expect fully qualified resource Id that start with "
                "'/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.",
                target="storageProfile.source.id",
            )
        if kind not in {t.lower() for t in (*SOURCE_TYPES_TOP, VM_TYPE)}:
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
        if image.source_id and resource_type(image.source_id) not in _DISK_KINDS:
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
