"""Disks over HTTP (and, through ``build_router``, snapshots): the wire format lives here.

Bodies are parsed whole into strict pydantic models (``extra="forbid"``, nested objects
too), so a wrong type anywhere is 400 naming the property, never a 500; the router turns
them into the domain's frozen commands (``DiskSpec``, ``DiskChange``) and renders the
``Disk`` it gets back. Status codes and LRO shapes per reference §3.2 (200|202, no 201).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, JobsDep, JsonBody, StoreDep
from azimg.platform.arm.lro import FAMILY_DISKS, accepted
from azimg.platform.arm.models import Body, Bool, Envelope, Int, PatchEnvelope, Str, parse
from azimg.platform.arm.paging import page
from azimg.platform.errors import NotImplementedFeature
from azimg.platform.resources import disk_access, disks
from azimg.platform.resources.common import check_subscription
from azimg.platform.resources.disks import (
    DISK,
    CreationData,
    Disk,
    DiskChange,
    DiskSpec,
    ImageRef,
    Kind,
)
from azimg.platform.store import Store

# --- request bodies (azure-mgmt-compute 39, api-version 2026-03-02; reference §4.2) ----------


class ImageDiskReference(Body):
    id: Str | None = None
    sharedGalleryImageId: Str | None = None
    communityGalleryImageId: Str | None = None
    lun: Int | None = None


class CreationDataBody(Body):
    createOption: Str | None = None
    storageAccountId: Str | None = None
    imageReference: ImageDiskReference | None = None
    galleryImageReference: ImageDiskReference | None = None
    sourceUri: Str | None = None
    sourceResourceId: Str | None = None
    sourceUniqueId: Str | None = None  # read-only, ignored
    uploadSizeBytes: Int | None = None
    logicalSectorSize: Int | None = None
    securityDataUri: Str | None = None
    securityMetadataUri: Str | None = None
    performancePlus: Bool | None = None
    elasticSanResourceId: Str | None = None
    provisionedBandwidthCopySpeed: Str | None = None
    instantAccessDurationMinutes: Int | None = None


class Encryption(Body):
    diskEncryptionSetId: Str | None = None
    type: Str | None = None


class SecurityProfile(Body):
    securityType: Str | None = None
    secureVMDiskEncryptionSetId: Str | None = None


class SupportedCapabilities(Body):
    diskControllerTypes: Str | None = None
    acceleratedNetwork: Bool | None = None
    architecture: Str | None = None
    supportedSecurityOption: Str | None = None


class PurchasePlan(Body):
    name: Str | None = None
    publisher: Str | None = None
    product: Str | None = None
    promotionCode: Str | None = None


class AvailabilityPolicy(Body):
    actionOnDiskDelay: Str | None = None


class Knobs(Body):
    """Properties stored and echoed as sent (performance and policy; no behaviour here)."""

    supportedCapabilities: SupportedCapabilities | None = None
    securityProfile: SecurityProfile | None = None
    purchasePlan: PurchasePlan | None = None
    encryption: Encryption | None = None
    networkAccessPolicy: Str | None = None
    publicNetworkAccess: Str | None = None
    dataAccessAuthMode: Str | None = None
    diskAccessId: Str | None = None
    maxShares: Int | None = None
    tier: Str | None = None
    burstingEnabled: Bool | None = None
    diskIOPSReadWrite: Int | None = None
    diskMBpsReadWrite: Int | None = None
    diskIOPSReadOnly: Int | None = None
    diskMBpsReadOnly: Int | None = None
    optimizedForFrequentAttach: Bool | None = None
    supportsHibernation: Bool | None = None
    availabilityPolicy: AvailabilityPolicy | None = None
    incremental: Bool | None = None


class DiskProperties(Knobs):
    creationData: CreationDataBody | None = None
    diskSizeGB: Int | None = None
    osType: Str | None = None
    hyperVGeneration: Str | None = None
    # read-only properties clients send back from a GET; ignored
    completionPercent: float | None = None
    provisioningState: Str | None = None
    diskState: Str | None = None
    diskSizeBytes: Int | None = None
    timeCreated: Str | None = None
    uniqueId: Str | None = None


class Sku(Body):
    name: Str | None = None
    tier: Str | None = None  # read-only


class DiskCreate(Envelope):
    sku: Sku | None = None
    zones: list[Str] | None = None
    properties: DiskProperties | None = None
    managedBy: Str | None = None  # read-only
    managedByExtended: list[Str] | None = None  # read-only


class DiskPatch(PatchEnvelope):
    sku: Sku | None = None
    properties: DiskProperties | None = None


class GrantAccessData(Body):
    access: Str | None = None
    durationInSeconds: Int | None = None
    getSecureVMGuestStateSAS: Bool | None = None
    fileFormat: Str | None = None


# --- wire → commands ---------------------------------------------------------------------------


def _image_ref(m: ImageDiskReference | None) -> ImageRef | None:
    if m is None:
        return None
    return ImageRef(
        id=m.id,
        shared_gallery_image_id=m.sharedGalleryImageId,
        community_gallery_image_id=m.communityGalleryImageId,
        lun=m.lun,
    )


def _creation(m: CreationDataBody | None) -> CreationData | None:
    if m is None:
        return None
    return CreationData(
        create_option=m.createOption,
        storage_account_id=m.storageAccountId,
        image_reference=_image_ref(m.imageReference),
        gallery_image_reference=_image_ref(m.galleryImageReference),
        source_uri=m.sourceUri,
        source_resource_id=m.sourceResourceId,
        upload_size_bytes=m.uploadSizeBytes,
        logical_sector_size=m.logicalSectorSize,
        security_data_uri=m.securityDataUri,
        security_metadata_uri=m.securityMetadataUri,
        performance_plus=m.performancePlus,
        elastic_san_resource_id=m.elasticSanResourceId,
        provisioned_bandwidth_copy_speed=m.provisionedBandwidthCopySpeed,
        instant_access_duration_minutes=m.instantAccessDurationMinutes,
    )


def _echo(props: DiskProperties | None) -> dict[str, Any]:
    """The knobs as sent (validated by ``Knobs``), for the domain to store unread."""
    if props is None:
        return {}
    return props.model_dump(include=set(Knobs.model_fields), exclude_none=True)


def spec_from(req: DiskCreate, *, subscription_id: str, resource_group: str, name: str) -> DiskSpec:
    props = req.properties
    return DiskSpec(
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        location=req.location,
        creation=_creation(props.creationData) if props else None,
        sku=req.sku.name if req.sku else None,
        tags=req.tags,
        zones=tuple(req.zones or ()),
        disk_size_gb=props.diskSizeGB if props else None,
        os_type=props.osType if props else None,
        hyper_v_generation=props.hyperVGeneration if props else None,
        echo=_echo(props),
    )


def change_from(
    req: DiskPatch, *, subscription_id: str, resource_group: str, name: str
) -> DiskChange:
    props = req.properties
    return DiskChange(
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        sku=req.sku.name if req.sku else None,
        tags=req.tags,
        disk_size_gb=props.diskSizeGB if props else None,
        os_type=props.osType if props else None,
        hyper_v_generation=props.hyperVGeneration if props else None,
        echo=_echo(props),
    )


# --- Disk → wire ---------------------------------------------------------------------------------

_CREATION_WIRE = {
    "create_option": "createOption",
    "storage_account_id": "storageAccountId",
    "image_reference": "imageReference",
    "gallery_image_reference": "galleryImageReference",
    "source_uri": "sourceUri",
    "source_resource_id": "sourceResourceId",
    "source_unique_id": "sourceUniqueId",
    "upload_size_bytes": "uploadSizeBytes",
    "logical_sector_size": "logicalSectorSize",
    "security_data_uri": "securityDataUri",
    "security_metadata_uri": "securityMetadataUri",
    "performance_plus": "performancePlus",
    "elastic_san_resource_id": "elasticSanResourceId",
    "provisioned_bandwidth_copy_speed": "provisionedBandwidthCopySpeed",
    "instant_access_duration_minutes": "instantAccessDurationMinutes",
    "id": "id",
    "shared_gallery_image_id": "sharedGalleryImageId",
    "community_gallery_image_id": "communityGalleryImageId",
    "lun": "lun",
}


def _wire(value: Any) -> Any:
    if isinstance(value, dict):
        return {_CREATION_WIRE[k]: _wire(v) for k, v in value.items() if v is not None}
    return value


def public(d: Disk) -> dict[str, Any]:
    is_disk = d.type == DISK.type
    props: dict[str, Any] = {
        "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
        "networkAccessPolicy": "AllowAll",
        "publicNetworkAccess": "Enabled",
        **d.echoed,
        "creationData": _wire(asdict(d.creation_data)),
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
        spec = spec_from(
            parse(DiskCreate, body),
            subscription_id=subscription_id,
            resource_group=resource_group,
            name=name,
        )
        d, op = disks.create_or_update(store, spec, app_id=caller.app_id, jobs=jobs, kind=kind)
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
        change = change_from(
            parse(DiskPatch, body),
            subscription_id=subscription_id,
            resource_group=resource_group,
            name=name,
        )
        return public(disks.update(store, change, app_id=caller.app_id, kind=kind))

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
        items = disks.list_by_resource_group(
            store, subscription_id=subscription_id, resource_group=resource_group, kind=kind
        )
        return page(request, [public(d) for d in items])

    @router.get(f"/subscriptions/{{subscription_id}}/providers/microsoft.compute/{collection}")
    def list_by_subscription(
        subscription_id: str, request: Request, store: StoreDep
    ) -> dict[str, Any]:
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
            raise NotImplementedFeature(
                "Guest-state SAS and VHDX export are not implemented by azimg.",
                target="fileFormat" if req.fileFormat else "getSecureVMGuestStateSAS",
            )
        op = disk_access.grant_access(
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
        op = disk_access.begin_revoke_access(
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
