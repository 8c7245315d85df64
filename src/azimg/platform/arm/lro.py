"""Long-running-operation responses, exactly as ARMPolling and az's AAZ poller read them.

The initial response carries ``Azure-AsyncOperation`` (the status URL), ``Location`` (the same
URL plus ``monitor=true``) and ``Retry-After: 1`` (an integer: v39 casts it with ``int()``, and
0 means "wait 30 s"). The status URL answers 200 ``{status}``; the Location URL answers 202
while running and, once done, exactly the operation's result: the resource for PUT/PATCH,
the output for POST, 204 for DELETE — az reads the result from Location (final-state-via
location) even for PUT (reference §3.3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.ids import resource_type
from azimg.platform.store import Operation, Store

#: The status-URL family of each provider's operations (reference §3.4).
FAMILY_DISKS = "diskoperations"
FAMILY_CRP = "operations"
FAMILY_GALLERY = "capsoperations"

Renderer = Callable[[Store, str], Mapping[str, Any]]


def status_url(request: Request, op: Operation, *, family: str) -> str:
    sub = op.resource_id.split("/")[2]
    base = f"{request.url.scheme}://{request.url.netloc}"
    version = request.query_params.get("api-version", "")
    return (
        f"{base}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{op.location}/"
        f"{family}/{op.id}?api-version={version}"
    )


def lro_headers(request: Request, op: Operation, *, family: str) -> dict[str, str]:
    url = status_url(request, op, family=family)
    return {"Azure-AsyncOperation": url, "Location": url + "&monitor=true", "Retry-After": "1"}


def accepted(
    request: Request,
    op: Operation,
    *,
    family: str,
    status_code: int = 202,
    body: Mapping[str, Any] | None = None,
) -> Response:
    """The initial response of a long-running operation (202, or 201 where the SDK needs it)."""
    headers = lro_headers(request, op, family=family)
    if body is None:
        return Response(status_code=status_code, headers=headers)
    return JSONResponse(dict(body), status_code=status_code, headers=headers)


def status_body(op: Operation) -> dict[str, Any]:
    body: dict[str, Any] = {"name": op.id, "status": op.status, "startTime": op.start_time}
    if op.end_time:
        body["endTime"] = op.end_time
    if op.status == "Succeeded" and op.output is not None:
        body["properties"] = {"output": dict(op.output)}
    if op.error is not None:
        body["error"] = dict(op.error)
    return body


def status_response(op: Operation) -> Response:
    headers = {} if op.done else {"Retry-After": "1"}
    return JSONResponse(status_body(op), headers=headers)


def monitor_response(
    request: Request, op: Operation, store: Store, renderers: Mapping[str, Renderer]
) -> Response:
    """What the Location URL answers (see the module docstring)."""
    if not op.done:
        return Response(
            status_code=202,
            headers={"Location": str(request.url), "Retry-After": "1"},
        )
    if op.status != "Succeeded":
        error = dict(op.error or {"code": "Failed", "message": "The operation failed."})
        status = 500 if error.get("code") == "InternalServerError" else 400
        return JSONResponse({"error": error}, status_code=status)
    if op.action == "delete":
        return Response(status_code=204)
    if op.action in ("put", "patch"):
        rtype = resource_type(op.resource_id)
        renderer = renderers.get(rtype)
        if renderer is not None:
            return JSONResponse(dict(renderer(store, op.resource_id)))
    if op.output is None:
        return Response(status_code=200)
    return JSONResponse(dict(op.output))


