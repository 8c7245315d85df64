"""Gallery image versions: PUT (long-running: replication), PATCH, GET (``latest``,
``$expand=ReplicationStatus``), DELETE (long-running) and the list by definition (thin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm import gallery_bodies as b
from azimg.platform.arm.deps import (
    ARM_DEPENDENCIES,
    CallerDep,
    JobsDep,
    JsonBody,
    SettingsDep,
    StoreDep,
)
from azimg.platform.arm.gallery_images import BASE as IMAGES
from azimg.platform.arm.lro import FAMILY_GALLERY, accepted
from azimg.platform.arm.models import parse
from azimg.platform.arm.paging import page
from azimg.platform.gallery_errors import (
    NotImplementedByAzimg,
    NotSupportedByAzimg,
    RequiredParameterMissing,
    ValueNotAllowed,
)
from azimg.platform.resources import gallery_versions, replication
from azimg.platform.resources.common import enum_value
from azimg.platform.resources.gallery_versions import (
    DiskImageSpec,
    GalleryImageVersion,
    PublishingSpec,
    SafetySpec,
    StorageSpec,
    TargetRegionSpec,
    VersionPatch,
    VersionSpec,
)
from azimg.platform.resources.gallery_versions.rules import HOST_CACHING, TargetRegion
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["galleryImageVersions"])
BASE = IMAGES + "/{image}/versions"
EXPANDS = ("replicationstatus", "uefisettings")


def _disk_image(raw: b.OsDiskImage, *, lun: int | None, target: str) -> DiskImageSpec:
    source = raw.source or b.DiskImageSource()
    if source.uri or source.storageAccountId:
        raise NotSupportedByAzimg(
            target=f"{target}.source.uri",
            feature="Disk image sources by storage blob URI",
            plural=True,
            advice="Use a managed disk or snapshot id.",
        )
    return DiskImageSpec(
        lun=lun,
        source_id=source.id,
        host_caching=enum_value(
            raw.hostCaching or "None", HOST_CACHING, target=f"{target}.hostCaching"
        ),
    )


def _storage(raw: b.StorageProfile | None) -> StorageSpec | None:
    if raw is None:
        return None
    source = raw.source or b.VersionSource()
    for unsupported in ("virtualMachineId", "communityGalleryImageId"):
        if getattr(source, unsupported):
            raise NotImplementedByAzimg(
                target=f"storageProfile.source.{unsupported}",
                feature=f"storageProfile.source.{unsupported}",
            )
    data = []
    for i, d in enumerate(raw.dataDiskImages or []):
        target = f"storageProfile.dataDiskImages[{i}]"
        if d.lun is None or d.lun < 0:
            raise RequiredParameterMissing(target=f"{target}.lun", name=f"{target}.lun")
        data.append(_disk_image(d, lun=d.lun, target=target))
    return StorageSpec(
        source_id=source.id,
        os_disk_image=(
            _disk_image(raw.osDiskImage, lun=None, target="storageProfile.osDiskImage")
            if raw.osDiskImage is not None
            else None
        ),
        data_disk_images=tuple(data),
    )


def _region(raw: b.TargetRegion, i: int) -> TargetRegionSpec:
    target = f"publishingProfile.targetRegions[{i}]"
    if raw.encryption is not None:
        raise NotSupportedByAzimg(
            target=f"{target}.encryption", feature="Disk encryption sets", plural=True
        )
    if raw.additionalReplicaSets:
        raise NotSupportedByAzimg(
            target=f"{target}.additionalReplicaSets", feature="Additional replica sets", plural=True
        )
    return TargetRegionSpec(
        name=raw.name,
        regional_replica_count=raw.regionalReplicaCount,
        storage_account_type=raw.storageAccountType,
        exclude_from_latest=raw.excludeFromLatest,
    )


def _publishing(raw: b.PublishingProfile | None) -> PublishingSpec | None:
    if raw is None:
        return None
    if raw.targetExtendedLocations:
        raise NotSupportedByAzimg(
            target="publishingProfile.targetExtendedLocations",
            feature="Edge zones (targetExtendedLocations)",
            plural=True,
        )
    return PublishingSpec(
        target_regions=(
            tuple(_region(r, i) for i, r in enumerate(raw.targetRegions))
            if raw.targetRegions is not None
            else None
        ),
        replica_count=raw.replicaCount,
        exclude_from_latest=raw.excludeFromLatest,
        end_of_life_date=raw.endOfLifeDate,
        storage_account_type=raw.storageAccountType,
        storage_account_strategy=raw.storageAccountStrategy,
        replication_mode=raw.replicationMode,
    )


def _safety(raw: b.SafetyProfile | None) -> SafetySpec | None:
    if raw is None:
        return None
    return SafetySpec(
        allow_deletion_of_replicated_locations=raw.allowDeletionOfReplicatedLocations,
        block_deletion_before_end_of_life=raw.blockDeletionBeforeEndOfLife,
    )


def _refuse_unsupported(props: b.VersionProperties) -> None:
    for name in ("securityProfile", "restore", "imageMetadataProfiles"):
        if getattr(props, name):
            raise NotSupportedByAzimg(
                target=f"properties.{name}", feature=f"The property 'properties.{name}'"
            )


def to_spec(req: b.VersionCreate) -> VersionSpec:
    """A PUT body as the domain's command."""
    props = req.properties or b.VersionProperties()
    _refuse_unsupported(props)
    return VersionSpec(
        location=req.location,
        storage=_storage(props.storageProfile),
        publishing=_publishing(props.publishingProfile) or PublishingSpec(),
        safety=_safety(props.safetyProfile) or SafetySpec(),
        tags=req.tags,
    )


def to_patch(req: b.VersionPatch) -> VersionPatch:
    """A PATCH body as the domain's command: what is absent stays as it is."""
    props = req.properties or b.VersionProperties()
    _refuse_unsupported(props)
    return VersionPatch(
        storage=_storage(props.storageProfile),
        publishing=_publishing(props.publishingProfile),
        safety=_safety(props.safetyProfile),
        tags=req.tags,
    )


# --- responses -----------------------------------------------------------------------------


def _region_json(t: TargetRegion) -> dict[str, Any]:
    return {
        "name": t.name,
        "regionalReplicaCount": t.regional_replica_count,
        "storageAccountType": t.storage_account_type,
        "excludeFromLatest": t.exclude_from_latest,
    }


def to_properties(v: GalleryImageVersion, *, expand_replication: bool = False) -> dict[str, Any]:
    """The wire ``properties`` object."""
    os_disk = v.os_disk
    storage: dict[str, Any] = {
        "osDiskImage": {"sizeInGB": os_disk.size_in_gb, "hostCaching": os_disk.host_caching},
        "dataDiskImages": [
            {"lun": d.lun, "sizeInGB": d.size_in_gb, "hostCaching": d.host_caching}
            | ({"source": {"id": d.source_id}} if d.source_id else {})
            for d in v.data_disks
        ],
    }
    if v.source_id:
        storage["source"] = {"id": v.source_id}
    elif os_disk.source_id:
        storage["osDiskImage"]["source"] = {"id": os_disk.source_id}
    publishing: dict[str, Any] = {
        "targetRegions": [_region_json(t) for t in v.target_regions],
        "replicaCount": v.replica_count,
        "excludeFromLatest": v.exclude_from_latest,
        "publishedDate": v.published_date,
        "storageAccountType": v.storage_account_type,
        "replicationMode": v.replication_mode,
    }
    if v.end_of_life_date:
        publishing["endOfLifeDate"] = v.end_of_life_date
    props: dict[str, Any] = {
        "publishingProfile": publishing,
        "storageProfile": storage,
        "safetyProfile": {
            "allowDeletionOfReplicatedLocations": v.allow_deletion_of_replicated_locations,
            "blockDeletionBeforeEndOfLife": v.block_deletion_before_end_of_life,
            "reportedForPolicyViolation": False,
        },
        "provisioningState": v.provisioning_state,
    }
    if expand_replication:
        status = v.status
        props["replicationStatus"] = {
            "aggregatedState": replication.aggregate(status).value,
            "summary": [
                {
                    "region": gallery_versions.display_region(v, s.region),
                    "state": s.state.value,
                    "progress": s.progress,
                }
                | ({"details": s.details} if s.details else {})
                for s in status
            ],
        }
    return props


def public(v: GalleryImageVersion, *, expand_replication: bool = False) -> dict[str, Any]:
    return {
        "id": v.id,
        "name": v.name,
        "type": gallery_versions.VERSION_TYPE,
        "location": v.location,
        "tags": dict(v.tags),
        "systemData": dict(v.system_data),
        "properties": to_properties(v, expand_replication=expand_replication),
    }


def render(store: Store, rid: str) -> dict[str, Any]:
    return public(gallery_versions.get_by_id(store, rid))


def _with_retry_after(body: dict[str, Any]) -> Response:
    """While replicating, ``Retry-After: 1``: PATCH (200 only) leaves the SDK polling this
    resource by its ``provisioningState``, every 30 s unless told otherwise."""
    busy = body["properties"]["provisioningState"] in ("Creating", "Updating", "Deleting")
    return JSONResponse(body, headers={"Retry-After": "1"} if busy else None)


def _expand(request: Request) -> bool:
    raw = request.query_params.get("$expand")
    if raw is None:
        return False
    if raw.lower() not in EXPANDS:
        raise ValueNotAllowed(
            target="$expand", value=raw, name="$expand", allowed="ReplicationStatus, UefiSettings"
        )
    return raw.lower() == "replicationstatus"


@router.put(BASE + "/{name}")
def create_or_update(
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
    body: JsonBody,
    request: Request,
    store: StoreDep,
    jobs: JobsDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> Response:
    put = gallery_versions.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=name,
        spec=to_spec(parse(b.VersionCreate, body)),
        caller=caller.app_id,
        jobs=jobs,
        replication_rate=settings.replication_rate,
    )
    status = 201 if put.created else 200
    if put.operation is None:
        return JSONResponse(public(put.version), status_code=status)
    return accepted(
        request, put.operation, family=FAMILY_GALLERY, status_code=status, body=public(put.version)
    )


@router.patch(BASE + "/{name}")
def update(
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
    body: JsonBody,
    store: StoreDep,
    jobs: JobsDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> Response:
    """200 only (the SDK accepts nothing else); with ``Updating`` it polls the resource."""
    put = gallery_versions.update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=name,
        patch=to_patch(parse(b.VersionPatch, body)),
        caller=caller.app_id,
        jobs=jobs,
        replication_rate=settings.replication_rate,
    )
    return _with_retry_after(public(put.version))


@router.get(BASE + "/{name}")
def get(
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
    request: Request,
    store: StoreDep,
) -> Response:
    version = gallery_versions.get(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=name,
    )
    return _with_retry_after(public(version, expand_replication=_expand(request)))


@router.delete(BASE + "/{name}")
def delete(
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    name: str,
    request: Request,
    store: StoreDep,
    jobs: JobsDep,
) -> Response:
    op = gallery_versions.begin_delete(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=name,
        jobs=jobs,
    )
    if op is None:
        return Response(status_code=204)
    return accepted(request, op, family=FAMILY_GALLERY)


@router.get(BASE)
def list_by_image(
    subscription_id: str,
    resource_group: str,
    gallery: str,
    image: str,
    request: Request,
    store: StoreDep,
) -> dict[str, Any]:
    expand = _expand(request)
    items = gallery_versions.list_by_image(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
    )
    return page(request, [public(v, expand_replication=expand) for v in items])
