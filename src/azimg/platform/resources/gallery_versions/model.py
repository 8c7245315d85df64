"""The gallery image version as stored: the resource dataclass, its document and reads.

A version owns the bytes of its replicas (``Document.blobs``), so a resource-group delete
frees them; the source disks it was made from are only referenced. Derived state
(replication status, provisioningState) is computed from the replicas, never stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azimg.platform.ids import resource_type
from azimg.platform.resources import galleries, gallery_images, replication
from azimg.platform.resources.common import require_document, resource_id
from azimg.platform.resources.gallery_versions.rules import (
    LatestCandidate,
    TargetRegion,
    select_latest,
)
from azimg.platform.store import BlobRef, Document, Store

VERSION_TYPE = "Microsoft.Compute/galleries/images/versions"
JOB_REPLICATE = "gallery_versions.replicate"
JOB_DELETE = "gallery_versions.delete"
_GIB = 1024**3


@dataclass(frozen=True)
class SourceDisk:
    """One disk image of a version: the source's bytes, frozen when the version was made."""

    lun: int | None
    blob: BlobRef
    size: int
    host_caching: str = "None"
    source_id: str | None = None  # the disk or snapshot id, for osDiskImage/dataDiskImages
    format: str = "vhd"  # "qcow2": a VM's clone in use (exported into each replica)

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
            "format": self.format,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SourceDisk:
        return cls(
            lun=raw["lun"],
            blob=BlobRef.from_json(raw["blob"]),
            size=int(raw["size"]),
            host_caching=raw.get("hostCaching", "None"),
            source_id=raw.get("sourceId"),
            format=raw.get("format", "vhd"),
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


def region_to_json(t: TargetRegion) -> dict[str, Any]:
    return {
        "name": t.name,
        "regionalReplicaCount": t.regional_replica_count,
        "storageAccountType": t.storage_account_type,
        "excludeFromLatest": t.exclude_from_latest,
    }


def from_doc(doc: Document) -> GalleryImageVersion:
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


def to_doc(v: GalleryImageVersion) -> Document:
    blobs = tuple(d.target for r in v.replicas for d in r.disks)
    return Document(
        id=v.id,
        type=VERSION_TYPE,
        location=v.location,
        blobs=blobs,
        body={
            "name": v.name,
            "location": v.location,
            "targetRegions": [region_to_json(t) for t in v.target_regions],
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


def definition(
    store: Store, subscription_id: str, resource_group: str, gallery: str, image: str
) -> gallery_images.GalleryImage:
    rid = gallery_images.image_id(subscription_id, resource_group, gallery, image)
    galleries.require_parent(store, rid, gallery_images.IMAGE_TYPE, f"{gallery}/{image}")
    return gallery_images.get_by_id(store, rid)


def list_by_image(
    store: Store, *, subscription_id: str, resource_group: str, gallery: str, image: str
) -> list[GalleryImageVersion]:
    parent = definition(store, subscription_id, resource_group, gallery, image)
    return [from_doc(d) for d in store.meta.list(type=VERSION_TYPE, parent=parent.id)]


def latest(store: Store, definition_id: str, *, region: str | None = None) -> GalleryImageVersion:
    """The version ``latest`` means for ``definition_id`` (in ``region``, when given)."""
    definition = gallery_images.get_by_id(store, definition_id)
    versions = [from_doc(d) for d in store.meta.list(type=VERSION_TYPE, parent=definition.id)]
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
    return from_doc(require_document(store, rid, VERSION_TYPE))


def get_by_id(store: Store, rid: str) -> GalleryImageVersion:
    """A version by id; ``…/versions/latest`` and a definition id both mean ``latest``."""
    kind = resource_type(rid)
    if kind == gallery_images.IMAGE_TYPE.lower():
        return latest(store, rid)
    if kind == VERSION_TYPE.lower() and rid.rstrip("/").rsplit("/", 1)[1].lower() == "latest":
        return latest(store, rid.rstrip("/").rsplit("/", 2)[0])
    return from_doc(require_document(store, rid, VERSION_TYPE))


def replica_key_prefix(rid: str) -> str:
    """Replica blobs of a version are ``{prefix}-r{index}-{os|lunN}`` in each region's root."""
    return f"v-{uuid.uuid5(uuid.NAMESPACE_URL, rid.lower()).hex[:16]}"


def display_region(v: GalleryImageVersion, key: str) -> str:
    """A region as the client spelled it in ``targetRegions`` (``key`` is normalised)."""
    return next((t.name for t in v.target_regions if t.key == key), key)
