"""Where `upload` and `publish` send their requests: the local platform or any ARM endpoint.

Two sources of credentials, chosen so the same command works against azimg and real Azure:

- the standard environment — ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``,
  ``AZURE_SUBSCRIPTION_ID`` plus an ARM endpoint (``AZIMG_ARM_ENDPOINT`` or
  ``AZURE_RESOURCE_MANAGER_ENDPOINT``; ``AZURE_AUTHORITY_HOST`` for the token issuer) — used
  when complete and no ``--data-dir``/``--port`` was given;
- otherwise the local platform, found exactly as ``azimg credentials --data-dir D --port P``
  finds it (same function), its CA exported through ``REQUESTS_CA_BUNDLE`` for MSAL.

The clients are the real azure-mgmt-compute and azure-storage-blob SDKs; nothing here speaks
HTTP by hand except one resource-group GET through the SDK's own pipeline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from azimg.errors import InvalidArgument

DEFAULT_SCOPE = "https://management.core.windows.net//.default"
ENV_KEYS = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_SUBSCRIPTION_ID",
)
ENDPOINT_KEYS = ("AZIMG_ARM_ENDPOINT", "AZURE_RESOURCE_MANAGER_ENDPOINT")
MICROSOFT_AUTHORITIES = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
)


@dataclass(frozen=True)
class Connection:
    tenant_id: str
    client_id: str
    client_secret: str
    subscription_id: str
    arm_endpoint: str
    authority: str
    scope: str
    origin: str  # "local platform at <dir>" or "environment"

    def credential(self) -> Any:
        from azure.identity import ClientSecretCredential

        host = urlparse(self.authority).hostname or ""
        return ClientSecretCredential(
            self.tenant_id,
            self.client_id,
            self.client_secret,
            authority=self.authority,
            disable_instance_discovery=host not in MICROSOFT_AUTHORITIES,
        )

    def compute(self) -> Any:
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(
            self.credential(),
            self.subscription_id,
            base_url=self.arm_endpoint,
            credential_scopes=[self.scope],
        )

    def resource_group_location(
        self, compute: Any, resource_group: str, *, create_in: str | None = None
    ) -> str:
        """The group's location (the default for new resources), via the SDK's pipeline; a
        missing group is created in ``create_in`` when given."""
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        url = (
            f"{self.arm_endpoint.rstrip('/')}/subscriptions/{self.subscription_id}"
            f"/resourcegroups/{resource_group}?api-version=2021-04-01"
        )
        response = compute._client.send_request(HttpRequest("GET", url))
        if response.status_code == 404 and create_in:
            response = compute._client.send_request(
                HttpRequest("PUT", url, json={"location": create_in})
            )
        if response.status_code == 404:
            raise InvalidArgument(
                f"Resource group '{resource_group}' could not be found.",
                hint="create it, or pass --location to have it created",
            )
        try:
            response.raise_for_status()
        except HttpResponseError as err:
            raise InvalidArgument(f"resource group {resource_group}: {err.message}") from None
        return str(response.json()["location"])


def _from_env() -> Connection | None:
    if not all(os.environ.get(k) for k in ENV_KEYS):
        return None
    endpoint = next((os.environ[k] for k in ENDPOINT_KEYS if os.environ.get(k)), None)
    if endpoint is None:
        return None
    return Connection(
        tenant_id=os.environ["AZURE_TENANT_ID"],
        client_id=os.environ["AZURE_CLIENT_ID"],
        client_secret=os.environ["AZURE_CLIENT_SECRET"],
        subscription_id=os.environ["AZURE_SUBSCRIPTION_ID"],
        arm_endpoint=endpoint.rstrip("/"),
        authority=os.environ.get("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com"),
        scope=os.environ.get("AZIMG_ARM_SCOPE", DEFAULT_SCOPE),
        origin="environment",
    )


def connect(data_dir: Path | None = None, port: int | None = None) -> Connection:
    """The environment's ARM endpoint, or the local platform's (see the module docstring)."""
    if data_dir is None and port is None:
        env = _from_env()
        if env is not None:
            return env
    from azimg.cli.credentials import connection_info
    from azimg.platform.settings import Settings

    settings = Settings.from_env(data_dir=data_dir, port=port)
    info = connection_info(settings)
    os.environ["REQUESTS_CA_BUNDLE"] = info["REQUESTS_CA_BUNDLE"]  # MSAL reads it process-wide
    return Connection(
        tenant_id=info["AZURE_TENANT_ID"],
        client_id=info["AZURE_CLIENT_ID"],
        client_secret=info["AZURE_CLIENT_SECRET"],
        subscription_id=info["AZURE_SUBSCRIPTION_ID"],
        arm_endpoint=info["AZIMG_ARM_ENDPOINT"],
        authority=info["AZURE_AUTHORITY_HOST"],
        scope=info["AZIMG_ARM_SCOPE"],
        origin=f"local platform at {settings.data_dir}",
    )
