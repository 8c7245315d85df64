"""``Microsoft.Resources/deployments`` over HTTP, at resource-group and subscription scope.

Thin calls into ``platform.resources.deployments.engine``. Shapes per reference
templates.md §1.1/§1.5: PUT answers 201 ``Accepted`` with ``Azure-AsyncOperation`` (the
deployment's ``operationStatuses`` URL) and ``Retry-After: 1``, so the SDK's and az's pollers
follow it and then GET the deployment; validate answers 200, or 400 ``InvalidTemplate``;
operations live at ``.../deployments/{n}/operations`` (no provider segment). The body is read
as JSONC because az splices the raw template file into it (§1.3).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm.deps import ARM_DEPENDENCIES, JobsDep
from azimg.platform.arm.lro import status_response
from azimg.platform.arm.paging import page
from azimg.platform.errors import InvalidRequestContent, NotImplementedFeature
from azimg.platform.resources.deployments import jsonc, records
from azimg.platform.resources.deployments.engine import DeploymentService
from azimg.platform.resources.deployments.records import Target

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["deployments"])
RG = "/subscriptions/{subscription_id}/resourcegroups/{resource_group}"
SUB = "/subscriptions/{subscription_id}"
PROVIDER = "/providers/microsoft.resources/deployments"
SCOPES = (RG, SUB)


def _service(request: Request) -> DeploymentService:
    for svc in getattr(request.app.state, "services", []):
        if isinstance(svc, DeploymentService):
            return svc
    raise RuntimeError("the deployments service is not registered")


def _target(request: Request, name: str = "") -> Target:
    p = request.path_params
    return Target(p["subscription_id"], p.get("resource_group"), name)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = jsonc.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestContent(
            "The request content was invalid and could not be deserialized: the body is not "
            "valid JSON."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestContent("The request content must be a JSON object.")
    return body


def _status_url(request: Request, target: Target, op_id: str) -> str:
    base = f"{request.url.scheme}://{request.url.netloc}"
    version = request.query_params.get("api-version", "")
    return f"{base}{target.id}/operationStatuses/{op_id}?api-version={version}"


async def create_or_update(name: str, request: Request) -> Response:
    target = _target(request, name)
    req = records.parse_request(await _body(request), target)
    token = (request.headers.get("authorization") or "")[7:].strip()
    doc, op = _service(request).begin_create(target, req, token)
    headers = {"Azure-AsyncOperation": _status_url(request, target, op.id), "Retry-After": "1"}
    return JSONResponse(records.public(doc), status_code=201, headers=headers)


def get(name: str, request: Request) -> dict[str, Any]:
    return records.public(_service(request).get(_target(request, name)))


def exists(name: str, request: Request) -> Response:
    _service(request).get(_target(request, name))
    return Response(status_code=204)


def delete(name: str, request: Request) -> Response:
    _service(request).delete(_target(request, name))
    return Response(status_code=204)


def list_at_scope(request: Request) -> dict[str, Any]:
    docs = _service(request).list(_target(request))
    items = [records.public(d) for d in docs]
    wanted = _state_filter(request.query_params.get("$filter"))
    if wanted is not None:
        items = [i for i in items if i["properties"].get("provisioningState", "").lower() == wanted]
    top = request.query_params.get("$top")
    if top is not None and top.isdigit():
        items = items[: int(top)]
    return page(request, items)


def _state_filter(text: str | None) -> str | None:
    """``provisioningState eq 'Failed'`` — the one filter ARM allows here."""
    if not text:
        return None
    parts = text.split(None, 2)
    if len(parts) != 3 or parts[0].lower() != "provisioningstate" or parts[1].lower() != "eq":
        raise InvalidRequestContent(
            f"The $filter '{text}' is not supported: use provisioningState eq '<state>'.",
            target="$filter",
        )
    return parts[2].strip("'\"").lower()


async def validate(name: str, request: Request) -> dict[str, Any]:
    target = _target(request, name)
    req = records.parse_request(await _body(request), target)
    return _service(request).validate(target, req)


def cancel(name: str, request: Request) -> Response:
    _service(request).cancel(_target(request, name))
    return Response(status_code=204)


def export_template(name: str, request: Request) -> dict[str, Any]:
    return _service(request).export_template(_target(request, name))


def what_if(name: str, request: Request) -> Response:
    raise NotImplementedFeature(
        "What-if is not supported by azimg; validate the deployment instead.", target="whatIf"
    )


def operation_status(name: str, op_id: str, jobs: JobsDep, request: Request) -> Response:
    _service(request).get(_target(request, name))
    return status_response(jobs.get(op_id))


def list_operations(name: str, request: Request) -> dict[str, Any]:
    ops = _service(request).operations(_target(request, name))
    return page(request, [records.public_operation(o) for o in ops])


def get_operation(name: str, op_id: str, request: Request) -> dict[str, Any]:
    return records.public_operation(_service(request).operation(_target(request, name), op_id))


for _scope in SCOPES:
    _base = _scope + PROVIDER
    router.add_api_route(_base, list_at_scope, methods=["GET"])
    router.add_api_route(_base + "/{name}", create_or_update, methods=["PUT"])
    router.add_api_route(_base + "/{name}", get, methods=["GET"])
    router.add_api_route(_base + "/{name}", exists, methods=["HEAD"])
    router.add_api_route(_base + "/{name}", delete, methods=["DELETE"])
    router.add_api_route(_base + "/{name}/validate", validate, methods=["POST"])
    router.add_api_route(_base + "/{name}/cancel", cancel, methods=["POST"])
    router.add_api_route(_base + "/{name}/exporttemplate", export_template, methods=["POST"])
    router.add_api_route(_base + "/{name}/whatif", what_if, methods=["POST"])
    router.add_api_route(
        _base + "/{name}/operationstatuses/{op_id}", operation_status, methods=["GET"]
    )
    router.add_api_route(
        _scope + "/deployments/{name}/operations", list_operations, methods=["GET"]
    )
    router.add_api_route(
        _scope + "/deployments/{name}/operations/{op_id}", get_operation, methods=["GET"]
    )
