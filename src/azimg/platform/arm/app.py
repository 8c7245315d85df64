"""The platform's HTTPS application, built by ``create_app(settings, store)``.

Nothing happens at import. The request pipeline, in order:
  1. CanonicalPathMiddleware — ARM keywords lower-cased, names kept (routing.py)
  2. the router: ``/blob/...`` (Storage page-blob subset, SAS-authenticated), the sign-in
     routes (OpenID, token, metadata), then the ARM routers, whose dependencies check the
     bearer token, then the api-version (deps.py)
  3. the handler: a thin router function calling one ``platform.resources`` operation
  4. errors: ``PlatformError`` → its status and envelope (errors.py); anything else → 500
Job kinds and LRO result renderers are collected from the resource modules here, so a new
resource type is added in one place.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from azimg.platform.arm import errors as arm_errors
from azimg.platform.arm.routing import CanonicalPathMiddleware
from azimg.platform.errors import PlatformError
from azimg.platform.identity import Identity
from azimg.platform.jobs import Jobs
from azimg.platform.settings import Settings
from azimg.platform.store import Store

log = logging.getLogger(__name__)


def _router_modules() -> list[ModuleType]:
    """Every ARM router module, in inclusion order (the only list to extend)."""

    from azimg.platform.arm import identity, operations, resource_groups, subscriptions

    # Resource types first: FastAPI tries routes in order, and the per-type GETs are the hot
    # path (measured: routing is the largest cost of a GET); sign-in and plumbing last.
    modules: list[ModuleType] = []
    for optional in (
        "disks",
        "snapshots",
        "images",
        "galleries",
        "gallery_images",
        "gallery_versions",
        "virtual_machines",
        "deployments",
    ):
        mod = _import_optional(f"azimg.platform.arm.{optional}")
        if mod is not None:
            modules.append(mod)
    return [*modules, operations, resource_groups, subscriptions, identity]


def _import_optional(name: str) -> ModuleType | None:
    """A resource type's module, or None while it does not exist yet. One that exists but
    fails to import is logged loudly and left out, so one type in progress (several people
    build this tree at once) does not take every other type down with it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name == name:
            return None
        log.exception("cannot import %s; its routes are not served", name)
    except Exception:
        log.exception("cannot import %s; its routes are not served", name)
    return None


def _job_modules() -> list[ModuleType]:
    """Resource modules that declare jobs (``job_specs``) or release hooks (``RELEASERS``)."""
    out = []
    for name in (
        "disks",
        "snapshots",
        "images",
        "galleries",
        "gallery_images",
        "gallery_versions",
        "virtual_machines",
    ):
        mod = _import_optional(f"azimg.platform.resources.{name}")
        if mod is not None:
            out.append(mod)
    return out


def create_app(settings: Settings, store: Store) -> FastAPI:
    from azimg.platform.resources import resource_groups

    identity = Identity(store.meta, settings.data_dir, settings.base_url)
    jobs = Jobs(store, workers=settings.job_workers)

    releasers = {}
    resource_modules = _job_modules()
    for mod in resource_modules:
        for rtype, fn in getattr(mod, "RELEASERS", {}).items():
            releasers[rtype.lower()] = fn
    for kind, spec in resource_groups.job_specs(releasers).items():
        jobs.register(kind, spec)
    for mod in resource_modules:
        if hasattr(mod, "job_specs"):
            for kind, spec in mod.job_specs().items():
                jobs.register(kind, spec)

    from azimg.platform.resources.deployments import engine as deployments_engine

    services = [deployments_engine.service(settings, store, jobs)]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Services a resource type runs (the VM fabric) start before resumed jobs need them.
        for mod in resource_modules:
            if hasattr(mod, "start_services"):
                mod.start_services(settings, store)
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()
            for mod in resource_modules:
                if hasattr(mod, "stop_services"):
                    mod.stop_services(store)

    app = FastAPI(
        title="azimg ARM",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.store = store
    app.state.identity = identity
    app.state.jobs = jobs
    app.state.renderers = {}
    app.state.services = services

    from azimg.platform.arm import blob

    app.mount("/blob", blob.create_blob_app(store))
    for mod in _router_modules():
        app.include_router(mod.router)
        app.state.renderers.update(getattr(mod, "RENDERERS", {}))

    app.add_exception_handler(PlatformError, arm_errors.platform_error_handler)
    app.add_exception_handler(RequestValidationError, arm_errors.validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, arm_errors.http_error_handler)
    app.add_exception_handler(Exception, arm_errors.internal_error_handler)
    app.add_middleware(CanonicalPathMiddleware)
    return app
