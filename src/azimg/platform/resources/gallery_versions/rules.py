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

from azimg.platform.gallery_errors import (
    DeletionBlockedBeforeEndOfLife,
    DuplicateLuns,
    DuplicateSourceIds,
    DuplicateTargetRegions,
    GalleryImageNotInRegion,
    InvalidVersionName,
    NoLatestVersion,
    OneSourceTypeOnly,
    OsAndDataDiskSameBlob,
    RegionNotAvailable,
    RequiredParameterMissing,
    SourceDefinitionMismatch,
    SourceIdNotQualified,
    SourceNotDiskOrSnapshot,
    SourceNotImageVmOrVersion,
    SourceNotInRegion,
    TargetRegionsMissLocation,
    ValueOutOfRange,
)
from azimg.platform.ids import resource_type
from azimg.platform.resources.common import enum_value
from azimg.platform.resources.gallery_versions.commands import DiskImageSpec, TargetRegionSpec
from azimg.platform.settings import normalise_location

_INT32_MAX = 2**31 - 1

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
            raise InvalidVersionName(target="galleryImageVersionName")
        numbers = [int(p) for p in parts]
        if any(n > _INT32_MAX for n in numbers):
            raise InvalidVersionName(target="galleryImageVersionName")
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
        raise ValueOutOfRange(
            target=target, value=value, name=target, low=1, high=MAX_REPLICAS_PER_REGION
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
            raise RequiredParameterMissing(target=f"{target}.name", name=f"{target}.name")
        if normalise_location(name) not in known_regions:
            raise RegionNotAvailable(
                target=f"{target}.name",
                name=name,
                rtype="Microsoft.Compute/galleries",
                regions=",".join(known_regions),
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
        raise DuplicateTargetRegions(target="publishingProfile.targetRegions")
    if normalise_location(location) not in keys:
        raise TargetRegionsMissLocation(
            target="publishingProfile.targetRegions",
            regions=", ".join(t.name for t in out),
            location=location,
        )
    return tuple(out)


# --- sources ----------------------------------------------------------------------------------

SOURCE_TYPES_TOP = ("Microsoft.Compute/images", "Microsoft.Compute/galleries/images/versions")
SOURCE_TYPES_DISK = ("Microsoft.Compute/disks", "Microsoft.Compute/snapshots")
_DISK_KINDS = {t.lower() for t in SOURCE_TYPES_DISK}
VM_TYPE = "Microsoft.Compute/virtualMachines"


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
        raise OneSourceTypeOnly(target="storageProfile")
    if has_top:
        assert source_id is not None
        kind = resource_type(source_id)
        if not kind:
            raise SourceIdNotQualified(target="storageProfile.source.id", id=source_id)
        if kind not in {t.lower() for t in (*SOURCE_TYPES_TOP, VM_TYPE)}:
            raise SourceNotImageVmOrVersion(target="storageProfile.source.id", id=source_id)
        return
    if os_disk_image is None or not os_disk_image.source_id:
        raise RequiredParameterMissing(
            target="storageProfile.osDiskImage", name="storageProfile.osDiskImage.source.id"
        )
    luns = [d.lun for d in data_disk_images]
    if any(lun is None for lun in luns):
        raise RequiredParameterMissing(
            target="storageProfile.dataDiskImages", name="dataDiskImages.lun"
        )
    if len(set(luns)) != len(luns):
        raise DuplicateLuns(target="storageProfile.dataDiskImages")
    present = [i for i in disk_ids if i]
    for image in [os_disk_image, *data_disk_images]:
        if image.source_id and resource_type(image.source_id) not in _DISK_KINDS:
            raise SourceNotDiskOrSnapshot(
                id=image.source_id,
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
            raise OsAndDataDiskSameBlob(target="storageProfile", id=os_disk_image.source_id)
        raise DuplicateSourceIds(target="storageProfile")


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
        raise SourceNotInRegion(target="storageProfile", id=source.id)


def check_source_matches_definition(source: SourceFacts, definition: DefinitionFacts) -> None:
    """OS state, Hyper-V generation and OS type of the source must be the definition's."""
    if source.os_state is not None and source.os_state.lower() != definition.os_state.lower():
        raise SourceDefinitionMismatch(
            target="storageProfile",
            id=source.id,
            what="OS state",
            what_parent="OS state",
            given=source.os_state,
            expected=definition.os_state,
        )
    generation = source.hyper_v_generation or "V1"
    if generation.lower() != definition.hyper_v_generation.lower():
        raise SourceDefinitionMismatch(
            target="storageProfile",
            id=source.id,
            what="Hypervisor generation",
            what_parent="Hypervisor generation",
            given=generation,
            expected=definition.hyper_v_generation,
        )
    if source.os_type is not None and source.os_type.lower() != definition.os_type.lower():
        raise SourceDefinitionMismatch(
            target="storageProfile",
            id=source.id,
            what="OS type",
            what_parent="OS type generation",
            given=source.os_type,
            expected=definition.os_type,
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
            raise GalleryImageNotInRegion(target="imageReference", id=definition_id, region=region)
        raise NoLatestVersion(target="imageReference", id=definition_id)
    return max(eligible, key=lambda pair: pair[0])[1]


# --- deletion ---------------------------------------------------------------------------------


def check_deletable(
    *, block_before_end_of_life: bool, end_of_life: datetime | None, now: datetime
) -> None:
    """``safetyProfile.blockDeletionBeforeEndOfLife`` holds a version until its EOL date."""
    if block_before_end_of_life and (end_of_life is None or end_of_life > now):
        raise DeletionBlockedBeforeEndOfLife()
