"""Disks over HTTP (and, through ``build_router``, snapshots): thin calls into
``platform.resources.disks``; status codes and LRO shapes per reference §3.2 (no 201)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, JobsDep, JsonBody, StoreDep
from azimg.platform.arm.lro import FAMILY_DISKS, accepted
from azimg.platform.arm.models import parse
from azimg.platform.resources import disks
from azimg.platform.resources.disks import DISK, Disk, Kind
from azimg.platform.store import Store


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageDiskReference(_Strict):
    id: str | None = None
    sharedGalleryImageId: str | None = None
    communityGalleryImageId: str | None = None
    lun: int | None = None


class CreationData(_Strict):
    createOption: str | None = None
    storageAccountId: str | None = None
    imageReference: ImageDiskReference | None = None
    galleryImageReference: ImageDiskReference | None = None
    sourceUri: str | None = None
    sourceResourceId: str | None = None
    sourceUniqueId: str | None = None  # read-only, ignored
    uploadSizeBytes: int | None = None
    logicalSectorSize: int | None = None
    securityDataUri: str | None = None
    securityMetadataUri: str | None = None
    performancePlus: bool | None = None
    elasticSanResourceId: str | None = None
    provisionedBandwidthCopySpeed: str | None = None
    instantAccessDurationMinutes: int | None = None


class DiskProperties(_Strict):
    creationData: CreationData | None = None
    diskSizeGB: int | None = None
    osType: str | None = None
    hyperVGeneration: str | None = None
    supportedCapabilities: dict[str, Any] | None = None
    securityProfile: dict[str, Any] | None = None
    purchasePlan: dict[str, Any] | None = None
    encryption: dict[str, Any] | None = None
    networkAccessPolicy: str | None = None
    publicNetworkAccess: str | None = None
    dataAccessAuthMode: str | None = None
    diskAccessId: str | None = None
    maxShares: int | None = None
    tier: str | None = None
    burstingEnabled: bool | None = None
    diskIOPSReadWrite: int | None = None
    diskMBpsReadWrite: int | None = None
    diskIOPSReadOnly: int | None = None
    diskMBpsReadOnly: int | None = None
    optimizedForFrequentAttach: bool | None = None
    supportsHibernation: bool | None = None
    availabilityPolicy: dict[str, Any] | None = None
    incremental: bool | None = None
    completionPercent: float | None = None
    # read-only properties clients may send back from a GET; ignored
    provisioningState: str | None = None
    diskState: str | None = None
    diskSizeBytes: int | None = None
    timeCreated: str | None = None
    uniqueId: str | None = None


class Sku(_Strict):
    name: str | None = None
    tier: str | None = None  # read-only


class DiskCreate(_Strict):
    location: str | None = None
    tags: dict[str, Any] | None = None
    sku: Sku | None = None
    zones: list[str] | None = None
    properties: DiskProperties | None = None
    # read-only envelope fields
    id: str | None = None
    name: str | None = None
    type: str | None = None
    managedBy: str | None = None
    managedByExtended: list[str] | None = None
    systemData: dict[str, Any] | None = None


class DiskPatch(_Strict):
    tags: dict[str, Any] | None = None
    sku: Sku | None = None
    properties: DiskProperties | None = None


class GrantAccessData(_Strict):
    access: str | None = None
    durationInSeconds: int | None = None
    getSecureVMGuestStateSAS: bool | None = None
    fileFormat: str | None = None


def _properties(model: DiskProperties | None) -> dict[str, Any]:
    if model is None:
        return {}
    return model.model_dump(exclude_none=True)


def public(d: Disk) -> dict[str, Any]:
    is_disk = d.type == DISK.type
    props: dict[str, Any] = {
        "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
        "networkAccessPolicy": "AllowAll",
        "publicNetworkAccess": "Enabled",
        **d.echoed,
        "creationData": dict(d.creation_data),
        "diskSizeGB": d.disk_size_gb,
        "diskSizeBytes": d.disk_size_bytes,
        "uniqueId": d.unique_id,
        "provisioningState": d.provisioning_state,
        "diskState": d.disk_state,
        "timeCreated": d.time_created,
    }
    if d.os_type:
        props["osType"] = d.os_type
    if d.hyper_v_generation:
        props["hyperVGeneration"] = d.hyper_v_generation
    if not is_disk:
        props.setdefault("incremental", False)
    tier = "Premium" if d.sku.startswith("Premium") else "Standard"
    body: dict[str, Any] = {
        "id": d.id,
        "name": d.name,
        "type": d.type,
        "location": d.location,
        "tags": dict(d.tags),
        "sku": {"name": d.sku, "tier": tier},
        "systemData": dict(d.system_data),
        "properties": props,
    }
    if d.zones:
        body["zones"] = list(d.zones)
    if is_disk and d.managed_by:
        body["managedBy"] = d.managed_by
    return body


def blob_base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/blob"


def build_router(kind: Kind, collection: str) -> APIRouter:
    """The routes of a disk-like type; ``collection`` is its lower-case path word."""
    router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=[collection])
    rg_base = (
        "/subscriptions/{subscription_id}/resourcegroups/{resource_group}/providers/"
        f"microsoft.compute/{collection}"
    )

    @router.put(rg_base + "/{name}")
    def create_or_update(
        subscription_id: str,
        resource_group: str,
        name: str,
        body: JsonBody,
        request: Request,
        store: StoreDep,
        jobs: JobsDep,
        caller: CallerDep,
    ) -> Response:
        req = parse(DiskCreate, body)
        d, op = disks.create_or_update(
            store,
            subscription_id=subscription_id,
            resource_group=resource_group,
            name=name,
            location=req.location,
            properties=_properties(req.properties),
            app_id=caller.app_id,
            jobs=jobs,
            sku=req.sku.name if req.sku else None,
            tags=req.tags,
            zones=tuple(req.zones or ()),
            kind=kind,
        )
        if op is None:
            return JSONResponse(public(d))
        return accepted(request, op, family=FAMILY_DISKS, body=public(d))

    @router.patch(rg_base + "/{name}")
    def update(
        subscription_id: str,
        resource_group: str,
        name: str,
        body: JsonBody,
        store: StoreDep,
        caller: CallerDep,
    ) -> dict[str, Any]:
        req = parse(DiskPatch, body)
        d = disks.update(
            store,
            subscription_id=subscription_id,
            resource_group=resource_group,
            name=name,
            properties=_properties(req.properties),
            app_id=caller.app_id,
            sku=req.sku.name if req.sku else None,
            tags=req.tags,
            kind=kind,
        )
        return public(d)

    @router.get(rg_base + "/{name}")
    async def get(
        subscription_id: str, resource_group: str, name: str, store: StoreDep
    ) -> Response:
        d = disks.get(
            store,
            subscription_id=subscription_id,
            resource_group=resource_group,
            name=name,
            kind=kind,
        )
        return JSONResponse(public(d))

    @router.delete(rg_base + "/{name}")
    def delete(subscription_id: str, resource_group: str, name: str, store: StoreDep) -> Response:
        deleted = disks.delete(
            store,
            subscription_id=subscription_id,
            resource_group=resource_group,
            name=name,
            kind=kind,
        )
        return Response(status_code=200 if deleted else 204)

    @router.get(rg_base)
    def list_by_resource_group(
        subscription_id: str, resource_group: str, request: Request, store: StoreDep
    ) -> dict[str, Any]:
        from azimg.platform.arm.paging import page

        items = disks.list_by_resource_group(
            store, subscription_id=subscription_id, resource_group=resource_group, kind=kind
        )
        return page(request, [public(d) for d in items])

    @router.get(f"/subscriptions/{{subscription_id}}/providers/microsoft.compute/{collection}")
    def list_by_subscription(
        subscription_id: str, request: Request, store: StoreDep
    ) -> dict[str, Any]:
        from azimg.platform.arm.paging import page
        from azimg.platform.resources.common import check_subscription

        check_subscription(store, subscription_id)
        items = disks.list_by_subscription(store, subscription_id=subscription_id, kind=kind)
        return page(request, [public(d) for d in items])

    @router.post(rg_base + "/{name}/begingetaccess")
    def begin_get_access(
        subscription_id: str,
        resource_group: str,
        name: str,
        body: JsonBody,
        request: Request,
        store: StoreDep,
        jobs: JobsDep,
    ) -> Response:
        req = parse(GrantAccessData, body)
        if req.getSecureVMGuestStateSAS or (req.fileFormat or "VHD").upper() != "VHD":
            from azimg.platform.errors import NotImplementedFeature

            raise NotImplementedFeature(
                "Guest-state SAS and VHDX export are not implemented by azimg.",
                target="fileFormat" if req.fileFormat else "getSecureVMGuestStateSAS",
            )
        op = disks.grant_access(
            store,
            subscription_id=subscription_id,
            resource_group=resource_group,
            name=name,
            access=req.access,
            duration_seconds=req.durationInSeconds,
            blob_base_url=blob_base_url(request),
            jobs=jobs,
            kind=kind,
        )
        return accepted(request, op, family=FAMILY_DISKS)

    @router.post(rg_base + "/{name}/endgetaccess")
    def end_get_access(
        subscription_id: str,
        resource_group: str,
        name: str,
        request: Request,
        store: StoreDep,
        jobs: JobsDep,
    ) -> Response:
        op = disks.begin_revoke_access(
            store,
            jobs=jobs,
            subscription_id=subscription_id,
            resource_group=resource_group,
            name=name,
            kind=kind,
        )
        return accepted(request, op, family=FAMILY_DISKS)

    return router


def render(store: Store, rid: str) -> dict[str, Any]:
    return public(disks.get_by_id(store, rid, DISK))


router = build_router(DISK, "disks")
