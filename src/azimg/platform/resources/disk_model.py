"""The disk and snapshot model: constants, kinds, the stored ``Disk`` and the commands the
edge builds (``DiskSpec`` for PUT, ``DiskChange`` for PATCH). Types only; the rules are in
``disks.py``, which re-exports these names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azimg.platform.store import BlobRef

GIB = 1024**3
MIB = 1024**2
FOOTER = 512
MIN_UPLOAD = 20 * MIB + FOOTER
MAX_UPLOAD = 32 * 1024 * GIB + FOOTER
MAX_DISK_GB = 32767

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
    creation_data: CreationData
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


# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """``creationData.imageReference`` / ``galleryImageReference``."""

    id: str | None = None
    shared_gallery_image_id: str | None = None
    community_gallery_image_id: str | None = None
    lun: int | None = None


@dataclass(frozen=True)
class CreationData:
    """How a disk was made; immutable after create (echoed as ``creationData``)."""

    create_option: str | None = None
    storage_account_id: str | None = None
    image_reference: ImageRef | None = None
    gallery_image_reference: ImageRef | None = None
    source_uri: str | None = None
    source_resource_id: str | None = None
    source_unique_id: str | None = None  # set by the platform on Copy
    upload_size_bytes: int | None = None
    logical_sector_size: int | None = None
    security_data_uri: str | None = None
    security_metadata_uri: str | None = None
    performance_plus: bool | None = None
    elastic_san_resource_id: str | None = None
    provisioned_bandwidth_copy_speed: str | None = None
    instant_access_duration_minutes: int | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CreationData:
        """The stored form (``asdict``) back into the dataclass."""
        refs = {
            k: ImageRef(**raw[k]) if raw.get(k) else None
            for k in ("image_reference", "gallery_image_reference")
        }
        return cls(**{**raw, **refs})


@dataclass(frozen=True)
class DiskSpec:
    """A PUT: what the caller asked for, in the shapes the edge validated; the rules (names,
    regions, enums, sizes, sources) are this module's. ``echo`` holds the knobs azimg stores
    and returns as sent (encryption, policies, performance), already validated by the edge's
    models and never read here."""

    subscription_id: str
    resource_group: str
    name: str
    location: str | None
    creation: CreationData | None = None
    sku: str | None = None
    tags: Mapping[str, str] | None = None
    zones: tuple[str, ...] = ()
    disk_size_gb: int | None = None
    os_type: str | None = None
    hyper_v_generation: str | None = None
    echo: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DiskChange:
    """A PATCH: only what is set changes."""

    subscription_id: str
    resource_group: str
    name: str
    sku: str | None = None
    tags: Mapping[str, str] | None = None
    disk_size_gb: int | None = None
    os_type: str | None = None
    hyper_v_generation: str | None = None
    echo: Mapping[str, Any] = field(default_factory=dict)
