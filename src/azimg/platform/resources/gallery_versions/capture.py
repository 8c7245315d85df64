"""What a new version captures: the bytes and OS facts of its source.

Disks, snapshots, managed images and VMs are resolved through ``platform/sources.py`` (their
owners register the resolvers), so this package imports none of their modules. Another
gallery version is this package's own: its Completed replica in the new version's region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from azimg.platform import sources
from azimg.platform.errors import (
    ParentResourceNotFound,
    PlatformError,
    ResourceGroupNotFound,
    ResourceNotFound,
)
from azimg.platform.gallery_errors import (
    SourceNotFound,
    SourceNotInRegion,
)
from azimg.platform.ids import resource_type
from azimg.platform.resources import gallery_images, replication
from azimg.platform.resources.gallery_versions.commands import DiskImageSpec
from azimg.platform.resources.gallery_versions.model import VERSION_TYPE, SourceDisk, get_by_id
from azimg.platform.resources.gallery_versions.rules import (
    SOURCE_TYPES_DISK,
    VM_TYPE,
    SourceFacts,
    check_source_location,
    check_storage_profile,
)
from azimg.platform.settings import normalise_location
from azimg.platform.store import Store

IMAGE_TYPE = "Microsoft.Compute/images"
_MISSING = (ResourceNotFound, ResourceGroupNotFound, ParentResourceNotFound)


@dataclass(frozen=True)
class ResolvedSource:
    facts: SourceFacts
    disks: tuple[SourceDisk, ...]


def _not_found_source(source_id: str) -> SourceNotFound:
    return SourceNotFound(target="storageProfile", id=source_id)


def _resolve(
    store: Store, source_id: str, accept: tuple[str, ...], *, region: str | None, target: str
) -> sources.Source:
    try:
        return sources.resolve(store, source_id, region=region, accept=accept, target=target)
    except _MISSING:
        raise _not_found_source(source_id) from None


def _facts(src: sources.Source) -> SourceFacts:
    return SourceFacts(
        id=src.id,
        location=src.location,
        os_type=src.os_type,
        os_state=src.os_state,
        hyper_v_generation=src.hyper_v_generation,
    )


def _disk_like(store: Store, spec: DiskImageSpec) -> ResolvedSource:
    """A managed disk or snapshot: its one blob, OS type and generation (no OS state)."""
    assert spec.source_id
    target = (
        "storageProfile.osDiskImage.source.id"
        if spec.lun is None
        else "storageProfile.dataDiskImages.source.id"
    )
    src = _resolve(store, spec.source_id, SOURCE_TYPES_DISK, region=None, target=target)
    disk = src.disk(None, target=target)
    return ResolvedSource(
        facts=_facts(src),
        disks=(
            SourceDisk(
                lun=spec.lun,
                blob=disk.blob,
                size=disk.blob_size,
                host_caching=spec.host_caching,
                source_id=src.id,
                format=disk.format,
            ),
        ),
    )


def _whole(store: Store, source_id: str, kind: str, location: str) -> ResolvedSource:
    """A managed image or a VM: every disk it has, with its OS type, state and generation."""
    src = _resolve(store, source_id, (kind,), region=location, target="storageProfile.source.id")
    return ResolvedSource(
        facts=_facts(src),
        disks=tuple(
            SourceDisk(
                lun=d.lun,
                blob=d.blob,
                size=d.blob_size,
                host_caching=d.caching or "None",
                format=d.format,
            )
            for d in src.disks
        ),
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
        raise SourceNotInRegion(target="storageProfile.source.id", id=source_id)
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
        kind = resource_type(source_id)
        if kind == VERSION_TYPE.lower():
            resolved = _other_version(store, source_id, location)
        else:
            full = VM_TYPE if kind == VM_TYPE.lower() else IMAGE_TYPE
            resolved = _whole(store, source_id, full, location)
        check_source_location(resolved.facts, location)
        return resolved
    assert os_disk_image is not None
    os_part = _disk_like(store, os_disk_image)
    check_source_location(os_part.facts, location)
    disks = list(os_part.disks)
    for spec in data_disk_images:
        part = _disk_like(store, spec)
        check_source_location(part.facts, location)
        disks.extend(part.disks)
    # Disks and snapshots carry no OS state: the definition's is taken.
    facts = os_part.facts
    return ResolvedSource(
        facts=SourceFacts(facts.id, facts.location, facts.os_type, None, facts.hyper_v_generation),
        disks=tuple(disks),
    )
