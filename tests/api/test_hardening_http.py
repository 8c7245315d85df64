"""Hostile and faulty HTTP clients against a real `azimg serve`: body limits, nesting, slow
headers, disconnects, the Host header, 405 and 500 responses, exposure and file modes."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.conftest import PlatformServer, free_port

API = "api-version=2024-11-01"


def _tls(server: PlatformServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca_bundle)


def _connect(server: PlatformServer, timeout: float = 30) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return _tls(server).wrap_socket(raw, server_hostname="127.0.0.1")


def _read_response(sock: ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased) and body of one response read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _rg_path(server: PlatformServer, name: str) -> str:
    return f"/subscriptions/{server.subscription_id}/resourcegroups/{name}?{API}"


# --- body limits ---------------------------------------------------------------------------


def test_arm_body_declared_above_the_limit_is_413_before_it_is_read(
    platform_server: PlatformServer,
) -> None:
    """Only the headers are sent: the answer comes without the server waiting for 200 MB."""
    with _connect(platform_server) as sock:
        head = (
            f"PUT {_rg_path(platform_server, 'rg-huge')} HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\n"
            f"Authorization: Bearer {platform_server.token()}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"
        )
        sock.sendall(head.encode())
        status, headers, body = _read_response(sock)
    assert status == 413
    assert headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == "RequestEntityTooLarge"
    assert "4194304" in error["message"]


def test_arm_chunked_body_above_the_limit_is_cut_off_with_413(
    platform_server: PlatformServer,
) -> None:
    """A chunked body has no declared size: the server buffers at most one chunk past 4 MiB,
    answers 413 and closes (what the client still pushes is discarded by the TLS shutdown)."""
    chunk = b"[" + b" " * (64 * 1024 - 2) + b"]"
    with _connect(platform_server) as sock:
        head = (
            f"PUT {_rg_path(platform_server, 'rg-chunked')} HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\n"
            f"Authorization: Bearer {platform_server.token()}\r\n"
            "Content-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        sent = 0
        try:  # 64 MiB offered; the server closes once it has refused
            while sent < 64 * 1024 * 1024:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answered = _read_response(sock)
    status, headers, body = answered
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "RequestEntityTooLarge"


def test_json_nested_100000_deep_is_400_invalid_request_content(
    platform_server: PlatformServer,
) -> None:
    """Was a 500 (RecursionError in json.loads)."""
    deep = "[" * 100_000 + "]" * 100_000
    body = '{"location": "eastus", "tags": {"a": ' + deep + "}}"
    r = platform_server.arm(
        "PUT",
        _rg_path(platform_server, "rg-deep"),
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "InvalidRequestContent"
    assert "nested deeper" in r.json()["error"]["message"]
    assert platform_server.arm("GET", _rg_path(platform_server, "rg-deep")).status_code == 404


def test_json_depth_ignores_brackets_inside_strings(platform_server: PlatformServer) -> None:
    name = "rg-brackets"
    body = {"location": "eastus", "tags": {"t": "[" * 100 + "{" * 100}}
    r = platform_server.arm("PUT", _rg_path(platform_server, name), json=body)
    assert r.status_code in (200, 201), r.text
    assert r.json()["tags"]["t"].startswith("[[[")
    platform_server.arm("DELETE", _rg_path(platform_server, name))


# --- protocol ------------------------------------------------------------------------------


def test_405_says_method_not_allowed(platform_server: PlatformServer) -> None:
    r = platform_server.arm("PATCH", "/subscriptions?api-version=2022-12-01")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "MethodNotAllowed"
    assert "GET" in r.headers["Allow"]


def test_urls_never_come_from_the_host_header(
    platform_server: PlatformServer, resource_group: str
) -> None:
    """Azure-AsyncOperation, Location and the SAS URL name the configured origin, whatever
    Host a client sends (was: reflected)."""
    base = (
        f"/subscriptions/{platform_server.subscription_id}/resourceGroups/{resource_group}"
        "/providers/Microsoft.Compute/disks/hosthdr"
    )
    disk = {
        "location": "eastus",
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
    }
    evil = {"Host": "evil.example:443"}
    r = platform_server.arm("PUT", f"{base}?api-version=2025-01-02", json=disk, headers=evil)
    assert r.status_code in (200, 202), r.text
    r = platform_server.arm(
        "POST",
        f"{base}/beginGetAccess?api-version=2025-01-02",
        json={"access": "Read", "durationInSeconds": 600},
        headers=evil,
    )
    assert r.status_code == 202, r.text
    for name in ("Azure-AsyncOperation", "Location"):
        assert r.headers[name].startswith(platform_server.base_url + "/"), r.headers[name]
    location = r.headers["Location"][len(platform_server.base_url) :]
    deadline = time.monotonic() + 60
    while (result := platform_server.arm("GET", location, headers=evil)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert result.json()["accessSAS"].startswith(platform_server.base_url + "/blob/")
    platform_server.arm("POST", f"{base}/endGetAccess?api-version=2025-01-02")


def test_headers_that_do_not_arrive_in_time_close_the_connection(make_server: Any) -> None:
    """AZIMG_HEADER_TIMEOUT (default 30 s) bounds a request line + headers; the client here
    never finishes its headers and the server closes (before: held open indefinitely)."""
    server = make_server(env={"AZIMG_HEADER_TIMEOUT": "1"})
    with _connect(server, timeout=60) as sock:
        sock.sendall(b"GET /metadata/endpoints HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert sock.recv(1024) == b""  # closed by the server, not by our 60 s timeout
    with _connect(server, timeout=60) as sock:  # a TLS connection that never sends a byte
        assert sock.recv(1024) == b""
    r = requests.get(f"{server.base_url}/metadata/endpoints", verify=server.ca_bundle, timeout=30)
    assert r.status_code == 200  # whole requests are unaffected


def test_client_disconnect_mid_body_is_logged_as_such(make_server: Any) -> None:
    server = make_server()
    log = server.data_dir.parent / f"{server.data_dir.name}-server.log"
    with _connect(server) as sock:
        head = (
            f"PUT {_rg_path(server, 'rg-gone')} HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\n"
            f"Authorization: Bearer {server.token()}\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"location": ')
    deadline = time.monotonic() + 30
    while "client disconnected mid-body" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    text = log.read_text()
    assert "PUT /subscriptions/" in text
    assert "unhandled error" not in text and "Traceback" not in text


# --- 500s close the connection properly ----------------------------------------------------


@pytest.fixture
def failing_app_server(tmp_path: Path, platform_server: PlatformServer) -> Iterator[str]:
    """The real app (create_app, the real protocol class) with one extra route that raises,
    served by uvicorn in a thread: the only way left to provoke a 500 on purpose."""
    import shutil

    import uvicorn

    from azimg.platform.arm.app import create_app
    from azimg.platform.arm.guards import header_timeout_protocol
    from azimg.platform.settings import Settings
    from azimg.platform.store import open_store

    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(platform_server.data_dir / "tls", data / "tls")
    port = free_port()
    settings = Settings(data_dir=data, port=port, regions=("eastus",))
    store = open_store(settings)
    app = create_app(settings, store)

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(data / "tls" / "server.pem"),
        ssl_keyfile=str(data / "tls" / "server.key"),
        http=header_timeout_protocol(30),
        log_level="critical",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield f"https://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)
    store.close()


def test_a_500_says_connection_close_and_the_next_request_works(
    failing_app_server: str, platform_server: PlatformServer
) -> None:
    host = failing_app_server.split("//")[1]
    conn = http.client.HTTPSConnection(host, context=_tls(platform_server), timeout=30)
    conn.request("GET", "/boom")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 500
    assert r.getheader("Connection") == "close"  # before: dropped without saying so
    assert json.loads(body)["error"]["code"] == "InternalServerError"
    conn.close()
    with requests.Session() as s:
        assert (
            s.get(f"{failing_app_server}/boom", verify=platform_server.ca_bundle).status_code == 500
        )
        r2 = s.get(f"{failing_app_server}/metadata/endpoints", verify=platform_server.ca_bundle)
        assert r2.status_code == 200


# --- exposure and file modes ---------------------------------------------------------------


def _serve(*args: str, timeout: float = 60) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "azimg.cli.main", "serve", "-o", "json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_non_loopback_host_needs_public_host(tmp_path: Path) -> None:
    proc = _serve("--data-dir", str(tmp_path / "d"), "--host", "0.0.0.0", "--port", "1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "--public-host" in err and "Traceback" not in err


def test_public_host_goes_into_urls_and_the_certificate_with_a_warning(
    tmp_path: Path,
) -> None:
    from cryptography import x509

    port = free_port()
    data = tmp_path / "d"
    proc = _serve(
        "--data-dir",
        str(data),
        "--host",
        "0.0.0.0",
        "--public-host",
        "azimg.example.test",
        "--port",
        str(port),
        "--regions",
        "eastus",
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        lines = []
        while (line := proc.stdout.readline()) and line.rstrip() != "}":
            lines.append(line)
        info = json.loads("".join(lines) + "}")
        assert info["AZIMG_ARM_ENDPOINT"] == f"https://azimg.example.test:{port}"
        warning = next(x for x in iter(proc.stderr.readline, "") if "WARNING" in x)
        assert f"https://azimg.example.test:{port}" in warning
        cert = x509.load_pem_x509_certificate((data / "tls" / "server.pem").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "azimg.example.test" in san.get_values_for_type(x509.DNSName)
        # A client naming another Host still gets URLs on the public name.
        deadline = time.monotonic() + 60
        while True:
            try:
                r = requests.get(
                    f"https://127.0.0.1:{port}/metadata/endpoints?api-version=2022-09-01",
                    headers={"Host": "evil.example"},
                    verify=info["REQUESTS_CA_BUNDLE"],
                    timeout=5,
                )
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert r.json()["resourceManager"] == f"https://azimg.example.test:{port}/"
    finally:
        proc.terminate()
        proc.wait(30)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_directory_is_private_and_wider_modes_are_tightened(make_server: Any) -> None:
    """metadata.sqlite holds the client secret and the SAS key; blobs hold disk contents.
    make_server starts from a 0755 directory and a copied 0644 tls/: both get tightened,
    with a notice, and everything the server makes is owner-only."""
    server = make_server()
    data = server.data_dir
    log = data.parent / f"{data.name}-server.log"
    assert "tightened" in log.read_text()
    client = server.compute_client()
    rg = server.resource_client()
    rg.resource_groups.create_or_update("modes", {"location": "eastus"})
    client.disks.begin_create_or_update(
        "modes",
        "d1",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        },
    ).result()
    assert _mode(data) == 0o700
    found = {p.name for p in data.rglob("*")}
    assert {"metadata.sqlite", "metadata.sqlite-wal", "metadata.sqlite-shm"} <= found
    for path in data.rglob("*"):
        if path.is_symlink():
            continue
        mode = _mode(path)
        if path.is_dir():
            assert mode == 0o700, path
        else:
            assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    blobs = [p for p in (data / "blobs").rglob("*") if p.is_file()]
    assert blobs and all(_mode(p) == 0o600 for p in blobs)
    assert _mode(data / "identity" / "token-signing.pem") == 0o600
    assert _mode(data / "metadata.sqlite") == 0o600


def test_credentials_before_serve_also_makes_a_private_database(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    r = subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", "credentials", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    assert "AZURE_CLIENT_SECRET" in r.stdout
    assert _mode(data) == 0o700
    assert _mode(data / "metadata.sqlite") == 0o600
