"""Azure Compute Galleries (``Microsoft.Compute/galleries``): names, create, get, list, delete.

A gallery only holds image definitions; sharing (``permissions: Groups|Community``, POST
``/share``) is a later issue, so a gallery is Private and asking for more is refused by name
rather than silently stored (house rule 9). ``sharing_permissions`` is kept in the document so
that issue can build on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from azimg.platform.gallery_errors import (
    GalleryNameNotUnique,
    InvalidGalleryName,
    InvalidTrailingCharacters,
    NestedParentNotFound,
    NestedResourcesExist,
    NotImplementedByAzimg,
    PropertyChange,
    ResourceExistsElsewhere,
    SharingGroupsReadOnly,
)
from azimg.platform.resources.common import (
    Reads,
    check_location,
    check_tags,
    enum_value,
    require_resource_group,
    resource_id,
    system_data,
)
from azimg.platform.store import Document, Store

GALLERY_TYPE = "Microsoft.Compute/galleries"
SHARING_PERMISSIONS = ("Private", "Groups", "Community")

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.]{0,78}[A-Za-z0-9])?$")
_NAME_CHARS = re.compile(r"^[A-Za-z0-9_.]{1,80}$")


@dataclass(frozen=True)
class Gallery:
    id: str
    name: str
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    unique_name: str = ""
    sharing_permissions: str = "Private"
    provisioning_state: str = "Succeeded"
    system_data: Mapping[str, str] = field(default_factory=dict)


def check_gallery_name(name: str) -> None:
    """Letters, digits, and ``_``/``.`` in the middle only; no hyphens; at most 80."""
    if _NAME_CHARS.match(name) and name[-1] in "._":
        raise InvalidTrailingCharacters(target="galleryName", name=name, char=name[-1])
    if not _NAME.match(name):
        raise InvalidGalleryName(target="galleryName")


def unique_name(subscription_id: str, name: str) -> str:
    """``identifier.uniqueName``: the subscription id and the upper-cased gallery name."""
    return f"{subscription_id}-{name.upper()}"


def _from_doc(doc: Document) -> Gallery:
    b = doc.body
    return Gallery(
        id=doc.id,
        name=b["name"],
        location=b["location"],
        tags=b.get("tags", {}),
        description=b.get("description"),
        unique_name=b["uniqueName"],
        sharing_permissions=b.get("sharingPermissions", "Private"),
        provisioning_state=b.get("provisioningState", "Succeeded"),
        system_data=b.get("systemData", {}),
    )


def _save(store: Store, g: Gallery) -> Gallery:
    store.meta.put(
        Document(
            id=g.id,
            type=GALLERY_TYPE,
            location=g.location,
            body={
                "name": g.name,
                "location": g.location,
                "tags": dict(g.tags),
                "description": g.description,
                "uniqueName": g.unique_name,
                "sharingPermissions": g.sharing_permissions,
                "provisioningState": g.provisioning_state,
                "systemData": dict(g.system_data),
            },
        )
    )
    return g


def gallery_id(subscription_id: str, resource_group: str, name: str) -> str:
    return resource_id(subscription_id, resource_group, GALLERY_TYPE, name)


_READS = Reads(GALLERY_TYPE, _from_doc)
get_by_id = _READS.get_by_id
get = _READS.get
list_by_resource_group = _READS.list_by_resource_group
list_by_subscription = _READS.list_by_subscription


def require_parent(store: Store, parent_id: str, parent_type: str, label: str) -> Document:
    """A nested resource's parent, or Azure's 404 ``ParentResourceNotFound`` naming it."""
    doc = store.meta.get(parent_id)
    if doc is not None and doc.type.lower() == parent_type.lower():
        return doc
    parts = parent_id.strip("/").split("/")
    require_resource_group(store, parts[1], parts[3])
    raise NestedParentNotFound(label=label)


@dataclass(frozen=True)
class SharingSpec:
    """``sharingProfile`` as given; ``groups`` is read-only (changed by POST /share)."""

    permissions: str | None = None
    groups_given: bool = False


@dataclass(frozen=True)
class GallerySpec:
    """A PUT or PATCH of a gallery (None = not given)."""

    location: str | None = None
    description: str | None = None
    sharing: SharingSpec | None = None
    soft_delete_enabled: bool | None = None
    tags: Mapping[str, str] | None = None


def _permissions(sharing: SharingSpec | None) -> str:
    if sharing is None:
        return "Private"
    if sharing.groups_given:
        raise SharingGroupsReadOnly(target="sharingProfile.groups")
    return (
        "Private"
        if sharing.permissions is None
        else enum_value(
            sharing.permissions, SHARING_PERMISSIONS, target="sharingProfile.permissions"
        )
    )


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    spec: GallerySpec,
    caller: str,
) -> tuple[Gallery, bool]:
    """The gallery and whether it was created (201) rather than updated (200)."""
    require_resource_group(store, subscription_id, resource_group)
    check_gallery_name(name)
    region = check_location(store, spec.location, rtype=GALLERY_TYPE)
    clean_tags = check_tags(spec.tags)
    permissions = _permissions(spec.sharing)
    if permissions != "Private":
        raise NotImplementedByAzimg(
            target="sharingProfile.permissions", feature=f"Gallery sharing ({permissions})"
        )
    if spec.soft_delete_enabled:
        raise NotImplementedByAzimg(
            target="softDeletePolicy.isSoftDeleteEnabled",
            feature="Soft delete of gallery artifacts",
        )
    rid = gallery_id(subscription_id, resource_group, name)
    doc = store.meta.get(rid)
    if doc is not None and doc.type == GALLERY_TYPE:
        current = _from_doc(doc)
        if current.location != region:
            raise ResourceExistsElsewhere(
                target="location",
                name=current.name,
                existing=current.location,
                where=f" in resource group '{resource_group}'",
                location=region,
            )
        if spec.sharing is not None and permissions != current.sharing_permissions:
            raise PropertyChange(
                target="sharingProfile.permissions",
                prop="gallery.properties.sharingProfile.permissions",
            )
        updated = Gallery(
            id=current.id,
            name=current.name,
            location=current.location,
            tags=clean_tags if spec.tags is not None else current.tags,
            description=spec.description if spec.description is not None else current.description,
            unique_name=current.unique_name,
            sharing_permissions=current.sharing_permissions,
            system_data=system_data(caller, current.system_data.get("createdAt")),
        )
        return _save(store, updated), False
    for other in store.meta.list(type=GALLERY_TYPE, prefix=f"/subscriptions/{subscription_id}/"):
        if other.body["name"].lower() == name.lower():
            raise GalleryNameNotUnique(
                target="galleryName", name=name, subscription=subscription_id
            )
    gallery = Gallery(
        id=rid,
        name=name,
        location=region,
        tags=clean_tags,
        description=spec.description,
        unique_name=unique_name(subscription_id, name),
        sharing_permissions=permissions,
        system_data=system_data(caller),
    )
    return _save(store, gallery), True


def update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    patch: GallerySpec,
    caller: str,
) -> Gallery:
    """PATCH: only what is given changes."""
    current = get(store, subscription_id=subscription_id, resource_group=resource_group, name=name)
    gallery, _ = create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        spec=replace(
            patch,
            location=current.location,
            tags=patch.tags if patch.tags is not None else current.tags,
        ),
        caller=caller,
    )
    return gallery


def check_no_children(store: Store, parent_id: str) -> None:
    """Azure deletes versions, then definitions, then galleries: never a parent with children."""
    children = store.meta.list(parent=parent_id)
    if children:
        nested = children[0].id.split("/providers/", 1)[1]
        raise NestedResourcesExist(nested=nested)


def delete(store: Store, *, subscription_id: str, resource_group: str, name: str) -> None:
    """Deleting an absent gallery succeeds (204), as ARM deletes are idempotent."""
    require_resource_group(store, subscription_id, resource_group)
    rid = gallery_id(subscription_id, resource_group, name)
    doc = store.meta.get(rid)
    if doc is None or doc.type != GALLERY_TYPE:
        return
    check_no_children(store, rid)
    store.meta.delete(rid)
