"""ARM concerns as dependencies: the caller, the api-version, the store, the subscription.

Routers declare them with the ``Annotated`` aliases at the bottom, so a route signature reads
as what the operation needs. The order of ``ARM_DEPENDENCIES`` is the order ARM checks in:
token first (401), then api-version (400), then the subscription (404). They are all
``async def``: FastAPI runs a plain ``def`` dependency on the thread pool, and the hop cost
more than the work (measured: 3x the whole GET).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Request

from azimg.platform.errors import (
    InvalidApiVersionParameter,
    InvalidRequestContent,
    MissingApiVersionParameter,
)
from azimg.platform.identity import Caller, Identity
from azimg.platform.jobs import Jobs
from azimg.platform.resources import authorization
from azimg.platform.settings import Settings
from azimg.platform.store import Store

_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-(preview|beta|alpha|privatepreview))?$")


async def get_caller(request: Request) -> Caller:
    identity: Identity = request.app.state.identity
    return identity.verify(request.headers.get("authorization"))


async def get_api_version(request: Request) -> str:
    value = request.query_params.get("api-version")
    if value is None:
        raise MissingApiVersionParameter()
    if not _API_VERSION.match(value):
        raise InvalidApiVersionParameter(
            f"The api-version '{value}' is invalid. The supported versions are dated, "
            "e.g. '2026-03-02'.",
            target="api-version",
        )
    return value


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_jobs(request: Request) -> Jobs:
    return request.app.state.jobs


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or 400 ``InvalidRequestContent`` (never a 500)."""
    import json

    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestContent(
            "The request content was invalid and could not be deserialized: the body is not "
            "valid JSON."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestContent(
            "The request content was invalid and could not be deserialized: expected a JSON object."
        )
    return body


CallerDep = Annotated[Caller, Depends(get_caller)]
ApiVersionDep = Annotated[str, Depends(get_api_version)]
StoreDep = Annotated[Store, Depends(get_store)]
JobsDep = Annotated[Jobs, Depends(get_jobs)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JsonBody = Annotated[dict[str, Any], Depends(get_json_body)]


async def arm_checks(request: Request) -> None:
    """Token (401, and its tenant must own the subscription in the path), then api-version
    (400), then RBAC (403 AuthorizationFailed): one dependency, as each costs FastAPI a
    solve."""
    caller = await get_caller(request)
    subscription_id = request.path_params.get("subscription_id")
    if subscription_id:
        request.app.state.identity.require_tenant(caller, subscription_id)
    await get_api_version(request)
    if subscription_id:  # then the caller's roles (403), before any existence check
        authorization.authorize(
            request.app.state.store,
            object_id=caller.object_id,
            app_id=caller.app_id,
            method=request.method,
            path=request.url.path,
        )


#: Router-level dependencies of every ARM route (order = ARM's order of checks).
ARM_DEPENDENCIES = [Depends(arm_checks)]
