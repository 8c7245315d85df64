"""`azimg subscription create --tenant T` — a new subscription homed in tenant T.

Its owner is the tenant's administrator principal, whose credentials are printed with the new
subscription id (the keys of ``azimg credentials``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from azimg.cli.credentials import DATA_DIR_OPTION, HOST_OPTION, PORT_OPTION, emit_credentials
from azimg.cli.output import OUTPUT_OPTION, OutputFormat


def register(app: typer.Typer) -> None:
    subscription = typer.Typer(help="Subscriptions of the platform's tenants.")
    app.add_typer(subscription, name="subscription")

    @subscription.command("create")
    def create(
        tenant: str = typer.Option(..., "--tenant", help="id of the tenant that owns it"),
        name: str | None = typer.Option(None, "--name", help="display name"),
        data_dir: Path | None = DATA_DIR_OPTION,
        host: str | None = HOST_OPTION,
        port: int | None = PORT_OPTION,
        output: OutputFormat = OUTPUT_OPTION,
    ) -> None:
        """Create a subscription in a tenant; the tenant's administrator is its Owner."""
        from azimg.platform.identity import create_subscription

        emit_credentials(
            lambda meta: create_subscription(meta, tenant_id=tenant, display_name=name),
            data_dir,
            host,
            port,
            output,
        )
