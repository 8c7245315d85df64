"""Gallery image version operations: create or update, PATCH, delete.

A PUT or PATCH validates the typed request against the rules, records the version with its
replicas queued, and says whether it was created; the copying is ``JOB_REPLICATE``
(``runner.py``). ``replicationMode: Shallow`` is accepted for the source region only and still
makes a copy (a reflink where the filesystem allows), so deleting the source never breaks the
version.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from azimg.platform.gallery_errors import (
    DataDisksChangeNotAllowed,
    PropertyChange,
    ReplicatedRegionsRemoval,
    RequiredParameterMissing,
    ResourceExistsElsewhere,
    ShallowReplicationSourceRegionOnly,
    StorageTypeAndStrategy,
    VersionMarkedForDeletion,
    VersionReplicating,
)
from azimg.platform.ids import utc_now
from azimg.platform.jobs import Jobs
from azimg.platform.resources import gallery_images, replication
from azimg.platform.resources.common import (
    check_location,
    check_tags,
    enum_value,
    system_data,
)
from azimg.platform.resources.gallery_versions.capture import resolve_source
from azimg.platform.resources.gallery_versions.commands import (
    PublishingSpec,
    SafetySpec,
    StorageSpec,
    TargetRegionSpec,
    VersionPatch,
    VersionSpec,
)
from azimg.platform.resources.gallery_versions.model import (
    JOB_DELETE,
    JOB_REPLICATE,
    VERSION_TYPE,
    GalleryImageVersion,
    definition,
    from_doc,
    get,
    replica_key_prefix,
    to_doc,
    version_id,
)
from azimg.platform.resources.gallery_versions.rules import (
    GALLERY_STORAGE_ACCOUNT_TYPES,
    REPLICATION_MODES,
    STORAGE_ACCOUNT_STRATEGIES,
    DefinitionFacts,
    TargetRegion,
    VersionNumber,
    check_deletable,
    check_source_matches_definition,
    resolve_target_regions,
)
from azimg.platform.settings import normalise_location
from azimg.platform.store import Operation, Store


@dataclass(frozen=True)
class Put:
    """What a PUT or PATCH did: the version, whether it is new, its replication (if any)."""

    version: GalleryImageVersion
    created: bool
    operation: Operation | None


def _eol(value: str | None) -> str | None:
    if value is None:
        return None
    return gallery_images.parse_date(value, "publishingProfile.endOfLifeDate").strftime(
        "%Y-%m-%dT%H:%M:%S+00:00"
    )


def _changed(prop: str) -> PropertyChange:
    return PropertyChange(
        target=f"properties.{prop}", prop=f"galleryImageVersion.properties.{prop}"
    )


def _account_type(pub: PublishingSpec) -> str | None:
    """``storageAccountType``, or the one ``storageAccountStrategy`` stands for."""
    if pub.storage_account_type and pub.storage_account_strategy:
        raise StorageTypeAndStrategy(target="publishingProfile.storageAccountStrategy")
    if pub.storage_account_strategy is None:
        return pub.storage_account_type
    strategy = enum_value(
        pub.storage_account_strategy,
        STORAGE_ACCOUNT_STRATEGIES,
        target="publishingProfile.storageAccountStrategy",
    )
    return "Standard_ZRS" if strategy == "PreferStandard_ZRS" else "Standard_LRS"


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
    spec: VersionSpec,
    caller: str,
    jobs: Jobs,
    replication_rate: int | None = None,
) -> Put:
    """Validate, record the version with its replicas queued, and start its replication.

    The document and ``JOB_REPLICATE``'s operation are written in one transaction, so a
    crash never leaves a version Creating with nothing to finish it.
    """
    parent = definition(store, subscription_id, resource_group, gallery, image)
    VersionNumber.parse(name)
    region = check_location(store, spec.location, rtype=VERSION_TYPE)
    assert spec.location is not None  # checked just above
    clean_tags = check_tags(spec.tags)
    pub = spec.publishing
    account_type = _account_type(pub)
    targets = resolve_target_regions(
        location=spec.location,
        target_regions=pub.target_regions,
        replica_count=pub.replica_count,
        storage_account_type=account_type,
        known_regions=store.regions,
    )
    mode = enum_value(
        pub.replication_mode or "Full",
        REPLICATION_MODES,
        target="publishingProfile.replicationMode",
    )
    if mode == "Shallow" and [t.key for t in targets] != [region]:
        raise ShallowReplicationSourceRegionOnly(target="publishingProfile.targetRegions")
    safety = spec.safety
    allow_region_removal = safety.allow_deletion_of_replicated_locations is not False
    block_before_eol = bool(safety.block_deletion_before_end_of_life)
    storage = spec.storage
    if storage is None:
        raise RequiredParameterMissing(target="storageProfile", name="storageProfile")
    rid = version_id(subscription_id, resource_group, gallery, image, name)
    doc = store.meta.get(rid)
    current = from_doc(doc) if doc is not None and doc.type == VERSION_TYPE else None

    if current is not None:
        _check_update(current, region=region, storage=storage, mode=mode, targets=targets)
        if account_type is not None and current.storage_account_type != enum_value(
            account_type, GALLERY_STORAGE_ACCOUNT_TYPES, target="storageAccountType"
        ):
            raise _changed("publishingProfile.storageAccountType")
        disks = current.disks
        published = current.published_date
        resolved_source_id = current.source_id
    else:
        resolved = resolve_source(
            store,
            location=region,
            source_id=storage.source_id,
            os_disk_image=storage.os_disk_image,
            data_disk_images=storage.data_disk_images,
        )
        check_source_matches_definition(
            resolved.facts,
            DefinitionFacts(
                os_type=parent.os_type,
                os_state=parent.os_state,
                hyper_v_generation=parent.hyper_v_generation,
            ),
        )
        disks = resolved.disks
        published = utc_now()
        resolved_source_id = resolved.facts.id if storage.source_id else None

    keep, drop = replication.plan_replicas(
        [(t.key, t.regional_replica_count) for t in targets],
        [(d.lun, d.blob, d.size, d.format) for d in disks],
        key_prefix=replica_key_prefix(rid),
        existing=current.replicas if current else (),
    )
    # A re-PUT retries what failed, as Azure suggests ("trigger the command again").
    keep = tuple(
        replace(r, state=replication.ReplicaState.QUEUED, copied=0, details=None)
        if r.state is replication.ReplicaState.FAILED
        else r
        for r in keep
    )
    version = GalleryImageVersion(
        id=current.id if current else rid,
        name=current.name if current else name,
        location=current.location if current else region,
        target_regions=targets,
        replica_count=pub.replica_count or 1,
        storage_account_type=current.storage_account_type
        if current
        else (
            targets[0].storage_account_type
            if account_type is None
            else enum_value(
                account_type, GALLERY_STORAGE_ACCOUNT_TYPES, target="storageAccountType"
            )
        ),
        replication_mode=mode,
        exclude_from_latest=bool(pub.exclude_from_latest),
        end_of_life_date=_eol(pub.end_of_life_date),
        published_date=published,
        source_id=resolved_source_id,
        disks=disks,
        replicas=keep,
        allow_deletion_of_replicated_locations=allow_region_removal,
        block_deletion_before_end_of_life=block_before_eol,
        updating=current is not None,
        tags=clean_tags,
        system_data=system_data(caller, current.system_data.get("createdAt") if current else None),
    )
    op = _write(store, jobs, version, etag=doc.etag if current else None, rate=replication_rate)
    for gone in drop:  # only once the document no longer names them
        for d in gone.disks:
            store.blobs.delete(d.target)
    return Put(version, current is None, op)


def _write(
    store: Store, jobs: Jobs, version: GalleryImageVersion, *, etag: str | None, rate: int | None
) -> Operation | None:
    """Save the version (under the ETag it was read with, or as new) and, when it has
    replicas to copy, its replication operation in the same transaction."""
    doc = to_doc(version)
    if version.provisioning_state == "Succeeded":
        store.meta.put(doc, if_match=etag, if_none_match=etag is None)
        return None
    return jobs.submit(
        JOB_REPLICATE,
        action="put",
        resource_id=version.id,
        location=version.location,
        params={"rate": rate},
        document=doc,
        if_match=etag,
        if_none_match=etag is None,
    )


def _check_update(
    current: GalleryImageVersion,
    *,
    region: str,
    storage: StorageSpec,
    mode: str,
    targets: tuple[TargetRegion, ...],
) -> None:
    """What an existing version allows: not while busy, same region, source and mode."""
    if current.deleting:
        raise VersionMarkedForDeletion(name=current.name)
    if current.provisioning_state in ("Creating", "Updating"):
        raise VersionReplicating(name=current.name)
    if normalise_location(current.location) != region:
        raise ResourceExistsElsewhere(
            target="location",
            name=current.name,
            existing=current.location,
            where="",
            location=region,
        )
    _check_same_source(current, storage)
    if mode != current.replication_mode:
        raise _changed("publishingProfile.replicationMode")
    removed = {t.key for t in current.target_regions} - {t.key for t in targets}
    if removed and not current.allow_deletion_of_replicated_locations:
        raise ReplicatedRegionsRemoval(regions=", ".join(sorted(removed)))


def _check_same_source(current: GalleryImageVersion, storage: StorageSpec) -> None:
    """An update may repeat the source or leave it out, never change it."""
    source_id, os_spec = storage.source_id, storage.os_disk_image
    if source_id and (current.source_id or "").lower() != source_id.lower():
        raise _changed("storageProfile.source.id")
    current_os = current.os_disk.source_id
    if os_spec and os_spec.source_id and (current_os or "").lower() != os_spec.source_id.lower():
        raise _changed("storageProfile.osDiskImage.source.id")
    known = {d.lun: d for d in current.data_disks}
    for spec in storage.data_disk_images:
        old = known.get(spec.lun)
        if old is None or (
            spec.source_id and (old.source_id or "").lower() != spec.source_id.lower()
        ):
            raise DataDisksChangeNotAllowed(target="storageProfile.dataDiskImages")


def _merged_publishing(
    current: GalleryImageVersion, given: PublishingSpec | None
) -> PublishingSpec:
    """PATCH: each publishing value given replaces the version's, the others stay."""
    p = given or PublishingSpec()
    regions = p.target_regions
    if regions is None:
        regions = tuple(
            TargetRegionSpec(
                name=t.name,
                regional_replica_count=t.regional_replica_count,
                storage_account_type=t.storage_account_type,
                exclude_from_latest=t.exclude_from_latest,
            )
            for t in current.target_regions
        )
    account_type = p.storage_account_type
    if account_type is None and p.storage_account_strategy is None:
        account_type = current.storage_account_type
    return PublishingSpec(
        target_regions=regions,
        replica_count=current.replica_count if p.replica_count is None else p.replica_count,
        exclude_from_latest=(
            current.exclude_from_latest if p.exclude_from_latest is None else p.exclude_from_latest
        ),
        end_of_life_date=p.end_of_life_date or current.end_of_life_date,
        storage_account_type=account_type,
        storage_account_strategy=p.storage_account_strategy,
        replication_mode=p.replication_mode or current.replication_mode,
    )


def update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
    patch: VersionPatch,
    caller: str,
    jobs: Jobs,
    replication_rate: int | None = None,
) -> Put:
    """PATCH: the given parts of the publishing and safety profiles change, the rest stays."""
    current = get(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=name,
    )
    safety = patch.safety or SafetySpec()
    spec = VersionSpec(
        location=current.location,
        storage=patch.storage or StorageSpec(),
        publishing=_merged_publishing(current, patch.publishing),
        safety=SafetySpec(
            allow_deletion_of_replicated_locations=(
                current.allow_deletion_of_replicated_locations
                if safety.allow_deletion_of_replicated_locations is None
                else safety.allow_deletion_of_replicated_locations
            ),
            block_deletion_before_end_of_life=(
                current.block_deletion_before_end_of_life
                if safety.block_deletion_before_end_of_life is None
                else safety.block_deletion_before_end_of_life
            ),
        ),
        tags=patch.tags if patch.tags is not None else current.tags,
    )
    return create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=current.name,
        spec=spec,
        caller=caller,
        jobs=jobs,
        replication_rate=replication_rate,
    )


def begin_delete(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
    jobs: Jobs,
    now: datetime | None = None,
) -> Operation | None:
    """Mark the version Deleting and start ``JOB_DELETE`` (which stops replication and frees
    every replica) in one transaction; None when it does not exist (deletes are idempotent)."""
    definition(store, subscription_id, resource_group, gallery, image)
    rid = version_id(subscription_id, resource_group, gallery, image, name)
    doc = store.meta.get(rid)
    if doc is None or doc.type != VERSION_TYPE:
        return None
    current = from_doc(doc)
    eol = (
        gallery_images.parse_date(current.end_of_life_date, "endOfLifeDate")
        if current.end_of_life_date
        else None
    )
    check_deletable(
        block_before_end_of_life=current.block_deletion_before_end_of_life,
        end_of_life=eol,
        now=now or datetime.now(UTC),
    )
    return jobs.submit(
        JOB_DELETE,
        action="delete",
        resource_id=current.id,
        location=current.location,
        document=to_doc(replace(current, deleting=True)),
        if_match=doc.etag,
    )


def finish_delete(store: Store, rid: str) -> None:
    """Unlink the version's replica blobs and drop its document.

    Only the version's own names go: a VM disk cloned from a replica holds its own link to
    the bytes (NOTES-gallery.md), so the bytes it still reads stay until that disk goes.
    """
    doc = store.meta.get(rid)
    if doc is None:
        return
    for blob in doc.blobs:
        store.blobs.delete(blob)
    store.meta.delete(rid)
