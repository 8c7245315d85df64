"""Managed images over HTTP. PUT answers 201 (create, with the copy as an LRO) or 200
(update); the SDK refuses 202 for images (reference §3.2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, JobsDep, JsonBody, StoreDep
from azimg.platform.arm.lro import FAMILY_CRP, accepted
from azimg.platform.arm.models import Body, Bool, Envelope, Int, PatchEnvelope, Str, parse
from azimg.platform.arm.paging import page
from azimg.platform.gallery_errors import (
    NotImplementedByAzimg,
    NotSupportedByAzimg,
    PropertyChange,
)
from azimg.platform.resources import images
from azimg.platform.resources.images import Image, ImageSpec, OsDiskSpec
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["images"])
RG_BASE = (
    "/subscriptions/{subscription_id}/resourcegroups/{resource_group}/providers/"
    "microsoft.compute/images"
)


class SubResource(Body):
    id: Str | None = None


class ImageDisk(Body):
    """What ``ImageOSDisk`` and ``ImageDataDisk`` share."""

    snapshot: SubResource | None = None
    managedDisk: SubResource | None = None
    blobUri: Str | None = None
    caching: Str | None = None
    diskSizeGB: Int | None = None
    storageAccountType: Str | None = None
    diskEncryptionSet: SubResource | None = None


class ImageOSDisk(ImageDisk):
    osType: Str | None = None
    osState: Str | None = None


class ImageDataDisk(ImageDisk):
    lun: Int | None = None


class ImageStorageProfile(Body):
    osDisk: ImageOSDisk | None = None
    dataDisks: list[ImageDataDisk] | None = None
    zoneResilient: Bool | None = None


class ExtendedLocation(Body):
    name: Str | None = None
    type: Str | None = None


class ImageProperties(Body):
    sourceVirtualMachine: SubResource | None = None
    storageProfile: ImageStorageProfile | None = None
    hyperVGeneration: Str | None = None
    provisioningState: Str | None = None  # read-only


class ImageCreate(Envelope):
    properties: ImageProperties | None = None
    extendedLocation: ExtendedLocation | None = None


class ImagePatch(PatchEnvelope):
    properties: ImageProperties | None = None


def to_spec(req: ImageCreate) -> ImageSpec:
    """A PUT body as the domain's command; what azimg does not implement is refused here."""
    if req.extendedLocation is not None:
        raise NotSupportedByAzimg(
            target="extendedLocation", feature="Edge zones (extendedLocation)", plural=True
        )
    props = req.properties or ImageProperties()
    profile = props.storageProfile or ImageStorageProfile()
    if profile.dataDisks:
        raise NotImplementedByAzimg(
            target="properties.storageProfile.dataDisks",
            feature="Managed images with data disks",
            plural=True,
        )
    os_disk = profile.osDisk or ImageOSDisk()
    if os_disk.diskEncryptionSet is not None:
        raise NotSupportedByAzimg(
            target="properties.storageProfile.osDisk.diskEncryptionSet",
            feature="Disk encryption sets",
            plural=True,
        )
    return ImageSpec(
        location=req.location,
        os_disk=OsDiskSpec(
            os_type=os_disk.osType,
            os_state=os_disk.osState,
            managed_disk_id=os_disk.managedDisk.id if os_disk.managedDisk else None,
            snapshot_id=os_disk.snapshot.id if os_disk.snapshot else None,
            blob_uri=os_disk.blobUri,
            caching=os_disk.caching,
            storage_account_type=os_disk.storageAccountType,
        ),
        source_virtual_machine_id=(
            props.sourceVirtualMachine.id if props.sourceVirtualMachine else None
        ),
        hyper_v_generation=props.hyperVGeneration,
        zone_resilient=profile.zoneResilient,
        tags=req.tags,
    )


def public(img: Image) -> dict[str, Any]:
    os_disk: dict[str, Any] = {
        "osType": img.os_type,
        "osState": img.os_state,
        "diskSizeGB": img.os_disk_size_gb,
        **img.source,
    }
    if img.caching:
        os_disk["caching"] = img.caching
    if img.storage_account_type:
        os_disk["storageAccountType"] = img.storage_account_type
    props: dict[str, Any] = {
        "storageProfile": {"osDisk": os_disk, "dataDisks": [], "zoneResilient": img.zone_resilient},
        "provisioningState": img.provisioning_state,
        "hyperVGeneration": img.hyper_v_generation,
    }
    if img.source_virtual_machine:
        props["sourceVirtualMachine"] = {"id": img.source_virtual_machine}
    return {
        "id": img.id,
        "name": img.name,
        "type": images.TYPE,
        "location": img.location,
        "tags": dict(img.tags),
        "systemData": dict(img.system_data),
        "properties": props,
    }


def render(store: Store, rid: str) -> dict[str, Any]:
    return public(images.get_by_id(store, rid))


@router.put(RG_BASE + "/{name}")
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
    img, op = images.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        spec=to_spec(parse(ImageCreate, body)),
        app_id=caller.app_id,
        jobs=jobs,
    )
    if op is None:
        return JSONResponse(public(img))
    return accepted(request, op, family=FAMILY_CRP, status_code=201, body=public(img))


@router.patch(RG_BASE + "/{name}")
def update(
    subscription_id: str,
    resource_group: str,
    name: str,
    body: JsonBody,
    store: StoreDep,
    jobs: JobsDep,
    caller: CallerDep,
) -> dict[str, Any]:
    req = parse(ImagePatch, body)
    if req.properties and req.properties.model_dump(exclude_none=True):
        raise PropertyChange(target="properties", prop="properties")
    img = images.update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        tags=req.tags,
        app_id=caller.app_id,
        jobs=jobs,
    )
    return public(img)


@router.get(RG_BASE + "/{name}")
async def get(subscription_id: str, resource_group: str, name: str, store: StoreDep) -> Response:
    img = images.get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name
    )
    return JSONResponse(public(img))


@router.delete(RG_BASE + "/{name}")
def delete(subscription_id: str, resource_group: str, name: str, store: StoreDep) -> Response:
    deleted = images.delete(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name
    )
    return Response(status_code=200 if deleted else 204)


@router.get(RG_BASE)
def list_by_resource_group(
    subscription_id: str, resource_group: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    items = images.list_by_resource_group(
        store, subscription_id=subscription_id, resource_group=resource_group
    )
    return page(request, [public(i) for i in items])


@router.get("/subscriptions/{subscription_id}/providers/microsoft.compute/images")
def list_by_subscription(subscription_id: str, request: Request, store: StoreDep) -> dict[str, Any]:
    return page(
        request,
        [public(i) for i in images.list_by_subscription(store, subscription_id=subscription_id)],
    )
