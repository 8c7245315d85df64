"""Provider metadata, api-version checks and the generic resources API, driven by the
registry, through the real SDK (``ResourceManagementClient``) and raw HTTPS."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.api.conftest import PlatformServer

COMPUTE_TYPES = {
    "disks",
    "snapshots",
    "images",
    "galleries",
    "galleries/images",
    "galleries/images/versions",
    "virtualMachines",
}


def test_compute_provider_lists_every_type_with_api_versions(resources: Any) -> None:
    provider = resources.providers.get("Microsoft.Compute")
    assert provider.namespace == "Microsoft.Compute"
    assert provider.registration_state == "Registered"
    by_type = {t.resource_type: t for t in provider.resource_types}
    assert set(by_type) >= COMPUTE_TYPES
    assert "2026-03-02" in by_type["disks"].api_versions  # what azure-mgmt-compute 39 sends
    assert "2025-01-02" in by_type["disks"].api_versions  # what az 2.91 sends
    assert "2024-03-03" in by_type["galleries/images/versions"].api_versions
    assert "2026-04-01" in by_type["virtualMachines"].api_versions
    assert "East US" in by_type["disks"].locations
    listed = {p.namespace for p in resources.providers.list()}
    assert {"Microsoft.Compute", "Microsoft.Resources"} <= listed


def test_tenant_level_provider_and_unknown_namespace(platform_server: PlatformServer) -> None:
    r = platform_server.arm("GET", "/providers/Microsoft.Compute?api-version=2025-04-01")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "/providers/Microsoft.Compute"
    assert "registrationState" not in r.json()
    sub = platform_server.subscription_id
    r = platform_server.arm("GET", f"/subscriptions/{sub}/providers/Foo.Bar?api-version=2025-04-01")
    assert r.status_code == 404 and r.json()["error"]["code"] == "InvalidResourceNamespace"


@pytest.mark.parametrize("version", ["1999-01-01", "2099-01-01", "2026-03-03"])
def test_unknown_api_version_is_refused_naming_the_supported_ones(
    platform_server: PlatformServer, resource_group: str, version: str
) -> None:
    sub = platform_server.subscription_id
    r = platform_server.arm(
        "GET",
        f"/subscriptions/{sub}/resourceGroups/{resource_group}/providers/Microsoft.Compute"
        f"/disks/any?api-version={version}",
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "InvalidApiVersionParameter"
    assert error["message"].startswith(f"The api-version '{version}' is invalid.")
    assert "2026-03-02" in error["message"] and "2025-01-02" in error["message"]


def test_unknown_api_version_through_the_sdk(platform_server: PlatformServer) -> None:
    from azure.mgmt.resource.resources import ResourceManagementClient

    from tests.api.conftest import ARM_SCOPE

    old = ResourceManagementClient(
        platform_server.credential(),
        platform_server.subscription_id,
        base_url=platform_server.base_url,
        credential_scopes=[ARM_SCOPE],
        api_version="2013-01-01",
    )
    with pytest.raises(HttpResponseError) as err:
        old.resource_groups.get("anything")
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidApiVersionParameter"


def _disk(compute: Any, rg: str, name: str, tags: dict[str, str]) -> Any:
    body = {
        "location": "eastus",
        "tags": tags,
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
    }
    return compute.disks.begin_create_or_update(rg, name, body).result()


def test_generic_resources_list_filter_and_get_by_id(
    resources: Any, compute: Any, resource_group: str
) -> None:
    d1 = _disk(compute, resource_group, "gen-a", {"team": "img"})
    _disk(compute, resource_group, "gen-b", {"team": "other"})
    snap = compute.snapshots.begin_create_or_update(
        resource_group,
        "gen-s",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": d1.id}},
        },
    ).result()

    listed = list(resources.resources.list_by_resource_group(resource_group))
    assert {(r.name, r.type) for r in listed} == {
        ("gen-a", "Microsoft.Compute/disks"),
        ("gen-b", "Microsoft.Compute/disks"),
        ("gen-s", "Microsoft.Compute/snapshots"),
    }
    only_snaps = resources.resources.list_by_resource_group(
        resource_group, filter="resourceType eq 'Microsoft.Compute/snapshots'"
    )
    assert [r.id for r in only_snaps] == [snap.id]
    tagged = resources.resources.list(filter="tagName eq 'team' and tagValue eq 'img'")
    assert [r.name for r in tagged if r.id.startswith(d1.id.rsplit("/", 4)[0])] == ["gen-a"]
    expanded = list(
        resources.resources.list_by_resource_group(
            resource_group,
            filter="substringof('gen-b', name)",
            expand="createdTime,changedTime,provisioningState",
        )
    )
    assert [r.name for r in expanded] == ["gen-b"]
    assert expanded[0].provisioning_state == "Succeeded" and expanded[0].created_time

    # by id, with the api-version az would pick from the provider metadata
    provider = resources.providers.get("Microsoft.Compute")
    version = next(t for t in provider.resource_types if t.resource_type == "disks").api_versions[0]
    got = resources.resources.get_by_id(d1.id, api_version=version)
    assert got.id == d1.id and got.tags == {"team": "img"}
    patched = resources.resources.begin_update_by_id(
        d1.id, {"tags": {"team": "img", "k": "v"}}, api_version=version
    ).result()
    assert patched.tags == {"team": "img", "k": "v"}
    resources.resources.begin_delete_by_id(snap.id, api_version=version).result()
    assert resources.resources.check_existence_by_id(snap.id, api_version=version) is False


def test_bad_filter_is_a_400(platform_server: PlatformServer) -> None:
    sub = platform_server.subscription_id
    r = platform_server.arm(
        "GET", f"/subscriptions/{sub}/resources?api-version=2025-04-01&$filter=foo gt 3"
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidFilterInQueryString"


def test_unregistered_provider_refuses_writes_until_registered(
    resources: Any, compute: Any, resource_group: str
) -> None:
    """409 MissingSubscriptionRegistration naming the namespace as the last quoted token
    (what the SDK's auto-registration policy parses); reads still work; register again and
    the same create goes through."""
    import re

    resources.providers.unregister("Microsoft.Compute")
    try:
        assert resources.providers.get("Microsoft.Compute").registration_state == "NotRegistered"
        with pytest.raises(HttpResponseError) as err:
            _disk(compute, resource_group, "reg-a", {})
        assert err.value.status_code == 409
        assert err.value.error.code == "MissingSubscriptionRegistration"
        match = re.match(r".*'(.*)'", err.value.error.message)
        assert match is not None and match.group(1) == "Microsoft.Compute"
        assert list(compute.disks.list_by_resource_group(resource_group)) == []
        registered = resources.providers.register("Microsoft.Compute")
        assert registered.registration_state == "Registered"
        assert _disk(compute, resource_group, "reg-a", {}).provisioning_state == "Succeeded"
    finally:
        resources.providers.register("Microsoft.Compute")


def test_actions_are_checked_with_their_resource_type_versions(
    platform_server: PlatformServer, resource_group: str
) -> None:
    sub = platform_server.subscription_id
    r = platform_server.arm(
        "POST",
        f"/subscriptions/{sub}/resourceGroups/{resource_group}/providers/Microsoft.Compute"
        "/disks/none/beginGetAccess?api-version=2026-03-03",
        json={"access": "Read", "durationInSeconds": 60},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidApiVersionParameter"
