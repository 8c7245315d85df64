"""Virtual machines over HTTP: thin calls into ``platform.resources.virtual_machines``.

Status codes and LRO shapes per reference §3.2 and §8.1: PUT answers 201 (new) or 200 with
``Azure-AsyncOperation``; power actions and DELETE answer 202; ``generalize`` is synchronous.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, JobsDep, JsonBody, StoreDep
from azimg.platform.arm.lro import FAMILY_CRP, accepted
from azimg.platform.arm.models import parse
from azimg.platform.arm.paging import page
from azimg.platform.errors import InvalidParameter, NotImplementedFeature
from azimg.platform.resources import virtual_machines as vms
from azimg.platform.resources.common import check_subscription, utc_now
from azimg.platform.resources.virtual_machines import VirtualMachine
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["virtualMachines"])
RG_BASE = (
    "/subscriptions/{subscription_id}/resourcegroups/{resource_group}/providers/"
    "microsoft.compute/virtualmachines"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VmProperties(_Strict):
    hardwareProfile: dict[str, Any] | None = None
    storageProfile: dict[str, Any] | None = None
    osProfile: dict[str, Any] | None = None
    networkProfile: dict[str, Any] | None = None
    diagnosticsProfile: dict[str, Any] | None = None
    securityProfile: dict[str, Any] | None = None
    licenseType: str | None = None
    userData: str | None = None
    # read-only properties clients may send back from a GET; ignored
    vmId: str | None = None
    provisioningState: str | None = None
    timeCreated: str | None = None
    instanceView: dict[str, Any] | None = None


class VmCreate(_Strict):
    location: str | None = None
    tags: dict[str, Any] | None = None
    properties: VmProperties | None = None
    id: str | None = None
    name: str | None = None
    type: str | None = None
    etag: str | None = None
    resources: list[Any] | None = None


class VmPatch(_Strict):
    tags: dict[str, Any] | None = None
    properties: VmProperties | None = None


def instance_view(store: Store, vm: VirtualMachine) -> dict[str, Any]:
    agent = vm.agent or {}
    view: dict[str, Any] = {
        "hyperVGeneration": f"V{vm.generation}",
        "statuses": [_status(s) for s in vms.statuses(vm)],
        "disks": [
            {
                "name": vm.storage_profile["osDisk"]["name"],
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Provisioning succeeded",
                        "time": vm.time_created,
                    }
                ],
            }
        ],
    }
    if vm.os_profile:
        view["computerName"] = vm.os_profile["computerName"]
    if agent:
        view["osName"] = agent.get("os_name")
        view["osVersion"] = agent.get("os_version")
        if agent.get("computer_name"):
            view["computerName"] = agent["computer_name"]
        view["vmAgent"] = {
            "vmAgentVersion": agent.get("version"),
            "statuses": [
                {
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Ready" if agent.get("status") == "Ready" else "Not Ready",
                    "message": agent.get("message"),
                    "time": agent.get("timestamp"),
                }
            ],
            "extensionHandlers": [],
        }
    elif vm.power_state == "running":
        view["vmAgent"] = {
            "vmAgentVersion": "Unknown",
            "statuses": [
                {
                    "code": "ProvisioningState/Unavailable",
                    "level": "Warning",
                    "displayStatus": "Not Ready",
                    "message": "VM status blob is found but not yet populated.",
                    "time": utc_now(),
                }
            ],
        }
    return {k: v for k, v in view.items() if v is not None}


def _status(s: vms.Status) -> dict[str, Any]:
    body: dict[str, Any] = {"code": s.code, "level": s.level, "displayStatus": s.display_status}
    if s.message:
        body["message"] = s.message
    if s.time:
        body["time"] = s.time
    return body


def public(store: Store, vm: VirtualMachine, *, expand: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {
        **vm.echoed,
        "vmId": vm.vm_id,
        "hardwareProfile": {"vmSize": vm.vm_size},
        "storageProfile": dict(vm.storage_profile),
        "provisioningState": vm.provisioning_state,
        "timeCreated": vm.time_created,
    }
    if vm.os_profile:
        props["osProfile"] = dict(vm.os_profile)
    wanted = {e.strip().lower() for e in (expand or "").split(",") if e.strip()}
    if "instanceview" in wanted:
        props["instanceView"] = instance_view(store, vm)
    if "userdata" in wanted and vm.user_data:
        props["userData"] = vm.user_data
    body: dict[str, Any] = {
        "id": vm.id,
        "name": vm.name,
        "type": vms.VM_TYPE,
        "location": vm.location,
        "properties": props,
    }
    if vm.tags:
        body["tags"] = dict(vm.tags)
    return body


def render(store: Store, rid: str) -> dict[str, Any]:
    return public(store, vms.get_by_id(store, rid))


def _refuse_filter(request: Request) -> None:
    if request.query_params.get("$filter"):
        raise NotImplementedFeature("$filter on VM lists is not implemented by azimg.")


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
    caller: CallerDep,
) -> Response:
    req = parse(VmCreate, body)
    properties = req.properties.model_dump(exclude_none=True) if req.properties else {}
    existing = store.meta.get(vms.vm_resource_id(subscription_id, resource_group, name))
    if existing is not None:
        vm = vms.from_doc(existing)
        vms.check_put_on_existing(vm, properties)
        vm = vms.update_tags(store, vm, tags=req.tags if req.tags is not None else vm.tags)
        return JSONResponse(public(store, vm))
    vm = vms.create(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        location=req.location,
        properties=properties,
        tags=req.tags,
        app_id=caller.app_id,
    )
    op = vms.host_for(store).begin_create(vm)
    return accepted(request, op, family=FAMILY_CRP, status_code=201, body=public(store, vm))


@router.patch(RG_BASE + "/{name}")
def update(
    subscription_id: str, resource_group: str, name: str, body: JsonBody, store: StoreDep
) -> dict[str, Any]:
    req = parse(VmPatch, body)
    vm = _get(store, subscription_id, resource_group, name)
    if req.properties is not None:
        vms.check_put_on_existing(vm, req.properties.model_dump(exclude_none=True))
    if req.tags is not None:
        vm = vms.update_tags(store, vm, tags=req.tags)
    return public(store, vm)


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
    return instance_view(store, _get(store, subscription_id, resource_group, name))


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
        raise NotImplementedFeature("forceDeletion is not implemented by azimg.")
    doc = store.meta.get(vms.vm_resource_id(subscription_id, resource_group, name))
    if doc is None:
        _get(store, subscription_id, resource_group, name)  # 404 for a missing group
        return Response(status_code=204)
    vm = vms.mark_deleting(store, vms.from_doc(doc))
    op = jobs.submit(vms.JOB_DELETE, action="delete", resource_id=vm.id, location=vm.location)
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
        vm = _get(store, subscription_id, resource_group, name)
        vms.check_action(vm, action)
        if action == "deallocate" and request.query_params.get("hibernate", "").lower() == "true":
            raise NotImplementedFeature("Hibernation is not implemented by azimg.")
        skip = request.query_params.get("skipShutdown", "").lower() == "true"
        op = jobs.submit(
            vms.JOB_POWER,
            action="post",
            resource_id=vm.id,
            location=vm.location,
            params={"action": action, "skipShutdown": skip},
        )
        return accepted(request, op, family=FAMILY_CRP)

    router.add_api_route(
        f"{RG_BASE}/{{name}}/{action.lower()}", handler, methods=["POST"], name=f"vm_{action}"
    )


for _action in ("start", "powerOff", "restart", "deallocate"):
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
    check_subscription(store, subscription_id)
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
    check_subscription(store, subscription_id)
    items = [
        vm
        for vm in vms.list_by_subscription(store, subscription_id=subscription_id)
        if vm.location == location.replace(" ", "").lower()
    ]
    return page(request, [public(store, vm) for vm in items])


RENDERERS = {"microsoft.compute/virtualmachines": render}
