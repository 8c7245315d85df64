"""Gallery image definitions (``Microsoft.Compute/galleries/images``): rules and operations.

A definition fixes what every version under it must be: OS type, OS state, Hyper-V generation,
architecture and the (publisher, offer, sku) identifier, which is unique inside its gallery.
Those are immutable; everything else (description, EOL date, recommendations, features with
``allowUpdateImage``…) is stored and echoed as given. Requests arrive as typed commands
(``DefinitionSpec`` for PUT, ``DefinitionPatch`` for PATCH); the router renders responses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from azimg.platform.gallery_errors import (
    DuplicateImageIdentifier,
    EndOfLifeInThePast,
    FeaturesChangeNotAllowed,
    InvalidDate,
    InvalidDefinitionName,
    InvalidIdentifierPart,
    PropertyChange,
    RecommendedMinAboveMax,
    RequiredParameterMissing,
    ResourceExistsElsewhere,
)
from azimg.platform.resources import galleries
from azimg.platform.resources.common import (
    check_location,
    check_tags,
    enum_value,
    require_document,
    resource_id,
    system_data,
)
from azimg.platform.store import Document, Store

IMAGE_TYPE = "Microsoft.Compute/galleries/images"
OS_TYPES = ("Windows", "Linux")
OS_STATES = ("Generalized", "Specialized")
HYPER_V_GENERATIONS = ("V1", "V2")
ARCHITECTURES = ("x64", "Arm64")

_NAME = re.compile(r"^[^_\W][\w\-._]{0,79}(?<![-.])$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9._-]+$")
_IDENTIFIER_LIMITS = {"publisher": 128, "offer": 64, "sku": 64}


@dataclass(frozen=True)
class Identifier:
    publisher: str | None = None
    offer: str | None = None
    sku: str | None = None


@dataclass(frozen=True)
class Range:
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class Recommended:
    v_cpus: Range | None = None
    memory: Range | None = None


@dataclass(frozen=True)
class PurchasePlan:
    name: str | None = None
    publisher: str | None = None
    product: str | None = None


@dataclass(frozen=True)
class Feature:
    name: str | None = None
    value: str | None = None
    starts_at_version: str | None = None


@dataclass(frozen=True)
class Extra:
    """What a definition stores and echoes as given: no rule of ours reads it, but
    ``features`` may change only with ``allowUpdateImage``."""

    description: str | None = None
    eula: str | None = None
    privacy_statement_uri: str | None = None
    release_note_uri: str | None = None
    recommended: Recommended | None = None
    disallowed_disk_types: tuple[str, ...] | None = None
    purchase_plan: PurchasePlan | None = None
    features: tuple[Feature, ...] | None = None
    allow_update_image: bool | None = None


@dataclass(frozen=True)
class DefinitionPatch:
    """A PATCH: the given properties replace the definition's, the rest stays (None = not
    given)."""

    os_type: str | None = None
    os_state: str | None = None
    hyper_v_generation: str | None = None
    architecture: str | None = None
    identifier: Identifier | None = None
    end_of_life_date: str | None = None
    extra: Extra = field(default_factory=Extra)
    tags: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DefinitionSpec(DefinitionPatch):
    """A PUT: the definition as the client wants it."""

    location: str | None = None


@dataclass(frozen=True)
class GalleryImage:
    id: str
    name: str
    location: str
    os_type: str
    os_state: str
    hyper_v_generation: str
    architecture: str
    publisher: str
    offer: str
    sku: str
    end_of_life_date: str | None = None
    extra: Extra = field(default_factory=Extra)
    tags: Mapping[str, str] = field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    system_data: Mapping[str, str] = field(default_factory=dict)


def check_image_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidDefinitionName(target="galleryImageName", name=name)


def check_identifier(identifier: Identifier | None) -> tuple[str, str, str]:
    """(publisher, offer, sku): letters, digits, ``-._``, not ending in ``.``, bounded."""
    if identifier is None:
        raise RequiredParameterMissing(
            target="properties.identifier", name="galleryImage.properties.identifier"
        )
    out = []
    for part, limit in _IDENTIFIER_LIMITS.items():
        value = getattr(identifier, part)
        if (
            value is None
            or not _IDENTIFIER.match(value)
            or value.endswith(".")
            or len(value) > limit
        ):
            raise InvalidIdentifierPart(
                target=f"properties.identifier.{part}", part=part, limit=limit
            )
        out.append(value)
    return out[0], out[1], out[2]


def parse_date(value: Any, target: str) -> datetime:
    """ISO-8601 date or date-time, in UTC; naive values are UTC."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidDate(target=target, value=value, path=target) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def check_end_of_life(value: Any, *, now: datetime) -> str | None:
    if value is None:
        return None
    when = parse_date(value, "properties.endOfLifeDate")
    if when <= now:
        raise EndOfLifeInThePast(target="properties.endOfLifeDate")
    return when.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def check_recommended(recommended: Recommended | None) -> None:
    """``recommended.{vCPUs,memory}``: min must not exceed max."""
    if recommended is None:
        return
    for resource, bounds in (("vCPUs", recommended.v_cpus), ("memory", recommended.memory)):
        if bounds is None:
            continue
        lo, hi = bounds.min, bounds.max
        if lo is not None and hi is not None and lo > hi:
            raise RecommendedMinAboveMax(
                target=f"properties.recommended.{resource}", resource=resource
            )


def _extra_from_json(raw: Mapping[str, Any]) -> Extra:
    """``Extra`` back from ``asdict`` (nested dataclasses are dicts, tuples are lists)."""

    def obj(cls: Any, value: Any) -> Any:
        return None if value is None else cls(**value)

    rec = raw.get("recommended")
    features = raw.get("features")
    disk_types = raw.get("disallowed_disk_types")
    return replace(
        Extra(**{f.name: raw.get(f.name) for f in fields(Extra)}),
        recommended=None
        if rec is None
        else Recommended(v_cpus=obj(Range, rec["v_cpus"]), memory=obj(Range, rec["memory"])),
        disallowed_disk_types=None if disk_types is None else tuple(disk_types),
        purchase_plan=obj(PurchasePlan, raw.get("purchase_plan")),
        features=None if features is None else tuple(Feature(**f) for f in features),
    )


def _from_doc(doc: Document) -> GalleryImage:
    b = doc.body
    return GalleryImage(
        id=doc.id,
        name=b["name"],
        location=b["location"],
        os_type=b["osType"],
        os_state=b["osState"],
        hyper_v_generation=b["hyperVGeneration"],
        architecture=b["architecture"],
        publisher=b["publisher"],
        offer=b["offer"],
        sku=b["sku"],
        end_of_life_date=b.get("endOfLifeDate"),
        extra=_extra_from_json(b.get("extra") or {}),
        tags=b.get("tags", {}),
        provisioning_state=b.get("provisioningState", "Succeeded"),
        system_data=b.get("systemData", {}),
    )


def _save(store: Store, img: GalleryImage) -> GalleryImage:
    store.meta.put(
        Document(
            id=img.id,
            type=IMAGE_TYPE,
            location=img.location,
            body={
                "name": img.name,
                "location": img.location,
                "osType": img.os_type,
                "osState": img.os_state,
                "hyperVGeneration": img.hyper_v_generation,
                "architecture": img.architecture,
                "publisher": img.publisher,
                "offer": img.offer,
                "sku": img.sku,
                "endOfLifeDate": img.end_of_life_date,
                "extra": asdict(img.extra),
                "tags": dict(img.tags),
                "provisioningState": img.provisioning_state,
                "systemData": dict(img.system_data),
            },
        )
    )
    return img


def image_id(subscription_id: str, resource_group: str, gallery: str, name: str) -> str:
    return resource_id(
        subscription_id, resource_group, galleries.GALLERY_TYPE, gallery, "images", name
    )


def _gallery(store: Store, subscription_id: str, resource_group: str, gallery: str) -> Document:
    rid = galleries.gallery_id(subscription_id, resource_group, gallery)
    return galleries.require_parent(store, rid, galleries.GALLERY_TYPE, gallery)


def get(
    store: Store, *, subscription_id: str, resource_group: str, gallery: str, name: str
) -> GalleryImage:
    rid = image_id(subscription_id, resource_group, gallery, name)
    return _from_doc(require_document(store, rid, IMAGE_TYPE))


def get_by_id(store: Store, rid: str) -> GalleryImage:
    return _from_doc(require_document(store, rid, IMAGE_TYPE))


def create_or_update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    gallery: str,
    name: str,
    spec: DefinitionSpec,
    caller: str,
    now: datetime | None = None,
) -> tuple[GalleryImage, bool]:
    """The definition and whether it was created (201) rather than updated (200)."""
    now = now or datetime.now(UTC)
    parent = _gallery(store, subscription_id, resource_group, gallery)
    check_image_name(name)
    region = check_location(store, spec.location, rtype=IMAGE_TYPE)
    clean_tags = check_tags(spec.tags)
    os_type = enum_value(spec.os_type, OS_TYPES, target="properties.osType")
    os_state = enum_value(spec.os_state, OS_STATES, target="properties.osState")
    generation = enum_value(
        spec.hyper_v_generation or "V1",
        HYPER_V_GENERATIONS,
        target="properties.hyperVGeneration",
    )
    architecture = enum_value(
        spec.architecture or "x64", ARCHITECTURES, target="properties.architecture"
    )
    publisher, offer, sku = check_identifier(spec.identifier)
    extra = spec.extra
    check_recommended(extra.recommended)
    rid = image_id(subscription_id, resource_group, gallery, name)
    doc = store.meta.get(rid)
    current = _from_doc(doc) if doc is not None and doc.type == IMAGE_TYPE else None
    if current is not None:
        if current.location != region:
            raise ResourceExistsElsewhere(
                target="location",
                name=f"{gallery}/{current.name}",
                existing=current.location,
                where=f" in resource group '{resource_group}'",
                location=region,
            )
        for prop, old, new in (
            ("osType", current.os_type, os_type),
            ("osState", current.os_state, os_state),
            ("hyperVGeneration", current.hyper_v_generation, generation),
            ("architecture", current.architecture, architecture),
            ("identifier.publisher", current.publisher, publisher),
            ("identifier.offer", current.offer, offer),
            ("identifier.sku", current.sku, sku),
        ):
            if old != new:
                raise PropertyChange(
                    target=f"properties.{prop}", prop=f"galleryImage.properties.{prop}"
                )
        allow_update = (
            extra.allow_update_image
            if extra.allow_update_image is not None
            else current.extra.allow_update_image
        )
        if extra.features != current.extra.features and not allow_update:
            raise FeaturesChangeNotAllowed(target="properties.features")
    else:
        for other in store.meta.list(type=IMAGE_TYPE, parent=parent.id):
            b = other.body
            if (b["publisher"].lower(), b["offer"].lower(), b["sku"].lower()) == (
                publisher.lower(),
                offer.lower(),
                sku.lower(),
            ):
                raise DuplicateImageIdentifier(
                    target="properties.identifier",
                    name=b["name"],
                    publisher=publisher,
                    offer=offer,
                    sku=sku,
                )
    eol = spec.end_of_life_date
    if current is not None and eol == current.end_of_life_date:
        end_of_life = current.end_of_life_date  # unchanged: not re-checked against "now"
    else:
        end_of_life = check_end_of_life(eol, now=now)
    image = GalleryImage(
        id=current.id if current else rid,
        name=current.name if current else name,
        location=region,
        os_type=os_type,
        os_state=os_state,
        hyper_v_generation=generation,
        architecture=architecture,
        publisher=publisher,
        offer=offer,
        sku=sku,
        end_of_life_date=end_of_life,
        extra=extra,
        tags=clean_tags,
        system_data=system_data(caller, current.system_data.get("createdAt") if current else None),
    )
    return _save(store, image), current is None


def update(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    gallery: str,
    name: str,
    patch: DefinitionPatch,
    caller: str,
) -> GalleryImage:
    """PATCH: each property given replaces the definition's; the others stay."""
    current = get(
        store, subscription_id=subscription_id, resource_group=resource_group, gallery=gallery,
        name=name,
    )  # fmt: skip
    given = patch.extra
    extra = Extra(
        **{
            f.name: getattr(given, f.name)
            if getattr(given, f.name) is not None
            else getattr(current.extra, f.name)
            for f in fields(Extra)
        }
    )
    spec = DefinitionSpec(
        location=current.location,
        os_type=patch.os_type or current.os_type,
        os_state=patch.os_state or current.os_state,
        hyper_v_generation=patch.hyper_v_generation or current.hyper_v_generation,
        architecture=patch.architecture or current.architecture,
        identifier=patch.identifier
        or Identifier(publisher=current.publisher, offer=current.offer, sku=current.sku),
        end_of_life_date=patch.end_of_life_date or current.end_of_life_date,
        extra=extra,
        tags=patch.tags if patch.tags is not None else current.tags,
    )
    image, _ = create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gallery=gallery,
        name=current.name,
        spec=spec,
        caller=caller,
    )
    return image


def list_by_gallery(
    store: Store, *, subscription_id: str, resource_group: str, gallery: str
) -> list[GalleryImage]:
    parent = _gallery(store, subscription_id, resource_group, gallery)
    return [_from_doc(d) for d in store.meta.list(type=IMAGE_TYPE, parent=parent.id)]


def delete(
    store: Store, *, subscription_id: str, resource_group: str, gallery: str, name: str
) -> None:
    """Idempotent; refused while versions exist (Azure's delete order)."""
    _gallery(store, subscription_id, resource_group, gallery)
    rid = image_id(subscription_id, resource_group, gallery, name)
    doc = store.meta.get(rid)
    if doc is None or doc.type != IMAGE_TYPE:
        return
    galleries.check_no_children(store, rid)
    store.meta.delete(rid)
