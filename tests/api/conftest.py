"""A real `azimg serve` subprocess and the Azure SDK clients users would build against it.

The server runs as a child process (free port, temp data directory) so tests can kill -9 it
and start it again on the same data. One server is shared by the session; tests that kill
theirs use ``make_server`` for a private one. Clients are built the documented way:
``ClientSecretCredential(..., authority=<our https url>, disable_instance_discovery=True)``
plus ``base_url`` and ``credential_scopes``, trusting our CA through ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

ARM_SCOPE = "https://management.core.windows.net//.default"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PlatformServer:
    """One `azimg serve` child process over a data directory that outlives it."""

    data_dir: Path
    port: int
    regions: str = "eastus,westus,westeurope"
    database_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    info: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> str:
        return self.info["REQUESTS_CA_BUNDLE"]

    @property
    def subscription_id(self) -> str:
        return self.info["AZURE_SUBSCRIPTION_ID"]

    def start(self, *, timeout: float = 60) -> None:
        cmd = [
            sys.executable,
            "-m",
            "azimg.cli.main",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--regions",
            self.regions,
            "-o",
            "json",
        ]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        log = open(self.data_dir.parent / f"{self.data_dir.name}-server.log", "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, **self.env}
        )
        assert self.proc.stdout is not None
        lines = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"azimg serve exited early, see {log.name}")
            lines.append(line)
            if line.rstrip() == "}":
                break
        self.info = json.loads("".join(lines))
        while time.monotonic() < deadline:
            try:
                requests.get(
                    f"{self.base_url}/metadata/endpoints?api-version=2022-09-01",
                    verify=self.ca_bundle,
                    timeout=5,
                )
                return
            except (requests.ConnectionError, requests.Timeout):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"azimg serve exited, see {log.name}") from None
                time.sleep(0.1)
        raise RuntimeError("azimg serve did not answer in time")

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flushing — a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def credential(self) -> Any:
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(
            self.info["AZURE_TENANT_ID"],
            self.info["AZURE_CLIENT_ID"],
            self.info["AZURE_CLIENT_SECRET"],
            authority=self.base_url,
            disable_instance_discovery=True,
        )

    def compute_client(self, credential: Any | None = None) -> Any:
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(
            credential or self.credential(),
            self.subscription_id,
            base_url=self.base_url,
            credential_scopes=[ARM_SCOPE],
        )

    def resource_client(self, credential: Any | None = None) -> Any:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(
            credential or self.credential(),
            self.subscription_id,
            base_url=self.base_url,
            credential_scopes=[ARM_SCOPE],
        )

    def network_client(self, credential: Any | None = None) -> Any:
        from azure.mgmt.network import NetworkManagementClient

        return NetworkManagementClient(
            credential or self.credential(),
            self.subscription_id,
            base_url=self.base_url,
            credential_scopes=[ARM_SCOPE],
        )

    def token(self) -> str:
        return self.credential().get_token(ARM_SCOPE).token

    def arm(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A raw ARM request with a valid token (for shapes the SDK hides)."""
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return requests.request(
            method, self.base_url + path, headers=headers, verify=self.ca_bundle, **kwargs
        )


@contextlib.contextmanager
def trusted(server: PlatformServer) -> Iterator[PlatformServer]:
    """``server`` with REQUESTS_CA_BUNDLE on its CA (MSAL reads it process-wide); afterwards the
    server is stopped and the variable restored."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REQUESTS_CA_BUNDLE", server.ca_bundle)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def platform_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformServer]:
    server = PlatformServer(data_dir=tmp_path_factory.mktemp("platform") / "data", port=free_port())
    server.data_dir.mkdir()
    server.start()
    with trusted(server):
        yield server


@pytest.fixture
def make_server(
    tmp_path: Path, platform_server: PlatformServer
) -> Iterator[Callable[..., PlatformServer]]:
    """A private server (for kill -9 tests). It starts from a copy of the session server's
    CA and certificate, so the process-wide REQUESTS_CA_BUNDLE (which MSAL insists on)
    trusts it too."""
    made: list[PlatformServer] = []

    def make(database_url: str | None = None, env: dict[str, str] | None = None) -> PlatformServer:
        server = PlatformServer(
            data_dir=tmp_path / f"data{len(made)}",
            port=free_port(),
            database_url=database_url,
            env=env or {},
        )
        server.data_dir.mkdir()
        shutil.copytree(platform_server.data_dir / "tls", server.data_dir / "tls")
        server.start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def _pg_tool(name: str) -> str:
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: ./setup.sh installs postgresql")
    return found


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster (as the postgres user when we are root); yields a
    SQLAlchemy URL prefix ``postgresql+psycopg://azimg@127.0.0.1:<port>/``."""
    import tempfile

    import psycopg

    work = Path(tempfile.mkdtemp(prefix="azimg-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = work / "data"
    initdb = [*as_user, _pg_tool("initdb"), "-D", str(data), "-A", "trust", "-U", "azimg"]
    initdb += ["--no-sync", "--locale=C.UTF-8", "-E", "UTF8"]
    subprocess.run(
        initdb,
        check=True,
        capture_output=True,
    )
    port = free_port()
    serve = [*as_user, _pg_tool("postgres"), "-D", str(data), "-p", str(port), "-k", str(work)]
    serve += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    proc = subprocess.Popen(
        serve,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=azimg dbname=postgres").close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.2)
    try:
        yield f"postgresql+psycopg://azimg@127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's PostgreSQL cluster."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    port = postgres_server.rsplit(":", 1)[1].rstrip("/")
    with psycopg.connect(
        f"host=127.0.0.1 port={port} user=azimg dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server + name


AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@pytest.fixture(scope="session")
def azurite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Blob API account served by Azurite (installed by setup.sh into .tools); its
    well-known dev account key is ``AZURITE_KEY``."""
    tool = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin"
    tool = tool / "azurite-blob"
    if not tool.exists():
        raise RuntimeError(f"{tool} is missing: run ./setup.sh")
    port = free_port()
    cmd = [str(tool), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--silent"]
    cmd += ["--location", str(tmp_path_factory.mktemp("azurite")), "--disableTelemetry"]
    cmd += ["--skipApiVersionCheck"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("azurite did not start") from None
            time.sleep(0.2)
    try:
        yield f"http://127.0.0.1:{port}/devstoreaccount1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


@pytest.fixture(scope="session")
def credential(platform_server: PlatformServer) -> Any:
    return platform_server.credential()


@pytest.fixture(scope="session")
def compute(platform_server: PlatformServer, credential: Any) -> Any:
    return platform_server.compute_client(credential)


@pytest.fixture(scope="session")
def network(platform_server: PlatformServer, credential: Any) -> Any:
    return platform_server.network_client(credential)


@pytest.fixture(scope="session")
def resources(platform_server: PlatformServer, credential: Any) -> Any:
    return platform_server.resource_client(credential)


@pytest.fixture
def resource_group(resources: Any) -> Iterator[str]:
    """A fresh resource group in eastus, deleted (with its contents) after the test."""
    name = f"rg-{uuid.uuid4().hex[:10]}"
    resources.resource_groups.create_or_update(name, {"location": "eastus"})
    yield name
    resources.resource_groups.begin_delete(name).result()
