"""ARM concerns as dependencies: the caller, the api-version, the store, the subscription.

Routers declare them with the ``Annotated`` aliases at the bottom, so a route signature reads
as what the operation needs. The order of ``ARM_DEPENDENCIES`` is the order ARM checks in:
token first (401), then api-version (400), then the subscription (404). They are all
``async def``: FastAPI runs a plain ``def`` dependency on the thread pool, and the hop cost
more than the work (measured: 3x the whole GET).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

from azimg.platform.errors import (
    InvalidApiVersionParameter,
    InvalidRequestContent,
    MissingApiVersionParameter,
)
from azimg.platform.identity import Caller, Identity
from azimg.platform.ids import resource_type
from azimg.platform.jobs import Jobs
from azimg.platform.resources import authorization, providers
from azimg.platform.settings import Settings
from azimg.platform.store import Store

_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-(preview|beta|alpha|privatepreview))?$")


async def get_caller(request: Request) -> Caller:
    identity: Identity = request.app.state.identity
    return identity.verify(request.headers.get("authorization"))


def api_type(path: str) -> str:
    """The registered type whose api-versions govern ``path`` (lower-cased, canonical path):
    the resource type for provider paths, the Microsoft.Resources type for ARM's own."""
    segs = path.strip("/").lower().split("/")
    if "providers" in segs:
        i = len(segs) - 1 - segs[::-1].index("providers")
        rest = segs[i + 1 :]
        if len(rest) < 2 or (len(rest) == 2 and rest[1] in ("register", "unregister")):
            return "microsoft.resources/providers"
        return resource_type(path)
    if segs[0] != "subscriptions":
        return f"microsoft.resources/{segs[0]}"  # tenants
    if len(segs) <= 2:
        return "microsoft.resources/subscriptions"
    if segs[2] != "resourcegroups":
        return f"microsoft.resources/{segs[2]}"  # resources, locations, deployments
    if len(segs) <= 4:
        return "microsoft.resources/resourcegroups"
    return f"microsoft.resources/{segs[4]}"  # resources, deployments (ARM's own, no provider)


async def get_api_version(request: Request) -> str:
    """Present, dated, and (for a registered type) one of the versions the type serves."""
    value = request.query_params.get("api-version")
    if value is None:
        raise MissingApiVersionParameter()
    versions: Mapping[str, tuple[str, ...]] = request.app.state.api_versions
    rtype = api_type(request.url.path)
    supported = versions.get(rtype)
    if supported is None and request.method == "POST":  # an action (``.../d/beginGetAccess``)
        supported = versions.get(rtype.rsplit("/", 1)[0])  # is its resource type's
    if not _API_VERSION.match(value) or (supported is not None and value not in supported):
        raise InvalidApiVersionParameter.of(
            version=value, supported=",".join(supported or sorted(set().union(*versions.values())))
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


_WRITES = frozenset({"PUT", "PATCH", "POST", "DELETE"})


def check_registration(request: Request) -> None:
    """A write under ``/subscriptions/{s}/.../providers/{namespace}/{type}`` needs the
    namespace registered for the subscription (409 MissingSubscriptionRegistration)."""
    segs = request.url.path.strip("/").split("/")
    if request.method not in _WRITES or "providers" not in segs or segs[0] != "subscriptions":
        return
    i = segs.index("providers")
    if len(segs) - i < 3 or (segs[-1] in ("register", "unregister") and len(segs) - i == 3):
        return
    namespace = segs[i + 1]
    for p in request.app.state.providers:
        if p.namespace.lower() == namespace and not p.always_registered:
            providers.require_registered(
                request.app.state.store, subscription_id=segs[1], namespace=p.namespace
            )


async def arm_checks(request: Request) -> None:
    """Token (401, and its tenant must own the subscription in the path), then api-version
    (400), then RBAC (403 AuthorizationFailed), then provider registration (409): one
    dependency, as each costs FastAPI a solve."""
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
    check_registration(request)


#: Router-level dependencies of every ARM route (order = ARM's order of checks).
ARM_DEPENDENCIES = [Depends(arm_checks)]
