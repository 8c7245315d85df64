"""Managed images over HTTP. PUT answers 201 (create, with the copy as an LRO) or 200
(update); the SDK refuses 202 for images (reference §3.2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, JobsDep, JsonBody, StoreDep
from azimg.platform.arm.lro import FAMILY_CRP, accepted
from azimg.platform.arm.models import parse
from azimg.platform.arm.paging import page
from azimg.platform.resources import images
from azimg.platform.resources.common import check_subscription
from azimg.platform.resources.images import Image
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["images"])
RG_BASE = (
    "/subscriptions/{subscription_id}/resourcegroups/{resource_group}/providers/"
    "microsoft.compute/images"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubResource(_Strict):
    id: str | None = None


class ImageOSDisk(_Strict):
    osType: str | None = None
    osState: str | None = None
    snapshot: SubResource | None = None
    managedDisk: SubResource | None = None
    blobUri: str | None = None
    caching: str | None = None
    diskSizeGB: int | None = None
    storageAccountType: str | None = None
    diskEncryptionSet: SubResource | None = None


class ImageStorageProfile(_Strict):
    osDisk: ImageOSDisk | None = None
    dataDisks: list[dict[str, Any]] | None = None
    zoneResilient: bool | None = None


class ImageProperties(_Strict):
    sourceVirtualMachine: SubResource | None = None
    storageProfile: ImageStorageProfile | None = None
    hyperVGeneration: str | None = None
    provisioningState: str | None = None  # read-only


class ImageCreate(_Strict):
    location: str | None = None
    tags: dict[str, Any] | None = None
    properties: ImageProperties | None = None
    id: str | None = None
    name: str | None = None
    type: str | None = None


class ImagePatch(_Strict):
    tags: dict[str, Any] | None = None
    properties: ImageProperties | None = None


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


def _props(model: ImageProperties | None) -> dict[str, Any]:
    return model.model_dump(exclude_none=True) if model else {}


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
    req = parse(ImageCreate, body)
    img, created = images.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        location=req.location,
        properties=_props(req.properties),
        app_id=caller.app_id,
        tags=req.tags,
    )
    if not created:
        return JSONResponse(public(img))
    op = jobs.submit(
        images.JOB_COPY,
        action="put",
        resource_id=img.id,
        location=img.location,
        params=images.copy_params(img, images.source_blob_of(store, img)),
    )
    return accepted(request, op, family=FAMILY_CRP, status_code=201, body=public(img))


@router.patch(RG_BASE + "/{name}")
def update(
    subscription_id: str,
    resource_group: str,
    name: str,
    body: JsonBody,
    store: StoreDep,
    caller: CallerDep,
) -> dict[str, Any]:
    req = parse(ImagePatch, body)
    current = images.get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name
    )
    if req.properties and req.properties.model_dump(exclude_none=True):
        from azimg.platform.errors import PropertyChangeNotAllowed

        raise PropertyChangeNotAllowed(
            "Only tags can be changed on a managed image.", target="properties"
        )
    img, _ = images.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        location=current.location,
        properties={},
        app_id=caller.app_id,
        tags=req.tags if req.tags is not None else dict(current.tags),
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
    check_subscription(store, subscription_id)
    return page(
        request,
        [public(i) for i in images.list_by_subscription(store, subscription_id=subscription_id)],
    )


RENDERERS = {"microsoft.compute/images": render}
