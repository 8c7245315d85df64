"""Rules every resource type shares: ids, names, locations, tags, enums, systemData.

Pure domain helpers; they raise the platform's ARM errors and know nothing about HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from azimg.platform.errors import (
    InvalidParameter,
    InvalidResourceName,
    LocationNotAvailableForResourceType,
    ParentResourceNotFound,
    PlatformError,
    ResourceGroupNotFound,
    ResourceNotFound,
    SubscriptionNotFound,
)
from azimg.platform.ids import (
    RESOURCE_GROUP_TYPE,
    ResourceId,
    resource_id,
    resource_type,
    rg_id,
    utc_now,
)
from azimg.platform.settings import normalise_location
from azimg.platform.store import Document, Store

__all__ = ["RESOURCE_GROUP_TYPE", "resource_id", "rg_id", "utc_now"]  # re-exported from ids

T = TypeVar("T")


def parse_id(rid: str) -> dict[str, str]:
    """``ids.ResourceId.parse`` as the dict older callers read (``subscription``,
    ``resource_group``, ``namespace``, ``type``, ``name``); prefer ``ResourceId`` itself."""
    parsed = ResourceId.parse(rid)
    return {
        "subscription": parsed.subscription,
        "resource_group": parsed.resource_group,
        "namespace": parsed.namespace,
        "type": parsed.type,
        "name": parsed.name,
    }


def type_of(rid: str) -> str:
    return resource_type(rid)


def check_subscription(store: Store, subscription_id: str) -> None:
    if store.meta.get(f"/subscriptions/{subscription_id}") is None:
        raise SubscriptionNotFound.of(subscription=subscription_id)


def require_resource_group(store: Store, subscription_id: str, resource_group: str) -> Document:
    check_subscription(store, subscription_id)
    doc = store.meta.get(rg_id(subscription_id, resource_group))
    if doc is None:
        raise ResourceGroupNotFound.of(resource_group=resource_group)
    return doc


def not_found(rtype: str, name: str, resource_group: str) -> PlatformError:
    return ResourceNotFound.of(type=rtype, name=name, resource_group=resource_group)


def require_document(store: Store, rid: str, rtype: str) -> Document:
    """The stored document of ``rid``; 404 with the right code (RG, parent or resource)."""
    doc = store.meta.get(rid)
    if doc is not None and doc.type.lower() == rtype.lower():
        return doc
    parts = parse_id(rid)
    require_resource_group(store, parts["subscription"], parts["resource_group"])
    segs = rid.strip("/").split("/")
    if len(segs) > 8:
        parent = "/" + "/".join(segs[:-2])
        if store.meta.get(parent) is None:
            raise ParentResourceNotFound.of(parent="/".join(segs[7:-2:2]))
    raise not_found(rtype, parts["name"], parts["resource_group"])


_NAME_CHARS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_name(
    name: str, *, kind: str, max_len: int = 80, pattern: re.Pattern[str] = _NAME_CHARS
) -> None:
    """Compute's name rules: ≤ 80 chars of ``A-Za-z0-9_.-``, start alnum, end alnum or ``_``."""
    if not (1 <= len(name) <= max_len) or not pattern.match(name) or name[-1] in ".-":
        raise InvalidResourceName(
            f"The {kind} name '{name}' is invalid. It must be 1-{max_len} characters of "
            "letters, digits, '_', '.' and '-', start with a letter or digit and end with a "
            "letter, digit or '_'.",
            target="name",
        )


def check_location(store: Store, location: Any, *, rtype: str) -> str:
    """The normalised region, or 400 when missing or not one of the platform's regions."""
    if not isinstance(location, str) or not location.strip():
        raise InvalidParameter(
            "The 'location' property is required for this definition.", target="location"
        )
    region = normalise_location(location)
    if region not in store.regions:
        raise LocationNotAvailableForResourceType(
            f"The provided location '{location}' is not available for resource type "
            f"'{rtype}'. List of available regions for the resource type is "
            f"'{','.join(store.regions)}'.",
            target="location",
        )
    return region


def check_tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or len(tags) > 50:
        raise InvalidParameter("Tags must be an object of at most 50 names.", target="tags")
    out: dict[str, str] = {}
    for k, v in tags.items():
        if not isinstance(k, str) or not (1 <= len(k) <= 512) or any(c in k for c in "<>%&\\?/"):
            raise InvalidParameter(f"The tag name '{k}' is invalid.", target="tags")
        if not isinstance(v, str) or len(v) > 256:
            raise InvalidParameter(f"The value of tag '{k}' must be a string.", target="tags")
        out[k] = v
    return out


def enum_value(value: Any, allowed: Iterable[str], *, target: str) -> str:
    """``value`` in its canonical casing (enums compare case-insensitively)."""
    if isinstance(value, str):
        for a in allowed:
            if a.lower() == value.lower():
                return a
    raise InvalidParameter(
        f"The value '{value}' of parameter '{target}' is not allowed. Allowed values are "
        f"{', '.join(allowed)}.",
        target=target,
    )


def system_data(app_id: str, created_at: str | None = None, *, now: str | None = None) -> dict:
    now = now or utc_now()
    return {
        "createdBy": app_id,
        "createdByType": "Application",
        "createdAt": created_at or now,
        "lastModifiedBy": app_id,
        "lastModifiedByType": "Application",
        "lastModifiedAt": now,
    }


class Reads(Generic[T]):
    """The reads every tracked, resource-group-scoped type answers the same way (get by id or
    name, list by group or subscription): declared once per type as ``Reads(TYPE, from_doc)``
    instead of four look-alike functions in every module."""

    def __init__(self, rtype: str, from_doc: Callable[[Document], T]) -> None:
        self.rtype = rtype
        self.from_doc = from_doc

    def get_by_id(self, store: Store, rid: str) -> T:
        return self.from_doc(require_document(store, rid, self.rtype))

    def get(self, store: Store, *, subscription_id: str, resource_group: str, name: str) -> T:
        return self.get_by_id(store, resource_id(subscription_id, resource_group, self.rtype, name))

    def list_by_resource_group(
        self, store: Store, *, subscription_id: str, resource_group: str
    ) -> list[T]:
        rg = require_resource_group(store, subscription_id, resource_group)
        return [self.from_doc(d) for d in store.meta.list(type=self.rtype, prefix=rg.id + "/")]

    def list_by_subscription(self, store: Store, *, subscription_id: str) -> list[T]:
        check_subscription(store, subscription_id)
        prefix = f"/subscriptions/{subscription_id}/"
        return [self.from_doc(d) for d in store.meta.list(type=self.rtype, prefix=prefix)]
