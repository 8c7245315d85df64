"""`azimg tenant create` — a new Entra ID tenant with a subscription and its administrator.

Prints the administrator's credentials with the keys of ``azimg credentials``, so a second
tenant is one command away from an SDK client or ``az login --tenant``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from azimg.cli.credentials import DATA_DIR_OPTION, HOST_OPTION, PORT_OPTION, emit_credentials
from azimg.cli.output import OUTPUT_OPTION, OutputFormat


def register(app: typer.Typer) -> None:
    tenant = typer.Typer(help="Tenants (Entra ID directories) of the platform.")
    app.add_typer(tenant, name="tenant")

    @tenant.command("create")
    def create(
        name: str | None = typer.Option(None, "--name", help="display name of the tenant"),
        data_dir: Path | None = DATA_DIR_OPTION,
        host: str | None = HOST_OPTION,
        port: int | None = PORT_OPTION,
        output: OutputFormat = OUTPUT_OPTION,
    ) -> None:
        """Create a tenant with one subscription, owned by a new administrator principal."""
        from azimg.platform.identity import create_tenant

        emit_credentials(
            lambda meta: create_tenant(meta, display_name=name), data_dir, host, port, output
        )
