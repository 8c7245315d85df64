"""Where a new version's bytes come from: a managed image, another version, a VM, or
managed disks / snapshots, with what each source says about its OS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from azimg.platform.errors import (
    InvalidParameter,
    NotImplementedFeature,
    OperationNotAllowed,
    PlatformError,
    ResourceNotFound,
)
from azimg.platform.resources import gallery_images, replication
from azimg.platform.resources.gallery_versions.commands import DiskImageSpec
from azimg.platform.resources.gallery_versions.model import VERSION_TYPE, SourceDisk, get_by_id
from azimg.platform.resources.gallery_versions.rules import (
    VM_TYPE,
    SourceFacts,
    check_source_location,
    check_storage_profile,
    resource_type_of,
)
from azimg.platform.settings import normalise_location
from azimg.platform.store import Store


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
