"""The sign-in side: OpenID discovery, the client-credentials token endpoint, JWKS, and the
cloud metadata document ``az cloud register`` reads. No bearer token is needed here."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from azimg.platform.identity import ARM_AUDIENCES, Identity

router = APIRouter(tags=["identity"])


def _identity(request: Request) -> Identity:
    return request.app.state.identity


@router.get("/{tenant}/v2.0/.well-known/openid-configuration")
def openid_configuration(tenant: str, request: Request) -> dict[str, Any]:
    return _identity(request).openid_configuration(tenant)


@router.get("/{tenant}/discovery/v2.0/keys")
def keys(tenant: str, request: Request) -> dict[str, Any]:
    _identity(request).openid_configuration(tenant)
    return _identity(request).jwks()


@router.post("/{tenant}/oauth2/v2.0/token")
async def token(tenant: str, request: Request) -> JSONResponse:
    # application/x-www-form-urlencoded, parsed here (no multipart dependency needed)
    raw = (await request.body()).decode("utf-8", "replace")
    fields = dict(parse_qsl(raw, keep_blank_values=True))
    return JSONResponse(_identity(request).issue_token(tenant, fields))


def cloud_metadata(base_url: str) -> dict[str, Any]:
    return {
        "name": "azimg",
        "portal": base_url,
        "resourceManager": base_url + "/",
        "authentication": {
            "loginEndpoint": base_url,
            "audiences": [ARM_AUDIENCES[0], base_url + "/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "graphAudience": base_url + "/graph/",
        "graph": base_url + "/graph/",
        "microsoftGraphResourceId": base_url + "/graph/",
        "gallery": base_url + "/gallery/",
        "batch": base_url + "/batch/",
        "sqlManagement": base_url + "/sql/",
        "activeDirectoryDataLake": base_url + "/datalake/",
        "media": base_url + "/media/",
        "suffixes": {"storage": "blob.azimg.local", "keyVaultDns": "vault.azimg.local"},
    }


@router.get("/metadata/endpoints")
def metadata_endpoints(request: Request) -> JSONResponse:
    """One object for ``api-version=2022-09-01`` (az cloud register), an array otherwise."""
    base = f"{request.url.scheme}://{request.url.netloc}"
    doc = cloud_metadata(base)
    version = request.query_params.get("api-version", "")
    return JSONResponse(doc if version >= "2022-09-01" else [doc])
