"""Identity boundaries: a token's tenant must own the subscription, tokens only for the
audiences the platform serves, and wrong secrets throttled per client."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import requests

from tests.api.conftest import PlatformServer


def _token_for_tenant(server: PlatformServer, tenant: str) -> str:
    """Validly signed with the platform's own key (read from its data directory), issued for
    ``tenant``: only the tenant differs from a token the platform would issue itself (the
    principal is the default one, Owner of the subscription, so RBAC lets it through)."""
    key = (server.data_dir / "identity" / "token-signing.pem").read_bytes()
    own = jwt.decode(server.token(), options={"verify_signature": False})
    now = int(time.time())
    claims = {
        "aud": "https://management.core.windows.net/",
        "iss": f"{server.base_url}/{tenant}/v2.0",
        "tid": tenant,
        "oid": own["oid"],
        "appid": str(uuid.uuid4()),
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 600,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "azimg-1"})


def _token_request(server: PlatformServer, **form: str) -> requests.Response:
    tenant = server.info["AZURE_TENANT_ID"]
    data = {
        "grant_type": "client_credentials",
        "client_id": server.info["AZURE_CLIENT_ID"],
        "client_secret": server.info["AZURE_CLIENT_SECRET"],
        "scope": "https://management.core.windows.net//.default",
        **form,
    }
    return requests.post(
        f"{server.base_url}/{tenant}/oauth2/v2.0/token",
        data=data,
        verify=server.ca_bundle,
        timeout=30,
    )


def test_token_of_another_tenant_cannot_use_this_subscription(
    platform_server: PlatformServer,
) -> None:
    """Was: read this tenant's subscription (the subscription was not bound to its tenant)."""
    other = _token_for_tenant(platform_server, str(uuid.uuid4()))
    own = _token_for_tenant(platform_server, platform_server.info["AZURE_TENANT_ID"])
    path = f"/subscriptions/{platform_server.subscription_id}/resourcegroups"
    url = f"{platform_server.base_url}{path}?api-version=2024-11-01"
    r = requests.get(
        url, headers={"Authorization": f"Bearer {other}"}, verify=platform_server.ca_bundle
    )
    assert r.status_code == 401
    error = r.json()["error"]
    assert error["code"] == "InvalidAuthenticationTokenTenant"
    assert platform_server.info["AZURE_TENANT_ID"] in error["message"]
    r = requests.get(
        url, headers={"Authorization": f"Bearer {own}"}, verify=platform_server.ca_bundle
    )
    assert r.status_code == 200


def test_tokens_only_for_the_resources_the_platform_serves(
    platform_server: PlatformServer,
) -> None:
    """Was: a token for any audience."""
    r = _token_request(platform_server, scope="https://graph.microsoft.com/.default")
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_resource"
    assert body["error_description"].startswith("AADSTS500011")
    assert body["error_codes"] == [500011]
    for scope in (
        "https://management.core.windows.net//.default",
        "https://management.azure.com/.default",
        f"{platform_server.base_url}/.default",
    ):
        r = _token_request(platform_server, scope=scope)
        assert r.status_code == 200, (scope, r.text)


def test_wrong_secrets_are_throttled_per_client_and_the_right_one_works_after(
    make_server: Any,
) -> None:
    """Was: 1,600 wrong secrets at ~370/s, no slowdown. Now 10 wrong secrets in the window
    (AZIMG_AUTH_THROTTLE_WINDOW, default 60 s) → 429 + Retry-After for that client, even
    with the right secret, until the window has passed."""
    # 20 s: ten requests fit in it even on a loaded CI machine.
    server = make_server(env={"AZIMG_AUTH_THROTTLE_WINDOW": "20"})
    for _ in range(10):
        r = _token_request(server, client_secret="wrong")
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"
    r = _token_request(server, client_secret="wrong")
    assert r.status_code == 429
    assert r.json()["error_description"].startswith("AADSTS50196")
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= 20
    assert _token_request(server).status_code == 429  # the right secret waits too
    other = _token_request(server, client_id=str(uuid.uuid4()), client_secret="x")
    assert other.status_code == 401  # another client is not affected
    time.sleep(int(_token_request(server).headers["Retry-After"]))
    r = _token_request(server)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"
