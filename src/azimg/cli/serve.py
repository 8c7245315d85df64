"""`azimg serve` — run the platform: ARM, sign-in and blob endpoints on one HTTPS port.

First start makes the data directory, a local CA and server certificate, and the default
tenant, subscription and service principal; every start prints them in a form to paste.
"""

from __future__ import annotations

import gc
import ipaddress
import sys
from pathlib import Path
from typing import Any

import typer

from azimg.cli.credentials import DATA_DIR_OPTION, connection_info, render_text
from azimg.cli.output import OUTPUT_OPTION, OutputFormat, emit


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        data_dir: Path | None = DATA_DIR_OPTION,
        host: str | None = typer.Option(None, "--host", help="bind address (default 127.0.0.1)"),
        port: int | None = typer.Option(None, "--port", help="HTTPS port (default 8443)"),
        regions: str | None = typer.Option(
            None, "--regions", help="comma-separated region names (default: five real regions)"
        ),
        database_url: str | None = typer.Option(
            None, "--database-url", help="SQLAlchemy URL (default SQLite in the data directory)"
        ),
        blob_url: str | None = typer.Option(
            None,
            "--blob-url",
            help="keep blobs in this Blob API account (Azure Storage, Azurite); key in "
            "$AZIMG_BLOB_KEY",
        ),
        public_host: str | None = typer.Option(
            None,
            "--public-host",
            help="host name clients use, put in every URL and the certificate (required with "
            "a --host other than loopback)",
        ),
        output: OutputFormat = OUTPUT_OPTION,
    ) -> None:
        """Start the platform (HTTPS ARM + token + blob endpoints)."""
        import uvicorn

        from azimg.platform.arm.app import create_app
        from azimg.platform.arm.guards import header_timeout_protocol
        from azimg.platform.filemodes import secure_data_dir
        from azimg.platform.settings import Settings
        from azimg.platform.store import open_store
        from azimg.platform.tls import ensure_tls

        settings = Settings.from_env(
            data_dir=data_dir,
            host=host,
            port=port,
            regions=tuple(regions.split(",")) if regions else None,
            database_url=database_url,
            blob_url=blob_url,
            public_host=public_host,
        )
        _check_exposure(settings)
        loosened = secure_data_dir(settings.data_dir)
        if loosened:
            print(
                f"azimg serve: tightened {len(loosened)} path(s) under {settings.data_dir} "
                "to owner-only (0700/0600): they held secrets readable by other users",
                file=sys.stderr,
                flush=True,
            )
        info = connection_info(settings)
        emit(info, output, render_text)
        if output is OutputFormat.text:
            print(f"# serving on {settings.base_url} (Ctrl-C stops)", flush=True)
        sys.stdout.flush()
        tls = ensure_tls(settings.data_dir, [settings.url_host])
        store = open_store(settings)
        app = create_app(settings, store)
        # Everything built so far lives as long as the server: keep it out of the collector's
        # generations, and collect young objects less often (fewer pauses under load).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            ssl_certfile=str(tls.server_cert),
            ssl_keyfile=str(tls.server_key),
            loop="uvloop",
            http=header_timeout_protocol(settings.header_timeout),
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=3,
            backlog=2048,
        )
        try:
            uvicorn.Server(config).run()
        finally:
            store.close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_exposure(settings: Any) -> None:
    """Listening beyond loopback needs the name clients will use (URLs, certificate SAN):
    without it every URL would say 127.0.0.1. With it, say loudly that the port is open."""
    if _is_loopback(settings.host):
        return
    if not settings.public_host:
        print(
            f"azimg serve: --host {settings.host} listens beyond this machine; also pass "
            "--public-host NAME (the DNS name or address clients use: it goes into every URL "
            "and the server certificate)",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    print(
        f"azimg serve: WARNING: listening on {settings.host}:{settings.port}, reachable from "
        f"the network as {settings.base_url}. Anyone who can reach it and holds the client "
        "secret or a SAS URL can use it; see the security section of the platform README.",
        file=sys.stderr,
        flush=True,
    )
