"""Galleries: PUT/PATCH/GET/DELETE and the lists (thin: rules live in resources/galleries)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm import gallery_bodies as b
from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, JsonBody, StoreDep
from azimg.platform.arm.models import parse
from azimg.platform.arm.paging import page
from azimg.platform.gallery_errors import (
    NotImplementedByAzimg,
)
from azimg.platform.resources import galleries
from azimg.platform.resources.galleries import Gallery, GallerySpec, SharingSpec
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["galleries"])
PROVIDER = "/providers/microsoft.compute/galleries"
BASE = "/subscriptions/{subscription_id}/resourcegroups/{resource_group}" + PROVIDER


def to_spec(req: b.GalleryCreate | b.GalleryPatch) -> GallerySpec:
    """A PUT or PATCH body as the domain's command (identity is refused here)."""
    if req.identity is not None and (req.identity.type or "None") != "None":
        raise NotImplementedByAzimg(
            target="identity", feature="Managed identities on galleries", plural=True
        )
    props = req.properties or b.GalleryProperties()
    sharing = props.sharingProfile
    soft_delete = props.softDeletePolicy
    return GallerySpec(
        location=req.location if isinstance(req, b.GalleryCreate) else None,
        description=props.description,
        sharing=None
        if sharing is None
        else SharingSpec(permissions=sharing.permissions, groups_given=bool(sharing.groups)),
        soft_delete_enabled=None if soft_delete is None else soft_delete.isSoftDeleteEnabled,
        tags=req.tags,
    )


def public(g: Gallery) -> dict[str, Any]:
    props: dict[str, Any] = {
        "identifier": {"uniqueName": g.unique_name},
        "provisioningState": g.provisioning_state,
        "sharingProfile": {"permissions": g.sharing_permissions},
    }
    if g.description is not None:
        props["description"] = g.description
    return {
        "id": g.id,
        "name": g.name,
        "type": galleries.GALLERY_TYPE,
        "location": g.location,
        "tags": dict(g.tags),
        "systemData": dict(g.system_data),
        "properties": props,
    }


def render(store: Store, rid: str) -> dict[str, Any]:
    return public(galleries.get_by_id(store, rid))


@router.put(BASE + "/{name}")
def create_or_update(
    subscription_id: str,
    resource_group: str,
    name: str,
    body: JsonBody,
    store: StoreDep,
    caller: CallerDep,
) -> Response:
    gallery, created = galleries.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        spec=to_spec(parse(b.GalleryCreate, body)),
        caller=caller.app_id,
    )
    return JSONResponse(public(gallery), status_code=201 if created else 200)


@router.patch(BASE + "/{name}")
def update(
    subscription_id: str,
    resource_group: str,
    name: str,
    body: JsonBody,
    store: StoreDep,
    caller: CallerDep,
) -> dict[str, Any]:
    gallery = galleries.update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        patch=to_spec(parse(b.GalleryPatch, body)),
        caller=caller.app_id,
    )
    return public(gallery)


@router.get(BASE + "/{name}")
def get(subscription_id: str, resource_group: str, name: str, store: StoreDep) -> dict[str, Any]:
    return public(
        galleries.get(
            store, subscription_id=subscription_id, resource_group=resource_group, name=name
        )
    )


@router.delete(BASE + "/{name}")
def delete(subscription_id: str, resource_group: str, name: str, store: StoreDep) -> Response:
    galleries.delete(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name
    )
    return Response(status_code=200)


@router.post(BASE + "/{name}/share")
def share(subscription_id: str, resource_group: str, name: str, store: StoreDep) -> Response:
    galleries.get(store, subscription_id=subscription_id, resource_group=resource_group, name=name)
    raise NotImplementedByAzimg(target="share", feature="Gallery sharing (POST .../share)")


@router.get(BASE)
def list_by_resource_group(
    subscription_id: str, resource_group: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    items = galleries.list_by_resource_group(
        store, subscription_id=subscription_id, resource_group=resource_group
    )
    return page(request, [public(g) for g in items])


@router.get("/subscriptions/{subscription_id}" + PROVIDER)
def list_by_subscription(subscription_id: str, request: Request, store: StoreDep) -> dict[str, Any]:
    items = galleries.list_by_subscription(store, subscription_id=subscription_id)
    return page(request, [public(g) for g in items])
