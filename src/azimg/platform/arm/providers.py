"""Resource providers as ARM serves them, from the registry's declarations.

``GET /subscriptions/{s}/providers[/{namespace}]``, tenant-level ``GET /providers[/{ns}]``,
and ``POST .../providers/{namespace}/register|unregister``. az reads a type's api-versions
here before ``az resource show/delete/tag --ids``; the SDK's auto-registration policy POSTs
``register`` (api-version 2016-02-01) when a write answers MissingSubscriptionRegistration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request

from azimg.platform.arm.deps import ARM_DEPENDENCIES, StoreDep
from azimg.platform.arm.paging import page
from azimg.platform.errors import ProviderNotFound
from azimg.platform.resources import providers, subscriptions
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["providers"])


def _providers(request: Request) -> Sequence[Any]:
    """The registry's ``Provider`` declarations (``app.state.providers``)."""
    return request.app.state.providers


def _find(request: Request, namespace: str) -> Any:
    for p in _providers(request):
        if p.namespace.lower() == namespace.lower():
            return p
    raise ProviderNotFound.of(namespace=namespace)


def _render(provider: Any, regions: list[str], *, store: Store, sub: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"/subscriptions/{sub}/providers/{provider.namespace}"
        if sub
        else f"/providers/{provider.namespace}",
        "namespace": provider.namespace,
    }
    if sub:
        body["registrationState"] = (
            providers.REGISTERED
            if provider.always_registered
            else providers.state(store, subscription_id=sub, namespace=provider.namespace)
        )
        body["registrationPolicy"] = (
            "RegistrationFree" if provider.always_registered else "RegistrationRequired"
        )
    body["resourceTypes"] = [
        {
            "resourceType": t.type,
            "locations": regions if t.regional else [],
            "apiVersions": list(t.api_versions),
            "defaultApiVersion": next(
                (v for v in t.api_versions if "preview" not in v), t.api_versions[0]
            ),
            "capabilities": "None",
        }
        for t in provider.types
    ]
    return body


def _regions(store: Store, sub: str | None) -> list[str]:
    if sub is None:
        return [loc.display_name for loc in subscriptions.region_facts(store)]
    return [loc.display_name for loc in subscriptions.list_locations(store, subscription_id=sub)]


@router.get("/subscriptions/{subscription_id}/providers")
def list_providers(subscription_id: str, request: Request, store: StoreDep) -> dict[str, Any]:
    regions = _regions(store, subscription_id)
    return page(
        request,
        [_render(p, regions, store=store, sub=subscription_id) for p in _providers(request)],
    )


@router.get("/subscriptions/{subscription_id}/providers/{namespace}")
def get_provider(
    subscription_id: str, namespace: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    provider = _find(request, namespace)
    return _render(provider, _regions(store, subscription_id), store=store, sub=subscription_id)


def _set(
    subscription_id: str, namespace: str, request: Request, store: Store, *, registered: bool
) -> dict[str, Any]:
    provider = _find(request, namespace)
    if not provider.always_registered:
        providers.set_state(
            store,
            subscription_id=subscription_id,
            namespace=provider.namespace,
            registered=registered,
        )
    return _render(provider, _regions(store, subscription_id), store=store, sub=subscription_id)


@router.post("/subscriptions/{subscription_id}/providers/{namespace}/register")
def register(
    subscription_id: str, namespace: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    return _set(subscription_id, namespace, request, store, registered=True)


@router.post("/subscriptions/{subscription_id}/providers/{namespace}/unregister")
def unregister(
    subscription_id: str, namespace: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    return _set(subscription_id, namespace, request, store, registered=False)


@router.get("/providers")
def list_tenant_providers(request: Request, store: StoreDep) -> dict[str, Any]:
    regions = _regions(store, None)
    return page(request, [_render(p, regions, store=store, sub=None) for p in _providers(request)])


@router.get("/providers/{namespace}")
def get_tenant_provider(namespace: str, request: Request, store: StoreDep) -> dict[str, Any]:
    return _render(_find(request, namespace), _regions(store, None), store=store, sub=None)
