"""Virtual machines over HTTP: typed body → command → one domain call → rendered response.

Status codes and LRO shapes per reference §3.2 and §8.1: PUT answers 201 (new) or 200 with
``Azure-AsyncOperation``; power actions and DELETE answer 202; ``generalize`` is synchronous.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm import conditions
from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, JobsDep, JsonBody, StoreDep
from azimg.platform.arm.lro import FAMILY_CRP, accepted
from azimg.platform.arm.models import parse
from azimg.platform.arm.paging import page
from azimg.platform.arm.virtual_machines.models import VmBody, VmPatchBody, to_create, to_update
from azimg.platform.arm.virtual_machines.render import (
    instance_view,
    public,
)
from azimg.platform.compute.controller import ComputeController
from azimg.platform.errors import InvalidParameter, VmFeatureNotImplemented
from azimg.platform.resources import virtual_machines as vms
from azimg.platform.resources.virtual_machines import VirtualMachine
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["virtualMachines"])
RG_BASE = (
    "/subscriptions/{subscription_id}/resourcegroups/{resource_group}/providers/"
    "microsoft.compute/virtualmachines"
)


async def get_compute(request: Request) -> ComputeController:
    for service in request.app.state.services:
        if isinstance(service, ComputeController):
            return service
    raise VmFeatureNotImplemented(feature="VMs in a platform process without a compute controller")


ComputeDep = Annotated[ComputeController, Depends(get_compute)]


def _refuse_filter(request: Request) -> None:
    if request.query_params.get("$filter"):
        raise VmFeatureNotImplemented(feature="$filter on VM lists")


def _get(store: Store, subscription_id: str, resource_group: str, name: str) -> VirtualMachine:
    return vms.get(store, subscription_id=subscription_id, resource_group=resource_group, name=name)


@router.put(RG_BASE + "/{name}")
def create_or_update(
    subscription_id: str,
    resource_group: str,
    name: str,
    body: JsonBody,
    request: Request,
    store: StoreDep,
    jobs: JobsDep,
    compute: ComputeDep,
    caller: CallerDep,
) -> Response:
    req = parse(VmBody, body)
    cond = conditions.from_headers(request.headers)
    existing = store.meta.get(vms.vm_resource_id(subscription_id, resource_group, name))
    conditions.check(cond, existing.etag if existing is not None else None)
    if existing is not None:
        cmd = to_update(req.properties, req.tags, subscription_id=subscription_id,
                        resource_group=resource_group, name=name,
                        if_match=cond.if_match)  # fmt: skip
        return JSONResponse(public(store, vms.update(store, cmd)))
    cmd_new = to_create(req, subscription_id=subscription_id, resource_group=resource_group,
                        name=name, app_id=caller.app_id)  # fmt: skip
    vm, op = vms.create(store, jobs, cmd_new, boot_timeout_s=compute.create_timeout_s)
    return accepted(request, op, family=FAMILY_CRP, status_code=201, body=public(store, vm))


@router.patch(RG_BASE + "/{name}")
def update(
    subscription_id: str,
    resource_group: str,
    name: str,
    body: JsonBody,
    request: Request,
    store: StoreDep,
) -> dict[str, Any]:
    req = parse(VmPatchBody, body)
    cond = conditions.from_headers(request.headers)
    cmd = to_update(req.properties, req.tags, subscription_id=subscription_id,
                    resource_group=resource_group, name=name, if_match=cond.if_match)  # fmt: skip
    return public(store, vms.update(store, cmd))


@router.get(RG_BASE + "/{name}")
def get(
    subscription_id: str, resource_group: str, name: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    vm = _get(store, subscription_id, resource_group, name)
    return public(store, vm, expand=request.query_params.get("$expand"))


@router.get(RG_BASE + "/{name}/instanceview")
def get_instance_view(
    subscription_id: str, resource_group: str, name: str, store: StoreDep
) -> dict[str, Any]:
    vm = _get(store, subscription_id, resource_group, name)
    return instance_view(store, vm)


@router.delete(RG_BASE + "/{name}")
def delete(
    subscription_id: str,
    resource_group: str,
    name: str,
    request: Request,
    store: StoreDep,
    jobs: JobsDep,
) -> Response:
    if request.query_params.get("forceDeletion", "").lower() == "true":
        raise VmFeatureNotImplemented(feature="forceDeletion")
    op = vms.delete(store, jobs, subscription_id=subscription_id, resource_group=resource_group,
                    name=name)  # fmt: skip
    if op is None:
        return Response(status_code=204)
    return accepted(request, op, family=FAMILY_CRP)


def _power_route(action: str) -> None:
    def handler(
        subscription_id: str,
        resource_group: str,
        name: str,
        request: Request,
        store: StoreDep,
        jobs: JobsDep,
    ) -> Response:
        if action == "deallocate" and request.query_params.get("hibernate", "").lower() == "true":
            raise VmFeatureNotImplemented(feature="Hibernation")
        skip = request.query_params.get("skipShutdown", "").lower() == "true"
        op = vms.power(store, jobs, subscription_id=subscription_id,
                       resource_group=resource_group, name=name, action=action,
                       skip_shutdown=skip)  # fmt: skip
        return accepted(request, op, family=FAMILY_CRP)

    router.add_api_route(
        f"{RG_BASE}/{{name}}/{action.lower()}", handler, methods=["POST"], name=f"vm_{action}"
    )


for _action in vms.POWER_ACTIONS:
    _power_route(_action)


@router.post(RG_BASE + "/{name}/generalize")
def generalize(subscription_id: str, resource_group: str, name: str, store: StoreDep) -> Response:
    vms.generalize(store, subscription_id=subscription_id, resource_group=resource_group, name=name)
    return Response(status_code=200)


@router.post(RG_BASE + "/{name}/retrievebootdiagnosticsdata")
def retrieve_boot_diagnostics_data(
    subscription_id: str, resource_group: str, name: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    vm = _get(store, subscription_id, resource_group, name)
    raw = request.query_params.get("sasUriExpirationTimeInMinutes", "120")
    try:
        minutes = int(raw)
    except ValueError:
        minutes = -1
    if not 1 <= minutes <= 1440:
        raise InvalidParameter(
            "sasUriExpirationTimeInMinutes must be between 1 and 1440.",
            target="sasUriExpirationTimeInMinutes",
        )
    base = f"{request.url.scheme}://{request.url.netloc}/blob"
    url = vms.boot_diagnostics_url(store, vm, blob_base_url=base, minutes=minutes)
    return {"consoleScreenshotBlobUri": "", "serialConsoleLogBlobUri": url}


@router.get(RG_BASE)
def list_by_resource_group(
    subscription_id: str, resource_group: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    _refuse_filter(request)
    expand = request.query_params.get("$expand")
    items = vms.list_by_resource_group(
        store, subscription_id=subscription_id, resource_group=resource_group
    )
    return page(request, [public(store, vm, expand=expand) for vm in items])


@router.get("/subscriptions/{subscription_id}/providers/microsoft.compute/virtualmachines")
def list_by_subscription(subscription_id: str, request: Request, store: StoreDep) -> dict[str, Any]:
    _refuse_filter(request)
    expand = request.query_params.get("$expand")
    if request.query_params.get("statusOnly", "").lower() == "true":
        expand = "instanceView"
    items = vms.list_by_subscription(store, subscription_id=subscription_id)
    return page(request, [public(store, vm, expand=expand) for vm in items])


@router.get(
    "/subscriptions/{subscription_id}/providers/microsoft.compute/locations/{location}/"
    "virtualmachines"
)
def list_by_location(
    subscription_id: str, location: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    _refuse_filter(request)
    items = [
        vm
        for vm in vms.list_by_subscription(store, subscription_id=subscription_id)
        if vm.location == location.replace(" ", "").lower()
    ]
    return page(request, [public(store, vm) for vm in items])
