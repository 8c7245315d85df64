"""Operation-status and monitor URLs of every provider family (see ``lro``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from azimg.platform.arm.deps import ARM_DEPENDENCIES, JobsDep, StoreDep
from azimg.platform.arm.lro import (
    FAMILY_CRP,
    FAMILY_DISKS,
    FAMILY_GALLERY,
    monitor_response,
    status_response,
)
from azimg.platform.errors import OperationNotFound
from azimg.platform.resources.common import check_subscription

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["operations"])


def get_operation(
    subscription_id: str,
    namespace: str,
    location: str,
    op_id: str,
    request: Request,
    store: StoreDep,
    jobs: JobsDep,
) -> Response:
    check_subscription(store, subscription_id)
    op = jobs.get(op_id)
    if op.resource_id.split("/")[2].lower() != subscription_id.lower():
        raise OperationNotFound(f"The operation '{op_id}' was not found.")
    if request.query_params.get("monitor", "").lower() == "true":
        return monitor_response(request, op, store, request.app.state.renderers)
    return status_response(op)


for _family in (FAMILY_CRP, FAMILY_DISKS, FAMILY_GALLERY):
    router.add_api_route(
        "/subscriptions/{subscription_id}/providers/{namespace}/locations/{location}/"
        f"{_family}/{{op_id}}",
        get_operation,
        methods=["GET"],
        name=f"get_{_family}",
    )
