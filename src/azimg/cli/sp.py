"""`azimg sp create|consent` — service principals: single- or multi-tenant applications.

``create`` makes an application and its service principal in one tenant (optionally with a
built-in role at a scope); ``consent`` gives a multi-tenant application a service principal in
another tenant, with its own object id there and the application's secret, as an
administrator's consent does in Entra ID. Both print credentials as ``azimg credentials``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from azimg.cli.credentials import DATA_DIR_OPTION, HOST_OPTION, PORT_OPTION, emit_credentials
from azimg.cli.output import OUTPUT_OPTION, OutputFormat


def register(app: typer.Typer) -> None:
    sp = typer.Typer(help="Service principals (applications) of the platform's tenants.")
    app.add_typer(sp, name="sp")

    @sp.command("create")
    def create(
        tenant: str = typer.Option(..., "--tenant", help="id of the tenant it lives in"),
        multi_tenant: bool = typer.Option(
            False, "--multi-tenant", help="an AzureADMultipleOrgs application"
        ),
        name: str | None = typer.Option(None, "--name", help="display name"),
        role: str | None = typer.Option(None, "--role", help="built-in role name or GUID"),
        scope: str | None = typer.Option(
            None, "--scope", help="subscription, resource group or resource id"
        ),
        data_dir: Path | None = DATA_DIR_OPTION,
        host: str | None = HOST_OPTION,
        port: int | None = PORT_OPTION,
        output: OutputFormat = OUTPUT_OPTION,
    ) -> None:
        """Create an application and its service principal (with --role at --scope)."""
        from azimg.platform.identity import create_service_principal

        emit_credentials(
            lambda meta: create_service_principal(
                meta,
                tenant_id=tenant,
                multi_tenant=multi_tenant,
                display_name=name,
                role=role,
                scope=scope,
            ),
            data_dir,
            host,
            port,
            output,
        )

    @sp.command("consent")
    def consent(
        tenant: str = typer.Option(..., "--tenant", help="the tenant that consents"),
        app_id: str = typer.Option(..., "--app", help="appId of a multi-tenant application"),
        data_dir: Path | None = DATA_DIR_OPTION,
        host: str | None = HOST_OPTION,
        port: int | None = PORT_OPTION,
        output: OutputFormat = OUTPUT_OPTION,
    ) -> None:
        """Give a multi-tenant application a service principal in another tenant."""
        from azimg.platform.identity import consent as give_consent

        emit_credentials(
            lambda meta: give_consent(meta, tenant_id=tenant, app_id=app_id),
            data_dir,
            host,
            port,
            output,
        )
