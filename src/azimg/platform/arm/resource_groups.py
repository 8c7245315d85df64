"""Resource groups: PUT/GET/HEAD/PATCH/DELETE and lists (generic lists: resources_generic)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from azimg.platform.arm.deps import ARM_DEPENDENCIES, JobsDep, JsonBody, StoreDep
from azimg.platform.arm.lro import FAMILY_CRP, accepted
from azimg.platform.arm.models import parse
from azimg.platform.arm.paging import page
from azimg.platform.resources import resource_groups
from azimg.platform.resources.resource_groups import ResourceGroup
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["resourceGroups"])
BASE = "/subscriptions/{subscription_id}/resourcegroups"


class ResourceGroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: str | None = None
    tags: dict[str, Any] | None = None
    managedBy: str | None = None
    # read-only envelope fields clients may echo back
    id: str | None = None
    name: str | None = None
    type: str | None = None
    properties: dict[str, Any] | None = None


class ResourceGroupPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: dict[str, Any] | None = None
    managedBy: str | None = None
    name: str | None = None
    properties: dict[str, Any] | None = None


def public(rg: ResourceGroup) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": rg.id,
        "name": rg.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": rg.location,
        "tags": dict(rg.tags),
        "properties": {"provisioningState": rg.provisioning_state},
    }
    if rg.managed_by:
        body["managedBy"] = rg.managed_by
    return body


def render(store: Store, rid: str) -> dict[str, Any]:
    parts = rid.strip("/").split("/")
    return public(resource_groups.get(store, subscription_id=parts[1], name=parts[3]))


@router.put(BASE + "/{name}")
def create_or_update(subscription_id: str, name: str, body: JsonBody, store: StoreDep) -> Response:
    req = parse(ResourceGroupCreate, body)
    rg, created = resource_groups.create_or_update(
        store,
        subscription_id=subscription_id,
        name=name,
        location=req.location,
        tags=req.tags,
        managed_by=req.managedBy,
    )
    return JSONResponse(public(rg), status_code=201 if created else 200)


@router.get(BASE + "/{name}")
def get(subscription_id: str, name: str, store: StoreDep) -> dict[str, Any]:
    return public(resource_groups.get(store, subscription_id=subscription_id, name=name))


@router.head(BASE + "/{name}")
def check_existence(subscription_id: str, name: str, store: StoreDep) -> Response:
    resource_groups.get(store, subscription_id=subscription_id, name=name)
    return Response(status_code=204)


@router.patch(BASE + "/{name}")
def update(subscription_id: str, name: str, body: JsonBody, store: StoreDep) -> dict[str, Any]:
    req = parse(ResourceGroupPatch, body)
    rg = resource_groups.update(
        store, subscription_id=subscription_id, name=name, tags=req.tags, managed_by=req.managedBy
    )
    return public(rg)


@router.delete(BASE + "/{name}")
def delete(
    subscription_id: str, name: str, request: Request, store: StoreDep, jobs: JobsDep
) -> Response:
    rg = resource_groups.begin_delete(store, subscription_id=subscription_id, name=name)
    op = jobs.submit(
        resource_groups.JOB_DELETE, action="delete", resource_id=rg.id, location=rg.location
    )
    return accepted(request, op, family=FAMILY_CRP)


@router.get(BASE)
def list_by_subscription(subscription_id: str, request: Request, store: StoreDep) -> dict[str, Any]:
    rgs = resource_groups.list_by_subscription(store, subscription_id=subscription_id)
    return page(request, [public(rg) for rg in rgs])
