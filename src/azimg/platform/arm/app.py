"""The platform's HTTPS application, built by ``create_app(settings, store)``.

Nothing happens at import. The request pipeline, in order:
  1. CanonicalPathMiddleware — ARM keywords lower-cased, names kept (routing.py)
  2. the router: ``/blob/...`` (Storage page-blob subset, SAS-authenticated), the sign-in
     routes (OpenID, token, metadata), then the ARM routers, whose dependencies check the
     bearer token, then the api-version (deps.py)
  3. the handler: a thin router function calling one ``platform.resources`` operation
  4. errors: ``PlatformError`` → its status and envelope (errors.py); anything else → 500
Routers, job kinds, LRO renderers, releasers and services come from ``platform/registry.py``,
imported eagerly: a resource type that fails to import stops the server with its error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from azimg.platform import registry
from azimg.platform.arm import blob
from azimg.platform.arm import errors as arm_errors
from azimg.platform.arm.guards import RequestGuardMiddleware
from azimg.platform.arm.routing import CanonicalPathMiddleware, HeadAsGetMiddleware
from azimg.platform.errors import PlatformError
from azimg.platform.identity import Identity
from azimg.platform.jobs import Jobs
from azimg.platform.settings import Settings
from azimg.platform.store import Store


def create_app(settings: Settings, store: Store) -> FastAPI:
    identity = Identity(
        store.meta,
        settings.data_dir,
        settings.base_url,
        throttle_window=settings.auth_throttle_window,
    )
    jobs = Jobs(store, workers=settings.job_workers)
    # Services first: they register the job kinds that need them (the VM controller's).
    by_type = {
        key: t.service(settings, store, jobs)
        for key, t in registry.TYPES.items()
        if t.service is not None
    }
    for kind, spec in registry.job_specs(by_type).items():
        jobs.register(kind, spec)
    services = list(by_type.values())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Services a resource type runs (the VM fabric) start before resumed jobs need them.
        for service in services:
            service.start()
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()
            for service in reversed(services):
                service.stop()

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
    app.state.services = services
    app.state.renderers = registry.renderers()
    app.state.types = registry.TYPES
    app.state.providers = registry.PROVIDERS
    app.state.api_versions = {k: t.api_versions for k, t in registry.TYPES.items()}

    app.mount("/blob", blob.create_blob_app(store))
    for router in registry.routers():
        app.include_router(router)

    app.add_exception_handler(PlatformError, arm_errors.platform_error_handler)
    app.add_exception_handler(RequestValidationError, arm_errors.validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, arm_errors.http_error_handler)
    app.add_exception_handler(Exception, arm_errors.internal_error_handler)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(CanonicalPathMiddleware)
    app.add_middleware(RequestGuardMiddleware, base_url=settings.base_url)  # outermost
    return app
