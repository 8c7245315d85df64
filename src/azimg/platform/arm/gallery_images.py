"""Gallery image definitions: PUT/PATCH/GET/DELETE and the list by gallery (thin)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm import gallery_bodies as b
from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, JsonBody, StoreDep
from azimg.platform.arm.galleries import BASE as GALLERIES
from azimg.platform.arm.models import parse
from azimg.platform.arm.paging import page
from azimg.platform.resources import gallery_images
from azimg.platform.resources.gallery_images import (
    DefinitionPatch,
    DefinitionSpec,
    Extra,
    Feature,
    GalleryImage,
    Identifier,
    PurchasePlan,
    Range,
    Recommended,
)
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["galleryImages"])
BASE = GALLERIES + "/{gallery}/images"


def _extra(p: b.GalleryImageProperties) -> Extra:
    rec = p.recommended
    return Extra(
        description=p.description,
        eula=p.eula,
        privacy_statement_uri=p.privacyStatementUri,
        release_note_uri=p.releaseNoteUri,
        recommended=None
        if rec is None
        else Recommended(
            v_cpus=None if rec.vCPUs is None else Range(rec.vCPUs.min, rec.vCPUs.max),
            memory=None if rec.memory is None else Range(rec.memory.min, rec.memory.max),
        ),
        disallowed_disk_types=None
        if p.disallowed is None or p.disallowed.diskTypes is None
        else tuple(p.disallowed.diskTypes),
        purchase_plan=None
        if p.purchasePlan is None
        else PurchasePlan(p.purchasePlan.name, p.purchasePlan.publisher, p.purchasePlan.product),
        features=None
        if p.features is None
        else tuple(Feature(f.name, f.value, f.startsAtVersion) for f in p.features),
        allow_update_image=p.allowUpdateImage,
    )


def _identifier(p: b.GalleryImageProperties) -> Identifier | None:
    i = p.identifier
    return None if i is None else Identifier(i.publisher, i.offer, i.sku)


def to_patch(req: b.GalleryImageCreate | b.GalleryImagePatch) -> DefinitionPatch:
    p = req.properties or b.GalleryImageProperties()
    return DefinitionPatch(
        os_type=p.osType,
        os_state=p.osState,
        hyper_v_generation=p.hyperVGeneration,
        architecture=p.architecture,
        identifier=_identifier(p),
        end_of_life_date=p.endOfLifeDate,
        extra=_extra(p),
        tags=req.tags,
    )


def to_spec(req: b.GalleryImageCreate) -> DefinitionSpec:
    patch = to_patch(req)
    return DefinitionSpec(
        **{f.name: getattr(patch, f.name) for f in fields(DefinitionPatch)},
        location=req.location,
    )


def _extra_json(x: Extra) -> dict[str, Any]:
    rec = x.recommended
    out: dict[str, Any] = {
        "description": x.description,
        "eula": x.eula,
        "privacyStatementUri": x.privacy_statement_uri,
        "releaseNoteUri": x.release_note_uri,
        "recommended": None
        if rec is None
        else {
            k: {m: v for m, v in (("min", r.min), ("max", r.max)) if v is not None}
            for k, r in (("vCPUs", rec.v_cpus), ("memory", rec.memory))
            if r is not None
        },
        "disallowed": None
        if x.disallowed_disk_types is None
        else {"diskTypes": list(x.disallowed_disk_types)},
        "purchasePlan": None
        if x.purchase_plan is None
        else {
            k: v
            for k, v in (
                ("name", x.purchase_plan.name),
                ("publisher", x.purchase_plan.publisher),
                ("product", x.purchase_plan.product),
            )
            if v is not None
        },
        "features": None
        if x.features is None
        else [
            {
                k: v
                for k, v in (
                    ("name", f.name),
                    ("value", f.value),
                    ("startsAtVersion", f.starts_at_version),
                )
                if v is not None
            }
            for f in x.features
        ],
        "allowUpdateImage": x.allow_update_image,
    }
    return {k: v for k, v in out.items() if v is not None}


def to_properties(img: GalleryImage) -> dict[str, Any]:
    """The wire ``properties`` object."""
    props: dict[str, Any] = {
        "osType": img.os_type,
        "osState": img.os_state,
        "hyperVGeneration": img.hyper_v_generation,
        "architecture": img.architecture,
        "identifier": {"publisher": img.publisher, "offer": img.offer, "sku": img.sku},
        "provisioningState": img.provisioning_state,
    }
    if img.end_of_life_date:
        props["endOfLifeDate"] = img.end_of_life_date
    props.update(_extra_json(img.extra))
    return props


def public(img: GalleryImage) -> dict[str, Any]:
    return {
        "id": img.id,
        "name": img.name,
        "type": gallery_images.IMAGE_TYPE,
        "location": img.location,
        "tags": dict(img.tags),
        "systemData": dict(img.system_data),
        "properties": to_properties(img),
    }


def render(store: Store, rid: str) -> dict[str, Any]:
    return public(gallery_images.get_by_id(store, rid))


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
    image, created = gallery_images.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        name=name,
        spec=to_spec(parse(b.GalleryImageCreate, body)),
        caller=caller.app_id,
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
    image = gallery_images.update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        name=name,
        patch=to_patch(parse(b.GalleryImagePatch, body)),
        caller=caller.app_id,
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
