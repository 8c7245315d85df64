"""What a client asks of a gallery image version, as typed values (no wire JSON here).

The router turns a validated request body into these frozen dataclasses; the domain checks
the values (enums, ranges, regions) and never sees camelCase. ``None`` always means "not
given": PUT fills Azure's defaults, PATCH keeps what the version has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TargetRegionSpec:
    """One ``publishingProfile.targetRegions[]`` entry as given."""

    name: str | None = None
    regional_replica_count: int | None = None
    storage_account_type: str | None = None
    exclude_from_latest: bool | None = None


@dataclass(frozen=True)
class DiskImageSpec:
    """One disk image as asked: ``lun`` None for the OS disk."""

    lun: int | None
    source_id: str | None
    host_caching: str = "None"


@dataclass(frozen=True)
class StorageSpec:
    """``storageProfile``: a top-level source, or disk-level sources."""

    source_id: str | None = None
    os_disk_image: DiskImageSpec | None = None
    data_disk_images: tuple[DiskImageSpec, ...] = ()


@dataclass(frozen=True)
class PublishingSpec:
    target_regions: tuple[TargetRegionSpec, ...] | None = None
    replica_count: int | None = None
    exclude_from_latest: bool | None = None
    end_of_life_date: str | None = None
    storage_account_type: str | None = None
    storage_account_strategy: str | None = None
    replication_mode: str | None = None


@dataclass(frozen=True)
class SafetySpec:
    allow_deletion_of_replicated_locations: bool | None = None
    block_deletion_before_end_of_life: bool | None = None


@dataclass(frozen=True)
class VersionSpec:
    """A PUT: the whole version as the client wants it."""

    location: str | None
    storage: StorageSpec | None
    publishing: PublishingSpec = field(default_factory=PublishingSpec)
    safety: SafetySpec = field(default_factory=SafetySpec)
    tags: Mapping[str, str] | None = None


@dataclass(frozen=True)
class VersionPatch:
    """A PATCH: only what is given changes."""

    storage: StorageSpec | None = None
    publishing: PublishingSpec | None = None
    safety: SafetySpec | None = None
    tags: Mapping[str, str] | None = None
