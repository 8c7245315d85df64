"""Gallery image definitions: PUT/PATCH/GET/DELETE and the list by gallery (thin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, JsonBody, StoreDep
from azimg.platform.arm.galleries import BASE as GALLERIES
from azimg.platform.arm.models import parse
from azimg.platform.arm.paging import page
from azimg.platform.resources import gallery_images
from azimg.platform.resources.gallery_images import GalleryImage
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["galleryImages"])
BASE = GALLERIES + "/{gallery}/images"


class GalleryImageProperties(BaseModel):
    model_config = ConfigDict(extra="forbid")
    osType: Any = None
    osState: Any = None
    hyperVGeneration: Any = None
    architecture: Any = None
    identifier: dict[str, Any] | None = None
    endOfLifeDate: str | None = None
    description: str | None = None
    eula: str | None = None
    privacyStatementUri: str | None = None
    releaseNoteUri: str | None = None
    recommended: dict[str, Any] | None = None
    disallowed: dict[str, Any] | None = None
    purchasePlan: dict[str, Any] | None = None
    features: list[dict[str, Any]] | None = None
    allowUpdateImage: bool | None = None
    provisioningState: str | None = None  # read-only, tolerated when echoed


class GalleryImageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: str | None = None
    tags: dict[str, Any] | None = None
    properties: GalleryImageProperties | None = None
    id: str | None = None
    name: str | None = None
    type: str | None = None
    systemData: dict[str, Any] | None = None


class GalleryImagePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: dict[str, Any] | None = None
    properties: GalleryImageProperties | None = None
    id: str | None = None
    name: str | None = None
    type: str | None = None


def public(img: GalleryImage) -> dict[str, Any]:
    return {
        "id": img.id,
        "name": img.name,
        "type": gallery_images.IMAGE_TYPE,
        "location": img.location,
        "tags": dict(img.tags),
        "systemData": dict(img.system_data),
        "properties": gallery_images.to_properties(img),
    }


def render(store: Store, rid: str) -> dict[str, Any]:
    return public(gallery_images.get_by_id(store, rid))


def _props(p: GalleryImageProperties | None) -> dict[str, Any]:
    return p.model_dump(exclude_none=True) if p is not None else {}


@router.put(BASE + "/{name}")
def create_or_update(
    subscription_id: str,
    resource_group: str,
    gallery: str,
    name: str,
    body: JsonBody,
    store: StoreDep,
    caller: CallerDep,
) -> Response:
    req = parse(GalleryImageCreate, body)
    image, created = gallery_images.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        name=name,
        location=req.location,
        properties=_props(req.properties),
        caller=caller.app_id,
        tags=req.tags,
    )
    return JSONResponse(public(image), status_code=201 if created else 200)


@router.patch(BASE + "/{name}")
def update(
    subscription_id: str,
    resource_group: str,
    gallery: str,
    name: str,
    body: JsonBody,
    store: StoreDep,
    caller: CallerDep,
) -> dict[str, Any]:
    req = parse(GalleryImagePatch, body)
    current = gallery_images.get(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        name=name,
    )
    merged = {**gallery_images.to_properties(current), **_props(req.properties)}
    image, _ = gallery_images.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        name=current.name,
        location=current.location,
        properties=merged,
        caller=caller.app_id,
        tags=req.tags if req.tags is not None else current.tags,
    )
    return public(image)


@router.get(BASE + "/{name}")
def get(
    subscription_id: str, resource_group: str, gallery: str, name: str, store: StoreDep
) -> dict[str, Any]:
    return public(
        gallery_images.get(
            store,
            subscription_id=subscription_id,
            resource_group=resource_group,
            gallery=gallery,
            name=name,
        )
    )


@router.delete(BASE + "/{name}")
def delete(
    subscription_id: str, resource_group: str, gallery: str, name: str, store: StoreDep
) -> Response:
    gallery_images.delete(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        name=name,
    )
    return Response(status_code=200)


@router.get(BASE)
def list_by_gallery(
    subscription_id: str, resource_group: str, gallery: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    items = gallery_images.list_by_gallery(
        store, subscription_id=subscription_id, resource_group=resource_group, gallery=gallery
    )
    return page(request, [public(i) for i in items])


RENDERERS = {"microsoft.compute/galleries/images": render}
