"""Rules every resource type shares: ids, names, locations, tags, enums, systemData.

Pure domain helpers; they raise the platform's ARM errors and know nothing about HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from azimg.platform.errors import (
    InvalidParameter,
    InvalidResourceName,
    LocationNotAvailableForResourceType,
    ParentResourceNotFound,
    PreconditionFailed,
    ResourceGroupNotFound,
    ResourceNotFound,
    SubscriptionNotFound,
)
from azimg.platform.settings import normalise_location
from azimg.platform.store import Document, Store

RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def rg_id(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"


def resource_id(
    subscription_id: str, resource_group: str, rtype: str, name: str, *children: str
) -> str:
    """``rtype`` like ``Microsoft.Compute/disks``; ``children`` alternate type and name."""
    rid = f"{rg_id(subscription_id, resource_group)}/providers/{rtype}/{name}"
    for child in children:
        rid += f"/{child}"
    return rid


def parse_id(rid: str) -> dict[str, str]:
    """``subscription``, ``resource_group``, ``namespace``, ``type`` (full, cased as given)
    and ``name`` (last segment) of an ARM resource id; raises ``InvalidParameter``."""
    segs = rid.strip("/").split("/")
    low = [s.lower() for s in segs]
    if len(segs) < 8 or low[0] != "subscriptions" or low[2] != "resourcegroups":
        raise InvalidParameter(f"The resource id '{rid}' is not a valid ARM resource id.")
    if low[4] != "providers" or len(segs) % 2 != 0:
        raise InvalidParameter(f"The resource id '{rid}' is not a valid ARM resource id.")
    types = [segs[5] + "/" + segs[6]] + [segs[i] for i in range(8, len(segs), 2)]
    return {
        "subscription": segs[1],
        "resource_group": segs[3],
        "namespace": segs[5],
        "type": "/".join(types),
        "name": segs[-1],
    }


def type_of(rid: str) -> str:
    return parse_id(rid)["type"].lower()


def check_subscription(store: Store, subscription_id: str) -> None:
    if store.meta.get(f"/subscriptions/{subscription_id}") is None:
        raise SubscriptionNotFound(f"The subscription '{subscription_id}' could not be found.")


def require_resource_group(store: Store, subscription_id: str, resource_group: str) -> Document:
    check_subscription(store, subscription_id)
    doc = store.meta.get(rg_id(subscription_id, resource_group))
    if doc is None:
        raise ResourceGroupNotFound(f"Resource group '{resource_group}' could not be found.")
    return doc


def not_found(rtype: str, name: str, resource_group: str) -> ResourceNotFound:
    return ResourceNotFound(
        f"The Resource '{rtype}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )


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
            raise ParentResourceNotFound(
                "Can not perform requested operation on nested resource. Parent resource "
                f"'{'/'.join(segs[7:-2:2])}' not found."
            )
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


def update_if(store: Store, rid: str, change: Callable[[Document], Document | None]) -> bool:
    """Write ``change(doc)`` under the document's ETag, retrying when someone else wrote first.

    ``change`` returns None when the document is no longer the one the caller meant (deleted,
    or replaced by a new one of the same name); then nothing is written and the answer is
    False. A background job's late write therefore loses cleanly against a concurrent delete
    instead of resurrecting the document.
    """
    while True:
        doc = store.meta.get(rid)
        if doc is None:
            return False
        new = change(doc)
        if new is None:
            return False
        try:
            store.meta.put(new, if_match=doc.etag)
            return True
        except PreconditionFailed:
            continue
