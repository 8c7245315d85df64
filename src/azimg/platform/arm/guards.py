"""Guards in front of every route, for hostile or faulty clients.

``RequestGuardMiddleware`` (outermost ASGI middleware):
  * pins the ``Host`` header to the configured public origin, so every URL the platform
    hands out (Azure-AsyncOperation, Location, nextLink, SAS) is built from configuration,
    never from what a client claimed;
  * bounds ARM/sign-in bodies before parsing: a declared ``Content-Length`` above Azure's
    request limit is refused unread, a streamed one is cut off one chunk past it (413 with the
    ARM error body, connection closed); JSON nested deeper than ``MAX_JSON_DEPTH`` is refused
    (400 ``InvalidRequestContent``) before ``json.loads`` could recurse on it;
  * logs a client that disconnects mid-body as such (not as an unhandled error).
The ``/blob`` endpoint bounds its own bodies (Put Page: range size, at most 4 MiB).

``header_timeout_protocol(seconds)``: uvicorn's httptools protocol, closing a connection whose
request line and headers have not all arrived within ``seconds`` (idle keep-alive connections
are closed by uvicorn's own keep-alive timeout).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from itertools import accumulate
from typing import Any
from urllib.parse import urlparse

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from azimg.platform.arm.errors import arm_envelope
from azimg.platform.errors import InvalidRequestContent, PlatformError, RequestEntityTooLarge

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: ARM's request size limit (a template or request body of at most 4 MB).
MAX_ARM_BODY = 4 * 1024 * 1024
#: Deeper than any ARM body or template; far below what would exhaust Python's recursion.
MAX_JSON_DEPTH = 64

_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = [0] * 256
for _b in b"[{":
    _DELTA[_b] = 1
for _b in b"]}":
    _DELTA[_b] = -1


def json_depth(raw: bytes) -> int:
    """How deeply ``raw`` nests arrays/objects (strings skipped), in C-speed passes."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0)


async def _refuse(send: Send, status: int, err: PlatformError) -> None:
    import json

    body = json.dumps(arm_envelope(err)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _too_large(size: str) -> RequestEntityTooLarge:
    return RequestEntityTooLarge(
        f"The request content size {size} exceeds the maximum allowed size of "
        f"{MAX_ARM_BODY} bytes (4 MiB)."
    )


class RequestGuardMiddleware:
    def __init__(self, app: ASGIApp, *, base_url: str) -> None:
        self.app = app
        self.host = urlparse(base_url).netloc.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
        headers.append((b"host", self.host))
        scope = {**scope, "headers": headers}
        path: str = scope["path"]
        if path.startswith("/blob/"):
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in headers if k == b"content-length"), None)
        chunked = any(k == b"transfer-encoding" for k, _ in headers)
        if length is None and not chunked:
            await self.app(scope, receive, send)
            return
        if length is not None and length.isdigit() and int(length) > MAX_ARM_BODY:
            await _refuse(send, 413, _too_large(f"{int(length)} bytes"))
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                log.warning(
                    "client disconnected mid-body: %s %s after %d bytes",
                    scope["method"],
                    path,
                    len(body),
                )
                return
            body += message.get("body", b"")
            if len(body) > MAX_ARM_BODY:
                await _refuse(send, 413, _too_large(f"of more than {MAX_ARM_BODY} bytes"))
                return
            if not message.get("more_body", False):
                break
        if body.lstrip()[:1] in (b"{", b"[") and json_depth(bytes(body)) > MAX_JSON_DEPTH:
            await _refuse(
                send,
                400,
                InvalidRequestContent(
                    "The request content was invalid and could not be deserialized: JSON "
                    f"nested deeper than {MAX_JSON_DEPTH} levels."
                ),
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def header_timeout_protocol(seconds: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a deadline for each request's line and headers."""

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                log.info(
                    "closing a connection from %s: request headers did not arrive within %g s",
                    self.client,
                    seconds,
                )
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()  # a connection that never sends a request is closed too

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:
                self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()  # the keep-alive timeout watches the idle connection from here

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol
