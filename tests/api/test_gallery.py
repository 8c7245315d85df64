"""Galleries and image definitions through the real azure-mgmt-compute 39 client."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.api.conftest import PlatformServer


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def _definition(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "osType": "Linux",
        "osState": "Generalized",
        "hyperVGeneration": "V2",
        "identifier": {"publisher": "azimg", "offer": "debian", "sku": _name("sku")},
    }
    props.update(overrides)
    return {"location": "eastus", "properties": props}


def _error(info: pytest.ExceptionInfo[HttpResponseError]) -> tuple[int, str]:
    err = info.value
    assert err.response is not None and err.error is not None
    return err.response.status_code, err.error.code


def test_gallery_lifecycle(
    compute: Any, resource_group: str, platform_server: PlatformServer
) -> None:
    name = _name("gal")
    created = compute.galleries.begin_create_or_update(
        resource_group, name, {"location": "East US", "properties": {"description": "first"}}
    ).result()
    assert created.name == name
    assert created.location == "eastus"
    assert created.provisioning_state == "Succeeded"
    assert created.identifier.unique_name == f"{platform_server.subscription_id}-{name.upper()}"
    assert created.sharing_profile.permissions == "Private"

    updated = compute.galleries.begin_update(
        resource_group, name, {"properties": {"description": "second"}, "tags": {"k": "v"}}
    ).result()
    assert (updated.description, updated.tags) == ("second", {"k": "v"})
    got = compute.galleries.get(resource_group, name.upper())  # names are case-insensitive
    assert got.name == name and got.description == "second"
    assert name in [g.name for g in compute.galleries.list_by_resource_group(resource_group)]
    assert name in [g.name for g in compute.galleries.list()]

    compute.galleries.begin_delete(resource_group, name).result()
    with pytest.raises(ResourceNotFoundError):
        compute.galleries.get(resource_group, name)
    compute.galleries.begin_delete(resource_group, name).result()  # idempotent


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("has-hyphen", 400, "InvalidParameter"),
        ("_leading", 400, "InvalidParameter"),
        ("trailing.", 400, "InvalidResourceName"),
        ("a" * 81, 400, "InvalidParameter"),
    ],
)
def test_gallery_name_rules(
    compute: Any, resource_group: str, name: str, status: int, code: str
) -> None:
    with pytest.raises(HttpResponseError) as info:
        compute.galleries.begin_create_or_update(resource_group, name, {"location": "eastus"})
    assert _error(info) == (status, code)


def test_gallery_name_is_unique_per_subscription(compute: Any, resources: Any) -> None:
    name = _name("dup")
    rgs = [_name("rg-") for _ in range(2)]
    for rg in rgs:
        resources.resource_groups.create_or_update(rg, {"location": "eastus"})
    try:
        compute.galleries.begin_create_or_update(rgs[0], name, {"location": "eastus"}).result()
        with pytest.raises(ResourceExistsError) as info:
            compute.galleries.begin_create_or_update(rgs[1], name, {"location": "eastus"})
        assert "is not unique within the subscription" in str(info.value)
    finally:
        for rg in rgs:
            resources.resource_groups.begin_delete(rg).result()


def test_gallery_location_is_validated_and_immutable(compute: Any, resource_group: str) -> None:
    with pytest.raises(HttpResponseError) as info:
        compute.galleries.begin_create_or_update(resource_group, _name("g"), {"location": "mars"})
    assert _error(info) == (400, "LocationNotAvailableForResourceType")
    name = _name("g")
    compute.galleries.begin_create_or_update(resource_group, name, {"location": "eastus"}).result()
    with pytest.raises(ResourceExistsError):
        compute.galleries.begin_create_or_update(resource_group, name, {"location": "westus"})


def test_gallery_sharing_is_refused_by_name_until_built(compute: Any, resource_group: str) -> None:
    body = {"location": "eastus", "properties": {"sharingProfile": {"permissions": "Groups"}}}
    with pytest.raises(HttpResponseError) as info:
        compute.galleries.begin_create_or_update(resource_group, _name("g"), body)
    assert _error(info) == (501, "NotImplemented")


def test_unknown_gallery_property_is_refused(
    platform_server: PlatformServer, resource_group: str
) -> None:
    path = (
        f"/subscriptions/{platform_server.subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Compute/galleries/{_name('g')}?api-version=2026-03-03"
    )
    resp = platform_server.arm(
        "PUT", path, json={"location": "eastus", "properties": {"frobnicate": True}}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["target"] == "properties.frobnicate"
    resp = platform_server.arm(
        "PUT", path, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, "InvalidRequestContent")


@pytest.fixture
def gallery(compute: Any, resource_group: str) -> str:
    name = _name("gal")
    compute.galleries.begin_create_or_update(resource_group, name, {"location": "eastus"}).result()
    return name


def test_definition_lifecycle(compute: Any, resource_group: str, gallery: str) -> None:
    eol = (datetime.now(UTC) + timedelta(days=365)).replace(microsecond=0)
    body = _definition(
        endOfLifeDate=eol.isoformat(),
        description="Debian 12",
        recommended={"vCPUs": {"min": 1, "max": 8}},
        features=[{"name": "SecurityType", "value": "TrustedLaunchSupported"}],
    )
    created = compute.gallery_images.begin_create_or_update(
        resource_group, gallery, "debian-12", body
    ).result()
    assert (created.os_type, created.os_state, created.hyper_v_generation) == (
        "Linux",
        "Generalized",
        "V2",
    )
    assert created.architecture == "x64"
    assert created.end_of_life_date == eol
    assert created.features[0].value == "TrustedLaunchSupported"
    assert created.recommended.v_cp_us.max == 8

    patched = compute.gallery_images.begin_update(
        resource_group,
        gallery,
        "debian-12",
        {"properties": {"description": "Debian 12 (bookworm)"}},
    ).result()
    assert patched.description == "Debian 12 (bookworm)"
    assert patched.identifier.sku == body["properties"]["identifier"]["sku"]
    listed = list(compute.gallery_images.list_by_gallery(resource_group, gallery))
    assert [i.name for i in listed] == ["debian-12"]

    with pytest.raises(ResourceExistsError) as info:
        compute.galleries.begin_delete(resource_group, gallery)
    assert info.value.error.code == "CannotDeleteResource"
    compute.gallery_images.begin_delete(resource_group, gallery, "debian-12").result()
    compute.galleries.begin_delete(resource_group, gallery).result()


@pytest.mark.parametrize(
    ("name", "overrides", "status", "code", "text"),
    [
        ("bad-", {}, 400, "InvalidResourceName", "invalid according to its validation rule"),
        ("ok", {"osType": None}, 400, "InvalidParameter", "osType"),
        ("ok", {"osState": "Frozen"}, 400, "InvalidParameter", "osState"),
        ("ok", {"hyperVGeneration": "V3"}, 400, "InvalidParameter", "hyperVGeneration"),
        (
            "ok",
            {"identifier": {"publisher": "p", "offer": "o", "sku": "ends."}},
            400,
            "InvalidParameter",
            "identifier.sku is not valid",
        ),
        (
            "ok",
            {"identifier": {"publisher": "p" * 129, "offer": "o", "sku": "s"}},
            400,
            "InvalidParameter",
            "cannot exceed 128",
        ),
        (
            "ok",
            {"endOfLifeDate": "2001-01-01T00:00:00Z"},
            400,
            "InvalidParameter",
            "EndOfLifeDate must be set to a future date",
        ),
        (
            "ok",
            {"recommended": {"memory": {"min": 16, "max": 8}}},
            400,
            "InvalidParameter",
            "must not be greater than the maximum",
        ),
    ],
)
def test_definition_rules(
    compute: Any,
    resource_group: str,
    gallery: str,
    name: str,
    overrides: dict[str, Any],
    status: int,
    code: str,
    text: str,
) -> None:
    body = _definition(**overrides)
    body["properties"] = {k: v for k, v in body["properties"].items() if v is not None}
    with pytest.raises(HttpResponseError) as info:
        compute.gallery_images.begin_create_or_update(resource_group, gallery, name, body)
    assert _error(info) == (status, code)
    assert text in str(info.value)


def test_definition_identity_is_unique_and_immutable(
    compute: Any, resource_group: str, gallery: str
) -> None:
    body = _definition()
    compute.gallery_images.begin_create_or_update(resource_group, gallery, "one", body).result()
    with pytest.raises(ResourceExistsError) as info:
        compute.gallery_images.begin_create_or_update(resource_group, gallery, "two", body)
    assert "already exists. Choose a different publisher, offer, sku combination" in str(info.value)
    for prop, value in (("osState", "Specialized"), ("hyperVGeneration", "V1")):
        changed = _definition(**{prop: value})
        changed["properties"]["identifier"] = body["properties"]["identifier"]
        with pytest.raises(HttpResponseError) as err:
            compute.gallery_images.begin_create_or_update(resource_group, gallery, "one", changed)
        assert _error(err) == (400, "PropertyChangeNotAllowed")
        assert f"Changing property 'galleryImage.properties.{prop}' is not allowed" in str(
            err.value
        )


def test_definition_needs_its_gallery(compute: Any, resource_group: str) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        compute.gallery_images.begin_create_or_update(
            resource_group, "nogallery", "img", _definition()
        )
    assert info.value.error.code == "ParentResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        compute.gallery_image_versions.get(resource_group, "nogallery", "img", "1.0.0")
    assert info.value.error.code == "ParentResourceNotFound"
