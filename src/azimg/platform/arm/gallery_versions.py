"""Gallery image versions: PUT (long-running: replication), PATCH, GET (``latest``,
``$expand=ReplicationStatus``), DELETE (long-running) and the list by definition (thin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

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
from azimg.platform.errors import InvalidParameter
from azimg.platform.jobs import Jobs
from azimg.platform.resources import gallery_versions
from azimg.platform.resources.gallery_versions import GalleryImageVersion
from azimg.platform.settings import Settings
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["galleryImageVersions"])
BASE = IMAGES + "/{image}/versions"
EXPANDS = ("replicationstatus", "uefisettings")


class VersionProperties(BaseModel):
    model_config = ConfigDict(extra="forbid")
    publishingProfile: dict[str, Any] | None = None
    storageProfile: dict[str, Any] | None = None
    safetyProfile: dict[str, Any] | None = None
    securityProfile: dict[str, Any] | None = None
    restore: bool | None = None
    imageMetadataProfiles: list[Any] | None = None
    # read-only, tolerated when a client echoes a GET back
    provisioningState: str | None = None
    replicationStatus: dict[str, Any] | None = None
    validationsProfile: dict[str, Any] | None = None


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: str | None = None
    tags: dict[str, Any] | None = None
    properties: VersionProperties | None = None
    id: str | None = None
    name: str | None = None
    type: str | None = None
    systemData: dict[str, Any] | None = None


class VersionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: dict[str, Any] | None = None
    properties: VersionProperties | None = None
    id: str | None = None
    name: str | None = None
    type: str | None = None


def public(v: GalleryImageVersion, *, expand_replication: bool = False) -> dict[str, Any]:
    return {
        "id": v.id,
        "name": v.name,
        "type": gallery_versions.VERSION_TYPE,
        "location": v.location,
        "tags": dict(v.tags),
        "systemData": dict(v.system_data),
        "properties": gallery_versions.to_properties(v, expand_replication=expand_replication),
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
        raise InvalidParameter(
            f"The value '{raw}' of parameter '$expand' is not allowed. Allowed values are "
            "ReplicationStatus, UefiSettings.",
            target="$expand",
        )
    return raw.lower() == "replicationstatus"


def _props(p: VersionProperties | None) -> dict[str, Any]:
    return p.model_dump(exclude_none=True) if p is not None else {}


def _replicate(jobs: Jobs, settings: Settings, version: GalleryImageVersion) -> Any:
    return jobs.submit(
        gallery_versions.JOB_REPLICATE,
        action="put",
        resource_id=version.id,
        location=version.location,
        params={"rate": settings.replication_rate},
    )


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
    req = parse(VersionCreate, body)
    version, created = gallery_versions.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=name,
        location=req.location,
        properties=_props(req.properties),
        caller=caller.app_id,
        tags=req.tags,
    )
    status = 201 if created else 200
    if version.provisioning_state == "Succeeded":
        return JSONResponse(public(version), status_code=status)
    op = _replicate(jobs, settings, version)
    return accepted(request, op, family=FAMILY_GALLERY, status_code=status, body=public(version))


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
    req = parse(VersionPatch, body)
    version = gallery_versions.update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=name,
        properties=_props(req.properties),
        caller=caller.app_id,
        tags=req.tags,
    )
    if version.provisioning_state != "Succeeded":
        _replicate(jobs, settings, version)
    return _with_retry_after(public(version))


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
    version = gallery_versions.begin_delete(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        image=image,
        name=name,
    )
    if version is None:
        return Response(status_code=204)
    op = jobs.submit(
        gallery_versions.JOB_DELETE,
        action="delete",
        resource_id=version.id,
        location=version.location,
    )
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


RENDERERS = {"microsoft.compute/galleries/images/versions": render}
