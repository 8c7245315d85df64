"""``azimg credentials`` reads the identity of the platform the data dir belongs to, wherever
its metadata lives; no command invents a second identity."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.api.conftest import PlatformServer


def _azimg(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "azimg.cli.main", *args]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)


def test_credentials_of_a_postgresql_platform_are_the_ones_it_serves(
    make_server: Callable[..., PlatformServer], postgres_url: str
) -> None:
    server = make_server(database_url=postgres_url)
    where = ["--data-dir", str(server.data_dir), "--port", str(server.port)]
    printed = json.loads(_azimg("credentials", *where, "-o", "json").stdout)
    assert printed == server.info
    assert not (server.data_dir / "metadata.sqlite").exists()  # no second store was made
    # the printed credentials sign in (before the fix: AADSTS90002, tenant not found)
    from azure.identity import ClientSecretCredential

    token = ClientSecretCredential(
        printed["AZURE_TENANT_ID"],
        printed["AZURE_CLIENT_ID"],
        printed["AZURE_CLIENT_SECRET"],
        authority=server.base_url,
        disable_instance_discovery=True,
    ).get_token("https://management.core.windows.net//.default")
    assert token.token


def test_a_different_database_url_for_the_same_data_dir_is_refused(
    make_server: Callable[..., PlatformServer], postgres_url: str, tmp_path: Path
) -> None:
    server = make_server(database_url=postgres_url)
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    r = _azimg(
        "credentials", "--data-dir", str(server.data_dir), "--database-url", other, check=False
    )
    assert r.returncode == 2, r.stderr
    assert "metadata" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "other.sqlite").exists()
