"""ARM plumbing through the real SDK and raw HTTPS: sign-in, tokens, errors, routing, groups."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

from tests.api.conftest import PlatformServer


def test_resource_group_lifecycle_through_the_sdk(resources: Any) -> None:
    name = f"rg-{uuid.uuid4().hex[:8]}"
    created = resources.resource_groups.create_or_update(
        name, {"location": "East US", "tags": {"team": "img"}}
    )
    assert created.name == name
    assert created.location == "eastus"
    assert created.properties.provisioning_state == "Succeeded"
    assert resources.resource_groups.check_existence(name) is True
    fetched = resources.resource_groups.get(name.upper())  # names are case-insensitive
    assert fetched.name == name and fetched.tags == {"team": "img"}
    assert name in [g.name for g in resources.resource_groups.list()]
    resources.resource_groups.begin_delete(name).result()
    assert resources.resource_groups.check_existence(name) is False
    with pytest.raises(ResourceNotFoundError) as err:
        resources.resource_groups.get(name)
    assert err.value.error.code == "ResourceGroupNotFound"


def test_existing_group_in_another_location_is_refused(resources: Any, resource_group: str) -> None:
    from azure.core.exceptions import ResourceExistsError

    with pytest.raises(ResourceExistsError) as err:
        resources.resource_groups.create_or_update(resource_group, {"location": "westus"})
    assert err.value.error.code == "InvalidResourceGroupLocation"


def test_unknown_location_is_refused(resources: Any) -> None:
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as err:
        resources.resource_groups.create_or_update("rg-nowhere", {"location": "marsnorth"})
    assert err.value.error.code == "LocationNotAvailableForResourceType"


def test_token_endpoint_and_openid_discovery(platform_server: PlatformServer) -> None:
    tenant = platform_server.info["AZURE_TENANT_ID"]
    conf = requests.get(
        f"{platform_server.base_url}/{tenant}/v2.0/.well-known/openid-configuration",
        verify=platform_server.ca_bundle,
        timeout=10,
    ).json()
    assert conf["token_endpoint"] == f"{platform_server.base_url}/{tenant}/oauth2/v2.0/token"
    bad = requests.post(
        conf["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "client_id": platform_server.info["AZURE_CLIENT_ID"],
            "client_secret": "wrong",
            "scope": "https://management.core.windows.net//.default",
        },
        verify=platform_server.ca_bundle,
        timeout=10,
    )
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"
    assert bad.json()["error_codes"] == [7000215]


def test_wrong_secret_fails_sign_in_through_azure_identity(platform_server: PlatformServer) -> None:
    from azure.identity import ClientSecretCredential

    cred = ClientSecretCredential(
        platform_server.info["AZURE_TENANT_ID"],
        platform_server.info["AZURE_CLIENT_ID"],
        "not-the-secret",
        authority=platform_server.base_url,
        disable_instance_discovery=True,
    )
    with pytest.raises(ClientAuthenticationError):
        platform_server.resource_client(cred).resource_groups.list().next()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-jwt", "Basic dXNlcjpwYXNz"],
    ids=["missing", "garbage", "wrong-scheme"],
)
def test_requests_without_a_valid_token_get_401(
    platform_server: PlatformServer, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    r = requests.get(
        f"{platform_server.base_url}/subscriptions/{platform_server.subscription_id}"
        "/resourcegroups?api-version=2024-11-01",
        headers=headers,
        verify=platform_server.ca_bundle,
        timeout=10,
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "Bearer" in r.headers["WWW-Authenticate"]


def test_token_signed_by_someone_else_gets_401(platform_server: PlatformServer) -> None:
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    forged = jwt.encode(
        {
            "aud": "https://management.core.windows.net/",
            "iss": f"{platform_server.base_url}/{platform_server.info['AZURE_TENANT_ID']}/v2.0",
            "tid": platform_server.info["AZURE_TENANT_ID"],
            "oid": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 600,
        },
        key,
        algorithm="RS256",
    )
    r = requests.get(
        f"{platform_server.base_url}/subscriptions",
        params={"api-version": "2022-12-01"},
        headers={"Authorization": f"Bearer {forged}"},
        verify=platform_server.ca_bundle,
        timeout=10,
    )
    assert r.status_code == 401


def test_missing_api_version_is_400(platform_server: PlatformServer) -> None:
    r = platform_server.arm(
        "GET", f"/subscriptions/{platform_server.subscription_id}/resourcegroups"
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "MissingApiVersionParameter"


def test_malformed_api_version_is_400(platform_server: PlatformServer) -> None:
    r = platform_server.arm(
        "GET",
        f"/subscriptions/{platform_server.subscription_id}/resourcegroups?api-version=latest",
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "InvalidApiVersionParameter"


def test_routing_is_case_insensitive(platform_server: PlatformServer, resource_group: str) -> None:
    sub = platform_server.subscription_id
    r = platform_server.arm(
        "GET",
        f"/SUBSCRIPTIONS/{sub}/ResourceGroups/{resource_group.upper()}?api-version=2024-11-01",
    )
    assert r.status_code == 200
    assert r.json()["name"] == resource_group  # the casing used at creation


def test_unknown_route_is_404_in_the_arm_shape(platform_server: PlatformServer) -> None:
    r = platform_server.arm(
        "GET",
        f"/subscriptions/{platform_server.subscription_id}/nothing/here?api-version=2024-11-01",
    )
    assert r.status_code == 404
    assert set(r.json()["error"]) >= {"code", "message"}


def test_unknown_subscription_is_404(platform_server: PlatformServer) -> None:
    r = platform_server.arm(
        "GET", f"/subscriptions/{uuid.uuid4()}/resourcegroups?api-version=2024-11-01"
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "SubscriptionNotFound"


def test_body_that_is_not_json_is_400(platform_server: PlatformServer) -> None:
    r = platform_server.arm(
        "PUT",
        f"/subscriptions/{platform_server.subscription_id}/resourcegroups/x?api-version=2024-11-01",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "InvalidRequestContent"


def test_subscriptions_tenants_locations_and_providers(platform_server: PlatformServer) -> None:
    sub = platform_server.subscription_id
    subs = platform_server.arm("GET", "/subscriptions?api-version=2022-12-01").json()["value"]
    assert [s["subscriptionId"] for s in subs] == [sub]
    tenants = platform_server.arm("GET", "/tenants?api-version=2022-12-01").json()["value"]
    assert tenants[0]["tenantId"] == platform_server.info["AZURE_TENANT_ID"]
    locs = platform_server.arm("GET", f"/subscriptions/{sub}/locations?api-version=2022-12-01")
    assert [x["name"] for x in locs.json()["value"]] == ["eastus", "westus", "westeurope"]
    prov = platform_server.arm(
        "GET", f"/subscriptions/{sub}/providers/Microsoft.Compute?api-version=2025-04-01"
    ).json()
    assert prov["registrationState"] == "Registered"
    assert "disks" in [t["resourceType"] for t in prov["resourceTypes"]]


def test_cloud_metadata_endpoint(platform_server: PlatformServer) -> None:
    r = requests.get(
        f"{platform_server.base_url}/metadata/endpoints?api-version=2022-09-01",
        verify=platform_server.ca_bundle,
        timeout=10,
    )
    doc = r.json()
    assert doc["resourceManager"] == platform_server.base_url + "/"
    assert doc["authentication"]["audiences"][0] == "https://management.core.windows.net/"


def test_deleting_a_group_deletes_its_resources_and_bytes(make_server: Any) -> None:
    """On a private server, so no other test's background job touches the blob directory."""
    platform_server: PlatformServer = make_server()
    resources = platform_server.resource_client()
    compute = platform_server.compute_client()
    name = f"rg-{uuid.uuid4().hex[:8]}"
    resources.resource_groups.create_or_update(name, {"location": "westus"})
    body = {
        "location": "westus",
        "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
    }
    disk = compute.disks.begin_create_or_update(name, "d1", body).result()
    compute.snapshots.begin_create_or_update(
        name,
        "s1",
        {
            "location": "westus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk.id}},
        },
    ).result()
    listed = {r.name for r in resources.resources.list_by_resource_group(name)}
    assert listed == {"d1", "s1"}
    assert {"d1", "s1"} <= {r.name for r in resources.resources.list()}
    blob_dir = platform_server.data_dir / "blobs" / "westus"
    before = {p.name for p in blob_dir.iterdir()}
    assert len(before) == 4  # two VHDs and their page-range records
    resources.resource_groups.begin_delete(name).result()
    assert resources.resource_groups.check_existence(name) is False
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(name, "d1")
    assert list(blob_dir.iterdir()) == []


def test_disk_location_cannot_change(compute: Any, resource_group: str) -> None:
    from azure.core.exceptions import HttpResponseError

    body = {
        "location": "eastus",
        "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
    }
    compute.disks.begin_create_or_update(resource_group, "stay", body).result()
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            resource_group, "stay", {**body, "location": "westus"}
        ).result()
    assert err.value.error.code == "PropertyChangeNotAllowed"
    assert err.value.error.target == "location"


def _azimg(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "azimg.cli.main", *args]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)


def test_credentials_command_prints_what_serve_printed(platform_server: PlatformServer) -> None:
    where = ["--data-dir", str(platform_server.data_dir), "--port", str(platform_server.port)]
    assert json.loads(_azimg("credentials", *where, "-o", "json").stdout) == platform_server.info
    text = _azimg("credentials", *where).stdout
    assert f"export AZURE_CLIENT_SECRET={platform_server.info['AZURE_CLIENT_SECRET']}" in text
    assert f"export REQUESTS_CA_BUNDLE={platform_server.ca_bundle}" in text


def test_serve_refuses_bad_settings_in_one_line(tmp_path: Path) -> None:
    r = _azimg("serve", "--data-dir", str(tmp_path), "--regions", "east us!,westus", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("azimg: error: invalid region name")
    assert "Traceback" not in r.stderr


def test_lists_page_with_an_absolute_next_link(
    platform_server: PlatformServer, resources: Any
) -> None:
    names = {f"rg-page-{uuid.uuid4().hex[:6]}" for _ in range(3)}
    for name in names:
        resources.resource_groups.create_or_update(name, {"location": "westeurope"})
    try:
        url = (
            f"/subscriptions/{platform_server.subscription_id}/resourcegroups"
            "?api-version=2024-11-01&$top=2"
        )
        seen: list[str] = []
        pages = 0
        while url:
            body = platform_server.arm("GET", url).json()
            pages += 1
            assert len(body["value"]) <= 2
            seen += [g["name"] for g in body["value"]]
            link = body.get("nextLink")
            if link:
                assert link.startswith(platform_server.base_url)
                assert "api-version=2024-11-01" in link
            url = link[len(platform_server.base_url) :] if link else ""
        assert names <= set(seen) and pages >= 2
        assert len(seen) == len(set(seen))
    finally:
        for name in names:
            resources.resource_groups.begin_delete(name).result()


def test_disk_patch_updates_tags_and_sku(compute: Any, resource_group: str) -> None:
    body = {
        "location": "eastus",
        "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
    }
    compute.disks.begin_create_or_update(resource_group, "patched", body).result()
    disk = compute.disks.begin_update(
        resource_group, "patched", {"tags": {"stage": "test"}, "sku": {"name": "Premium_LRS"}}
    ).result()
    assert disk.tags == {"stage": "test"}
    assert disk.sku.name == "Premium_LRS" and disk.sku.tier == "Premium"
    assert compute.disks.get(resource_group, "patched").tags == {"stage": "test"}


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": -60}, "ExpiredAuthenticationToken"),
        ({"aud": "https://vault.azure.net"}, "InvalidAuthenticationToken"),
        ({"iss": "https://login.example/other/v2.0"}, "InvalidAuthenticationToken"),
    ],
    ids=["expired", "wrong-audience", "wrong-issuer"],
)
def test_tokens_signed_by_us_but_wrong_get_401(
    platform_server: PlatformServer, claims: dict[str, Any], code: str
) -> None:
    """Signed with the platform's own key (read from its data directory), so only the named
    claim makes the token unacceptable."""
    import time

    import jwt

    key = (platform_server.data_dir / "identity" / "token-signing.pem").read_bytes()
    tenant = platform_server.info["AZURE_TENANT_ID"]
    now = int(time.time())
    body = {
        "aud": "https://management.core.windows.net/",
        "iss": f"{platform_server.base_url}/{tenant}/v2.0",
        "tid": tenant,
        "oid": str(uuid.uuid4()),
        "iat": now - 120,
        "nbf": now - 120,
        "exp": now + 600,
    }
    body.update({k: (now + v if k == "exp" else v) for k, v in claims.items()})
    token = jwt.encode(body, key, algorithm="RS256")
    r = requests.get(
        f"{platform_server.base_url}/subscriptions",
        params={"api-version": "2022-12-01"},
        headers={"Authorization": f"Bearer {token}"},
        verify=platform_server.ca_bundle,
        timeout=10,
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == code


def _follow(platform_server: PlatformServer, url: str) -> requests.Response:
    """Poll a Location URL the way az's AAZ poller does: 202 means wait (Retry-After)."""
    import time

    deadline = time.monotonic() + 60
    while True:
        r = platform_server.arm("GET", url[len(platform_server.base_url) :])
        if r.status_code != 202 or time.monotonic() > deadline:
            return r
        assert r.headers["Retry-After"] == "1"
        time.sleep(0.1)


def test_location_urls_answer_with_the_final_result(
    platform_server: PlatformServer, compute: Any, resource_group: str
) -> None:
    """az reads the result from Location even for PUT (final-state-via location, §3.3)."""
    base = (
        f"/subscriptions/{platform_server.subscription_id}/resourceGroups/{resource_group}"
        "/providers/Microsoft.Compute/disks"
    )
    src = compute.disks.begin_create_or_update(
        resource_group,
        "loc-src",
        {
            "location": "eastus",
            "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
        },
    ).result()
    put = platform_server.arm(
        "PUT",
        f"{base}/loc-copy?api-version=2025-01-02",
        json={
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": src.id}},
        },
    )
    assert put.status_code == 202
    assert put.headers["Retry-After"] == "1"
    assert put.headers["Location"].endswith("&monitor=true")
    status = platform_server.arm(
        "GET", put.headers["Azure-AsyncOperation"][len(platform_server.base_url) :]
    ).json()
    assert status["status"] in ("InProgress", "Succeeded")
    final = _follow(platform_server, put.headers["Location"])
    assert final.status_code == 200
    assert final.json()["name"] == "loc-copy"
    assert final.json()["properties"]["provisioningState"] == "Succeeded"

    grant = platform_server.arm(
        "POST",
        f"{base}/loc-copy/beginGetAccess?api-version=2025-01-02",
        json={"access": "Read", "durationInSeconds": 60},
    )
    assert grant.status_code == 202
    assert (
        _follow(platform_server, grant.headers["Location"])
        .json()["accessSAS"]
        .startswith(platform_server.base_url + "/blob/")
    )
    revoke = platform_server.arm("POST", f"{base}/loc-copy/endGetAccess?api-version=2023-04-02")
    assert _follow(platform_server, revoke.headers["Location"]).status_code == 200
