"""Resource groups: create, get, list, update tags, and delete with everything inside.

Deleting is a job (``JOB_DELETE``): the group is marked Deleting, then its resources are
removed children-first, each through the ``release`` hook of its type when one exists (a VM
must stop its QEMU) and by dropping the blobs its document owns. The job is resumable: after a
crash it simply continues with what is left.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azimg.platform.errors import (
    InvalidResourceGroupLocation,
    InvalidResourceName,
    ResourceGroupBeingDeleted,
    ResourceGroupNotFound,
)
from azimg.platform.jobs import JobSpec
from azimg.platform.resources.common import (
    RESOURCE_GROUP_TYPE,
    check_location,
    check_subscription,
    check_tags,
    rg_id,
)
from azimg.platform.store import Document, Operation, Store

JOB_DELETE = "resourcegroups.delete"
_NAME = re.compile(r"^[-\w._()]{1,90}$")

#: A type's hook to release what a document holds beyond its blobs (processes, sockets).
Releaser = Callable[[Store, Document], None]


@dataclass(frozen=True)
class ResourceGroup:
    id: str
    name: str
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)
    managed_by: str | None = None
    provisioning_state: str = "Succeeded"


def _from_doc(doc: Document) -> ResourceGroup:
    b = doc.body
    return ResourceGroup(
        id=doc.id,
        name=b["name"],
        location=b["location"],
        tags=b.get("tags", {}),
        managed_by=b.get("managedBy"),
        provisioning_state=b.get("provisioningState", "Succeeded"),
    )


def _save(store: Store, rg: ResourceGroup) -> ResourceGroup:
    store.meta.put(
        Document(
            id=rg.id,
            type=RESOURCE_GROUP_TYPE,
            location=rg.location,
            body={
                "name": rg.name,
                "location": rg.location,
                "tags": dict(rg.tags),
                "managedBy": rg.managed_by,
                "provisioningState": rg.provisioning_state,
            },
        )
    )
    return rg


def get(store: Store, *, subscription_id: str, name: str) -> ResourceGroup:
    check_subscription(store, subscription_id)
    doc = store.meta.get(rg_id(subscription_id, name))
    if doc is None:
        raise ResourceGroupNotFound(f"Resource group '{name}' could not be found.")
    return _from_doc(doc)


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    name: str,
    location: Any,
    tags: Any = None,
    managed_by: str | None = None,
) -> tuple[ResourceGroup, bool]:
    """The group and whether it was created (201) rather than updated (200)."""
    check_subscription(store, subscription_id)
    if not _NAME.match(name) or name.endswith("."):
        raise InvalidResourceName(
            f"Resource group name '{name}' is invalid. It can include alphanumeric, "
            "underscore, parentheses, hyphen, period (except at end), and Unicode characters "
            "that match the allowed characters.",
            target="resourceGroupName",
        )
    region = check_location(store, location, rtype=RESOURCE_GROUP_TYPE)
    clean_tags = check_tags(tags)
    doc = store.meta.get(rg_id(subscription_id, name))
    if doc is not None:
        current = _from_doc(doc)
        if current.provisioning_state == "Deleting":
            raise ResourceGroupBeingDeleted(
                f"The resource group '{current.name}' is in deprovisioning state and cannot "
                "perform this operation."
            )
        if current.location != region:
            raise InvalidResourceGroupLocation(
                f"Invalid resource group location '{region}'. The Resource group already "
                f"exists in location '{current.location}'.",
                target="location",
            )
        updated = ResourceGroup(
            id=current.id,
            name=current.name,
            location=current.location,
            tags=clean_tags,
            managed_by=managed_by if managed_by is not None else current.managed_by,
        )
        return _save(store, updated), False
    rg = ResourceGroup(
        id=rg_id(subscription_id, name),
        name=name,
        location=region,
        tags=clean_tags,
        managed_by=managed_by,
    )
    return _save(store, rg), True


def update(
    store: Store, *, subscription_id: str, name: str, tags: Any = None, managed_by: Any = None
) -> ResourceGroup:
    current = get(store, subscription_id=subscription_id, name=name)
    updated = ResourceGroup(
        id=current.id,
        name=current.name,
        location=current.location,
        tags=check_tags(tags) if tags is not None else current.tags,
        managed_by=managed_by if managed_by is not None else current.managed_by,
        provisioning_state=current.provisioning_state,
    )
    return _save(store, updated)


def list_by_subscription(store: Store, *, subscription_id: str) -> list[ResourceGroup]:
    check_subscription(store, subscription_id)
    return [
        _from_doc(d)
        for d in store.meta.list(
            type=RESOURCE_GROUP_TYPE, prefix=f"/subscriptions/{subscription_id}/"
        )
    ]


def list_resources(store: Store, *, subscription_id: str, name: str) -> list[Document]:
    """Every resource inside the group (generic view: id, name, type, location, tags)."""
    rg = get(store, subscription_id=subscription_id, name=name)
    return store.meta.list(prefix=rg.id + "/providers/")


def list_all_resources(store: Store, *, subscription_id: str) -> list[Document]:
    """Every resource in every group of the subscription (``GET /subscriptions/{s}/resources``)."""
    check_subscription(store, subscription_id)
    return [
        d
        for d in store.meta.list(prefix=f"/subscriptions/{subscription_id}/resourcegroups/")
        if d.type != RESOURCE_GROUP_TYPE
    ]


def begin_delete(store: Store, *, subscription_id: str, name: str) -> ResourceGroup:
    """Mark the group Deleting; the caller submits ``JOB_DELETE`` to empty and remove it."""
    current = get(store, subscription_id=subscription_id, name=name)
    deleting = ResourceGroup(
        id=current.id,
        name=current.name,
        location=current.location,
        tags=current.tags,
        managed_by=current.managed_by,
        provisioning_state="Deleting",
    )
    return _save(store, deleting)


def delete_contents(store: Store, rg_resource_id: str, releasers: Mapping[str, Releaser]) -> None:
    """Remove every resource under the group (deepest first), then the group itself."""
    docs = store.meta.list(prefix=rg_resource_id + "/providers/")
    docs.sort(key=lambda d: d.id.count("/"), reverse=True)
    for doc in docs:
        release = releasers.get(doc.type.lower())
        if release is not None:
            release(store, doc)
        for blob in doc.blobs:
            store.blobs.delete(blob)
        store.meta.delete(doc.id)
    store.meta.delete(rg_resource_id)


def job_specs(releasers: Mapping[str, Releaser]) -> dict[str, JobSpec]:
    def run(store: Store, op: Operation) -> None:
        delete_contents(store, op.resource_id, releasers)
        return None

    return {JOB_DELETE: JobSpec(run=run, resumable=True)}
