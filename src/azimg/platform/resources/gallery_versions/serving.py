"""A version as the source of a disk or VM: the Completed replica in the asked region."""

from __future__ import annotations

from dataclasses import dataclass

from azimg.platform import sources
from azimg.platform.errors import InvalidParameter
from azimg.platform.ids import resource_type
from azimg.platform.resources import gallery_images, replication
from azimg.platform.resources.gallery_versions.model import VERSION_TYPE, get_by_id, latest
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
    is_definition = resource_type(reference_id) == gallery_images.IMAGE_TYPE.lower()
    if is_definition or reference_id.rstrip("/").lower().endswith("/versions/latest"):
        definition_id = (
            reference_id if is_definition else reference_id.rstrip("/").rsplit("/", 2)[0]
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


def resolve_version(store: Store, rid: str, *, region: str | None) -> sources.Source:
    """The ``platform/sources`` resolver of versions and definitions (a definition id, or
    ``…/versions/latest``, means the latest version in ``region``): the replica there."""
    if region is None:
        raise InvalidParameter(
            "A gallery image version is a source only in a region.", target="imageReference"
        )
    dep = resolve_for_deployment(store, rid, region)
    data = tuple(
        sources.SourceDisk(lun, blob, size - sources.VHD_FOOTER)
        for lun, blob, size in dep.data_disks
    )
    return sources.Source(
        id=dep.version_id,
        type=VERSION_TYPE,
        location=normalise_location(region),
        disks=(sources.SourceDisk(None, dep.os_disk, dep.os_disk_size - sources.VHD_FOOTER), *data),
        os_type=dep.os_type,
        os_state=dep.os_state,
        hyper_v_generation=dep.hyper_v_generation,
    )
