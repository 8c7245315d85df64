"""HTTP over a Unix socket: how guest requests reach whoever serves that VM.

The relays in the VM's network namespace (and the IMDS ``guestfwd`` helper) connect to one
socket per service in the VM's runtime directory, so the socket a request arrives on names the
VM and the service. This module only moves bytes: it turns a request into a ``GuestRequest``,
calls the route function it was given, writes the ``GuestResponse`` and closes the connection
(both agents send one request per connection or tolerate ``Connection: close``). Every exchange
is appended to a JSON-lines request log, the regression oracle when a guest misbehaves.
"""

from __future__ import annotations

import json
import os
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from azimg.fabric.wireserver import GuestRequest, GuestResponse

Route = Callable[[GuestRequest], GuestResponse]
MAX_BODY = 8 * 1024 * 1024


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    route: Route
    service: str
    log: Callable[[dict], None]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_BODY)) if length else b""
        req = GuestRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            resp = self.server.route(req)
        except Exception as err:  # a bug in a route must not kill the guest's connection
            resp = GuestResponse(500, f"{type(err).__name__}: {err}".encode(), "text/plain")
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)
        self.close_connection = True
        self.server.log(
            {
                "t": round(time.time(), 3),
                "service": self.server.service,
                "method": req.method,
                "url": self.path,
                "agent": req.headers.get("user-agent", ""),
                "status": resp.status,
                "request_bytes": len(body),
            }
        )

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle

    def log_message(self, format: str, *args: object) -> None:
        """Silenced: the JSON-lines request log records every exchange instead."""


class GuestServer:
    """One Unix-socket HTTP server per (VM, service), served from a daemon thread."""

    def __init__(self, socket_path: Path, service: str, route: Route, request_log: Path) -> None:
        if socket_path.exists() or socket_path.is_socket():
            socket_path.unlink()
        self._log_lock = threading.Lock()
        self._log_path = request_log
        self._server = _Server(str(socket_path), _Handler)
        self._server.route = route
        self._server.service = service
        self._server.log = self._append_log
        os.chmod(socket_path, 0o600)
        self.socket_path = socket_path
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"guest-{service}", daemon=True
        )
        self._thread.start()

    def _append_log(self, entry: dict) -> None:
        with self._log_lock, self._log_path.open("a") as out:
            out.write(json.dumps(entry) + "\n")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.socket_path.unlink(missing_ok=True)
