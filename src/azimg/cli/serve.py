"""`azimg serve` — run the platform: ARM, sign-in and blob endpoints on one HTTPS port.

First start makes the data directory, a local CA and server certificate, and the default
tenant, subscription and service principal; every start prints them in a form to paste.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

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
            None, "--public-host", help="host name clients use, put in URLs and the certificate"
        ),
        output: OutputFormat = OUTPUT_OPTION,
    ) -> None:
        """Start the platform (HTTPS ARM + token + blob endpoints)."""
        import uvicorn

        from azimg.platform.arm.app import create_app
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
            http="httptools",
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
