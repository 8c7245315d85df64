"""The four routes every Microsoft.Network type has alike: GET and DELETE of one resource,
and the lists per resource group and per subscription. Each type's module adds its PUT,
PATCH and child routes itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response

from azimg.platform.arm.deps import StoreDep
from azimg.platform.arm.network.models import rg_base, sub_base
from azimg.platform.arm.paging import page
from azimg.platform.store import Store


class Domain(Protocol):
    """The operation names every network domain module exports."""

    def get(self, store: Store, *, subscription_id: str, resource_group: str, name: str) -> Any: ...

    def delete(
        self, store: Store, *, subscription_id: str, resource_group: str, name: str
    ) -> bool: ...

    def list_by_resource_group(
        self, store: Store, *, subscription_id: str, resource_group: str
    ) -> Sequence[Any]: ...

    def list_by_subscription(self, store: Store, *, subscription_id: str) -> Sequence[Any]: ...


def add_common_routes(
    router: APIRouter,
    collection: str,
    domain: Domain,
    render: Callable[[Store, Any], dict[str, Any]],
) -> None:
    base = rg_base(collection)

    @router.get(base + "/{name}")
    def get(
        subscription_id: str, resource_group: str, name: str, store: StoreDep
    ) -> dict[str, Any]:
        item = domain.get(
            store, subscription_id=subscription_id, resource_group=resource_group, name=name
        )
        return render(store, item)

    @router.delete(base + "/{name}")
    def delete(subscription_id: str, resource_group: str, name: str, store: StoreDep) -> Response:
        deleted = domain.delete(
            store, subscription_id=subscription_id, resource_group=resource_group, name=name
        )
        return Response(status_code=200 if deleted else 204)

    @router.get(base)
    def list_by_resource_group(
        subscription_id: str, resource_group: str, request: Request, store: StoreDep
    ) -> dict[str, Any]:
        items = domain.list_by_resource_group(
            store, subscription_id=subscription_id, resource_group=resource_group
        )
        return page(request, [render(store, i) for i in items])

    @router.get(sub_base(collection))
    def list_by_subscription(
        subscription_id: str, request: Request, store: StoreDep
    ) -> dict[str, Any]:
        items = domain.list_by_subscription(store, subscription_id=subscription_id)
        return page(request, [render(store, i) for i in items])
