"""A version as the source of a disk or VM: the Completed replica in the asked region."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azimg.platform.errors import InvalidParameter
from azimg.platform.resources import gallery_images, replication
from azimg.platform.resources.gallery_versions.model import get_by_id, latest
from azimg.platform.resources.gallery_versions.rules import resource_type_of
from azimg.platform.settings import normalise_location
from azimg.platform.store import BlobRef, Store


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
