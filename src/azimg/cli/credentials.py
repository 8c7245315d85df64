"""`azimg credentials` — print how to reach the platform and sign in, from the data directory.

Works without a running server: the tenant, subscription and service principal are read (or
made, on first use) from the metadata store, and the CA bundle from the data directory.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from azimg.cli.output import OUTPUT_OPTION, OutputFormat, emit

DATA_DIR_OPTION = typer.Option(
    None,
    "--data-dir",
    help="platform data directory (default $AZIMG_DATA_DIR or ~/.local/share/azimg)",
)


def connection_info(settings: Any) -> dict[str, str]:
    """Everything a client needs, as environment-variable names and values."""
    from azimg.platform.identity import bootstrap

    return connection_info_for(settings, bootstrap)


def connection_info_for(settings: Any, make: Callable[[Any], Any]) -> dict[str, str]:
    """``connection_info`` for the principal ``make(meta)`` creates or reads in the data
    directory's metadata store (``azimg tenant|subscription|sp create`` use it too); a
    platform error becomes the CLI's one-line error."""
    from azimg.errors import AzimgError
    from azimg.platform.errors import PlatformError
    from azimg.platform.store import open_store
    from azimg.platform.tls import ensure_tls

    tls = ensure_tls(settings.data_dir, [settings.url_host])
    store = open_store(settings)
    try:
        creds = make(store.meta)
    except PlatformError as err:
        raise AzimgError(f"{err.code}: {err.message}") from None
    finally:
        store.close()
    base = settings.base_url
    return {
        "REQUESTS_CA_BUNDLE": str(tls.bundle),
        "AZURE_TENANT_ID": creds.tenant_id,
        "AZURE_CLIENT_ID": creds.client_id,
        "AZURE_CLIENT_SECRET": creds.client_secret,
        "AZURE_SUBSCRIPTION_ID": creds.subscription_id,
        "AZURE_AUTHORITY_HOST": base,
        "AZIMG_ARM_ENDPOINT": base,
        "AZIMG_TOKEN_ENDPOINT": f"{base}/{creds.tenant_id}/oauth2/v2.0/token",
        "AZIMG_ARM_SCOPE": "https://management.core.windows.net//.default",
        "AZIMG_BLOB_ENDPOINT": f"{base}/blob",
        "AZIMG_CA_CERT": str(tls.ca_cert),
    }


def render_text(info: dict[str, str]) -> str:
    lines = ["# azimg platform — paste into a shell:"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in info.items()]
    lines += [
        "# Python: ClientSecretCredential($AZURE_TENANT_ID, $AZURE_CLIENT_ID, "
        "$AZURE_CLIENT_SECRET, authority=$AZURE_AUTHORITY_HOST, disable_instance_discovery=True)",
        "#         ComputeManagementClient(cred, $AZURE_SUBSCRIPTION_ID, "
        "base_url=$AZIMG_ARM_ENDPOINT, credential_scopes=[$AZIMG_ARM_SCOPE])",
        "# az:     az config set core.instance_discovery=false && "
        f"az cloud register -n azimg --endpoint-resource-manager {info['AZIMG_ARM_ENDPOINT']}/ && "
        "az cloud set -n azimg && az login --service-principal -u $AZURE_CLIENT_ID "
        "-p $AZURE_CLIENT_SECRET --tenant $AZURE_TENANT_ID",
    ]
    return "\n".join(lines)


HOST_OPTION = typer.Option(None, "--host", help="address the server binds")
PORT_OPTION = typer.Option(None, "--port", help="HTTPS port of the server")


def emit_credentials(
    make: Callable[[Any], Any],
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    output: OutputFormat,
) -> None:
    """Print the credentials of the principal ``make(meta)`` returns, as ``azimg
    credentials`` prints the default one."""
    from azimg.platform.settings import Settings

    settings = Settings.from_env(data_dir=data_dir, host=host, port=port)
    emit(connection_info_for(settings, make), output, render_text)


def register(app: typer.Typer) -> None:
    @app.command()
    def credentials(
        data_dir: Path | None = DATA_DIR_OPTION,
        host: str | None = HOST_OPTION,
        port: int | None = PORT_OPTION,
        output: OutputFormat = OUTPUT_OPTION,
    ) -> None:
        """Print the platform's endpoints, CA bundle and service-principal credentials."""
        from azimg.platform.identity import bootstrap

        emit_credentials(bootstrap, data_dir, host, port, output)
