"""A version as the source of a disk or VM: the Completed replica in the asked region."""

from __future__ import annotations

from azimg.platform import sources
from azimg.platform.gallery_errors import (
    GalleryImageNotInRegion,
    RequiredParameterMissing,
)
from azimg.platform.ids import resource_type
from azimg.platform.resources import gallery_images, replication
from azimg.platform.resources.gallery_versions.model import VERSION_TYPE, get_by_id, latest
from azimg.platform.settings import normalise_location
from azimg.platform.store import Store


def resolve_version(store: Store, rid: str, *, region: str | None) -> sources.Source:
    """The ``platform/sources`` resolver of versions and definitions: ``galleryImageReference``
    / ``imageReference`` ids (a version, ``…/versions/latest`` or a definition, both meaning
    the latest version in ``region``) → the Completed replica's bytes there, with the
    definition's OS facts; Azure's error when the region has none."""
    if region is None:
        raise RequiredParameterMissing(target="imageReference", name="location")
    region_key = normalise_location(region)
    is_definition = resource_type(rid) == gallery_images.IMAGE_TYPE.lower()
    if is_definition or rid.rstrip("/").lower().endswith("/versions/latest"):
        definition_id = rid if is_definition else rid.rstrip("/").rsplit("/", 2)[0]
        version = latest(store, definition_id, region=region_key)
    else:
        version = get_by_id(store, rid)
    definition = gallery_images.get_by_id(store, version.id.rsplit("/", 2)[0])
    replica = replication.serving_replica(version.replicas, region_key)
    if replica is None or version.provisioning_state == "Deleting":
        raise GalleryImageNotInRegion(target="imageReference", id=version.id, region=region)
    caching = {d.lun: d.host_caching for d in version.disks}
    disks = sorted(replica.disks, key=lambda d: (d.lun is not None, d.lun or 0))
    return sources.Source(
        id=version.id,
        type=VERSION_TYPE,
        location=region_key,
        disks=tuple(
            sources.SourceDisk(
                lun=d.lun,
                blob=d.target,
                size_bytes=d.size - sources.VHD_FOOTER,
                caching=caching.get(d.lun),
            )
            for d in disks
        ),
        os_type=definition.os_type,
        os_state=definition.os_state,
        hyper_v_generation=definition.hyper_v_generation,
    )
