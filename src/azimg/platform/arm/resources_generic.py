"""The generic resources API: every registered resource of a subscription or group.

``GET /subscriptions/{s}/resources`` and ``.../resourceGroups/{rg}/resources`` with the
``$filter`` az and the SDK send (``resourceType eq``, ``name eq``, ``location eq``,
``resourceGroup eq``, ``tagName eq`` [``and tagValue eq``], ``substringof('x', name)``,
joined by ``and``) and ``$expand=createdTime,changedTime,provisioningState``. Each item is
the type's own rendering cut to the generic shape, so a list never invents a field. By-id
verbs need nothing here: ``az resource show/tag/delete --ids`` call the type's own URL with
an api-version read from provider metadata (``providers.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request

from azimg.platform.arm.deps import ARM_DEPENDENCIES, StoreDep
from azimg.platform.arm.paging import page
from azimg.platform.errors import InvalidFilterInQueryString, PlatformError
from azimg.platform.ids import ResourceId
from azimg.platform.resources import resource_groups
from azimg.platform.store import Document, Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["resources"])

#: Fields of a type's rendering that the generic shape keeps (GenericResourceExpanded).
_GENERIC_FIELDS = (
    "id",
    "name",
    "type",
    "kind",
    "location",
    "extendedLocation",
    "managedBy",
    "sku",
    "plan",
    "identity",
    "zones",
    "tags",
)
_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_SUBSTRING = re.compile(r"^\s*substringof\(\s*'((?:[^']|'')*)'\s*,\s*name\s*\)\s*$", re.I)
_FIELDS = {"resourcetype", "name", "location", "resourcegroup", "tagname", "tagvalue"}


@dataclass(frozen=True)
class Filter:
    """A parsed ``$filter``: every set condition must hold."""

    equals: Mapping[str, str]  # lower-cased field -> value
    name_contains: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> Filter:
        if raw is None or not raw.strip():
            return cls(equals={})
        equals: dict[str, str] = {}
        contains = None
        for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
            if m := _SUBSTRING.match(clause):
                contains = m.group(1).replace("''", "'")
                continue
            m = _CLAUSE.match(clause)
            if m is None or m.group(1).lower() not in _FIELDS:
                raise InvalidFilterInQueryString.of(
                    filter=raw,
                    reason="Supported: resourceType, name, location, resourceGroup, tagName "
                    "[and tagValue] with 'eq', and substringof('value', name), joined by 'and'.",
                )
            equals[m.group(1).lower()] = m.group(2).replace("''", "'")
        if "tagvalue" in equals and "tagname" not in equals:
            raise InvalidFilterInQueryString.of(
                filter=raw, reason="tagValue needs a tagName in the same filter."
            )
        return cls(equals=equals, name_contains=contains)

    def matches(self, item: Mapping[str, Any]) -> bool:
        eq = self.equals
        parsed = ResourceId.parse(item["id"])
        checks = {
            "resourcetype": str(item.get("type", "")),
            "name": str(item.get("name", "")),
            "location": str(item.get("location", "")).replace(" ", ""),
            "resourcegroup": parsed.resource_group,
        }
        for field, value in eq.items():
            if (
                field in checks
                and checks[field].lower() != value.replace(" ", "").lower()
                and (field != "name" or checks[field].lower() != value.lower())
            ):
                return False
        if "tagname" in eq:
            tags = {k.lower(): v for k, v in (item.get("tags") or {}).items()}
            if eq["tagname"].lower() not in tags:
                return False
            if "tagvalue" in eq and tags[eq["tagname"].lower()] != eq["tagvalue"]:
                return False
        if self.name_contains is not None:
            return self.name_contains.lower() in str(item.get("name", "")).lower()
        return True


Renderer = Callable[[Store, str], Mapping[str, Any]]


def _generic(
    store: Store, docs: list[Document], request: Request, expand: set[str]
) -> list[dict[str, Any]]:
    types = request.app.state.types
    out = []
    for doc in docs:
        t = types.get(doc.type.lower())
        if t is None or not t.generic or t.renderer is None:
            continue
        try:
            full = t.renderer(store, doc.id)
        except PlatformError:  # deleted between the list and the render
            continue
        item = {k: full[k] for k in _GENERIC_FIELDS if full.get(k) is not None}
        system = full.get("systemData") or {}
        if "createdtime" in expand and system.get("createdAt"):
            item["createdTime"] = system["createdAt"]
        if "changedtime" in expand and system.get("lastModifiedAt"):
            item["changedTime"] = system["lastModifiedAt"]
        state = (full.get("properties") or {}).get("provisioningState")
        if "provisioningstate" in expand and state:
            item["provisioningState"] = state
        out.append(item)
    return out


def _list(store: Store, docs: list[Document], request: Request) -> dict[str, Any]:
    wanted = Filter.parse(request.query_params.get("$filter"))
    expand = {
        e.strip().lower() for e in request.query_params.get("$expand", "").split(",") if e.strip()
    }
    items = [i for i in _generic(store, docs, request, expand) if wanted.matches(i)]
    return page(request, items)


@router.get("/subscriptions/{subscription_id}/resourcegroups/{name}/resources")
def list_in_group(
    subscription_id: str, name: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    docs = resource_groups.list_resources(store, subscription_id=subscription_id, name=name)
    return _list(store, docs, request)


@router.get("/subscriptions/{subscription_id}/resources")
def list_in_subscription(subscription_id: str, request: Request, store: StoreDep) -> dict[str, Any]:
    docs = resource_groups.list_all_resources(store, subscription_id=subscription_id)
    return _list(store, docs, request)
