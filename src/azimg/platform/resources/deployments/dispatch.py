"""How the deployment engine reaches resource providers: HTTPS to the platform's own ARM
endpoint, with the deploying caller's bearer token.

Why HTTPS and not an in-process call: that is what ARM itself does (it calls each resource
provider over HTTP on the caller's behalf), and it makes "every template resource goes through
the same provider code as a direct PUT" true by construction — the same routing, api-version
checks, body validation, status codes and LRO answers a client gets, with nothing in this
package importing a provider module (platform/resources never imports platform/arm). A
nested deployment is one more PUT, to our own deployments route. The cost is a loopback TLS
request per call (milliseconds; see bench/deploy.py when it exists).

LROs are followed the way ARMPolling does (arm-api.md §3.1): ``Azure-AsyncOperation`` until a
terminal status, then a GET of the resource; else ``Location`` until not 202; else the
resource's ``provisioningState``. Polls are every 0.25 s at most (``Retry-After`` is the
providers' hint to remote clients; this client is local and cheap).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TERMINAL = {"succeeded", "failed", "canceled"}
POLL = 0.25


class ProviderError(Exception):
    """A provider answered with an error: its HTTP status and ARM error object."""

    def __init__(self, status: int, error: Mapping[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.status = status
        self.error = dict(error)

    @property
    def status_code(self) -> str:
        """Azure's ``statusCode`` text for a deployment operation."""
        return {
            400: "BadRequest",
            401: "Unauthorized",
            403: "Forbidden",
            404: "NotFound",
            409: "Conflict",
            412: "PreconditionFailed",
            501: "NotImplemented",
        }.get(self.status, "InternalServerError" if self.status >= 500 else str(self.status))


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any


class Dispatcher:
    """An ARM client of this platform, acting as one caller (its token)."""

    def __init__(self, base_url: str, ca_file: Path, token: str, *, timeout: float = 3600) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cafile=str(ca_file))

    def _url(self, path: str, api_version: str | None) -> str:
        if path.startswith("https://"):
            return path
        url = self.base_url + urllib.request.quote(path, safe="/-_.~()")
        return f"{url}?api-version={api_version}" if api_version else url

    def call(self, method: str, path: str, api_version: str | None, body: Any = None) -> Response:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self._url(path, api_version), data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("x-ms-client-request-id", "azimg-deployment-engine")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=120) as resp:
                raw = resp.read()
                status, headers = resp.status, dict(resp.headers.items())
        except urllib.error.HTTPError as err:
            raw, status, headers = err.read(), err.code, dict(err.headers.items())
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = {"raw": raw.decode("utf-8", "replace")}
        if status >= 400:
            error = (parsed or {}).get("error") if isinstance(parsed, dict) else None
            if not isinstance(error, dict):
                error = {"code": str(status), "message": f"{method} {path} answered {status}."}
            raise ProviderError(status, error)
        return Response(status, {k.lower(): v for k, v in headers.items()}, parsed)

    def get(self, rid: str, api_version: str) -> Any:
        return self.call("GET", rid, api_version).body

    def put(self, rid: str, api_version: str, body: Any) -> tuple[int, Any]:
        """PUT and follow the LRO to its end; the status of the PUT and the final resource."""
        first = self.call("PUT", rid, api_version, body)
        return first.status, self._finish(first, rid, api_version, "PUT")

    def post(self, path: str, api_version: str, body: Any = None) -> Any:
        return self._finish(self.call("POST", path, api_version, body), path, api_version, "POST")

    def delete(self, rid: str, api_version: str) -> None:
        self._finish(self.call("DELETE", rid, api_version), rid, api_version, "DELETE")

    def _finish(self, first: Response, path: str, api_version: str, method: str) -> Any:
        deadline = time.monotonic() + self.timeout
        async_url = first.headers.get("azure-asyncoperation")
        location = first.headers.get("location")
        if async_url:
            while True:
                status = self.call("GET", async_url, None).body or {}
                state = str(status.get("status", "")).lower()
                if state in TERMINAL:
                    break
                self._wait(deadline, path)
            if state != "succeeded":
                error = status.get("error") or {
                    "code": "OperationFailed",
                    "message": f"The operation on '{path}' ended {status.get('status')}.",
                }
                raise ProviderError(400, error)
            if method == "PUT":
                return self.call("GET", path, api_version).body
            if method == "POST" and location:
                return self.call("GET", location, None).body
            return status.get("properties", {}).get("output")
        if location and first.status == 202:
            while True:
                resp = self.call("GET", location, None)
                if resp.status != 202:
                    return resp.body
                self._wait(deadline, path)
        if method == "PUT":
            body = first.body
            while True:
                state = str(((body or {}).get("properties") or {}).get("provisioningState", ""))
                if not state or state.lower() in TERMINAL:
                    break
                self._wait(deadline, path)
                body = self.call("GET", path, api_version).body
            if state.lower() in ("failed", "canceled"):
                raise ProviderError(
                    400,
                    {"code": "ResourceDeploymentFailure", "message": f"'{path}' ended {state}."},
                )
            return body
        return first.body

    def _wait(self, deadline: float, path: str) -> None:
        if time.monotonic() > deadline:
            raise ProviderError(
                504, {"code": "OperationTimedOut", "message": f"'{path}' did not finish in time."}
            )
        time.sleep(POLL)
