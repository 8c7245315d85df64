"""The blob endpoint: the page-blob subset ``azure-storage-blob`` uses against a disk SAS.

Served under ``/blob`` on the ARM port, so a SAS URL is
``https://<host>:<port>/blob/<grant>/abcd?sv=..&sp=..&se=..&sig=..``; azure-storage-blob
reads ``blob`` as the account (localhost/IP style) or as an account path (other hosts), and
``<grant>``/``abcd`` as container and blob. Operations (reference §4.7):

  HEAD                    Get Blob Properties
  GET                     Get Blob (whole, or ``Range``/``x-ms-range`` → 206)
  GET  ?comp=pagelist     Get Page Ranges (optionally within a range)
  PUT  ?comp=page         Put Page: update (≤ 4 MiB, 512-aligned) or clear

Anything else answers 501 ``NotImplemented`` (refused, never ignored). Each handler checks,
in order: SAS (grant, signature, expiry, permission) → the disk's state for writes → the
range against alignment, size and body → the bytes.

A Put Page body is refused before it is read when ``Content-Length`` differs from the range
or exceeds 4 MiB; a chunked body is read only up to the range size + 1 byte, so the server's
memory stays bounded whatever a client sends. A refusal that leaves body bytes unread closes
the connection. Each Put Page holds the disk's write gate (``sas.WRITES``) from the SAS check
to the write, so endGetAccess can wait for it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from email.utils import formatdate

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from azimg.platform import sas
from azimg.platform.arm.errors import render
from azimg.platform.errors import (
    InvalidHeaderValue,
    InvalidPageRange,
    MissingRequiredHeader,
    PlatformError,
    RequestBodyTooLarge,
    StorageInvalidRange,
    UnsupportedStorageOperation,
)
from azimg.platform.resources import disks
from azimg.platform.store import Store
from azimg.platform.store import page_ranges as ranges_mod

log = logging.getLogger(__name__)

PAGE = 512
MAX_PUT_PAGE = 4 * 1024 * 1024
SERVICE_VERSION = "2021-08-06"
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_READ_CHUNK = 4 * 1024 * 1024


def _parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` of a ``bytes=S-E`` header, or None when absent."""
    if not value:
        return None
    m = _RANGE.match(value.strip())
    if not m:
        raise InvalidHeaderValue(f"The value '{value}' of the range header is invalid.")
    start = int(m.group(1))
    end = int(m.group(2)) + 1 if m.group(2) else size
    if end <= start:
        raise InvalidHeaderValue(f"The value '{value}' of the range header is invalid.")
    return start, end


def _common_headers(request: Request) -> dict[str, str]:
    return {
        "x-ms-request-id": str(uuid.uuid4()),
        "x-ms-version": request.headers.get("x-ms-version", SERVICE_VERSION),
        "x-ms-client-request-id": request.headers.get("x-ms-client-request-id", ""),
        "Date": formatdate(usegmt=True),
    }


class BlobEndpoint:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _grant(self, request: Request, need: str) -> sas.Grant:
        return sas.check(
            self.store,
            container=request.path_params["container"],
            blob=request.path_params["blob"],
            query=dict(request.query_params),
            need=need,
        )

    def _blob_headers(self, grant: sas.Grant) -> dict[str, str]:
        path = self.store.blobs.local_path(grant.blob)
        mtime = path.stat().st_mtime_ns if path is not None else 0
        return {
            "ETag": f'"0x{mtime:X}"',
            "Last-Modified": formatdate(mtime / 1e9, usegmt=True),
            "x-ms-blob-type": "PageBlob",
            "x-ms-blob-sequence-number": "0",
            "x-ms-lease-state": "available",
            "x-ms-lease-status": "unlocked",
            "x-ms-server-encrypted": "true",
            "Accept-Ranges": "bytes",
        }

    async def dispatch(self, request: Request) -> Response:
        try:
            comp = request.query_params.get("comp")
            if request.method == "HEAD" and comp is None:
                return await self.properties(request)
            if request.method == "GET" and comp is None:
                return await self.download(request)
            if request.method == "GET" and comp == "pagelist":
                return await self.page_list(request)
            if request.method == "PUT" and comp == "page":
                return await self.put_page(request)
            raise UnsupportedStorageOperation(
                f"The operation {request.method} comp={comp} is not implemented by azimg's "
                "blob endpoint (page-blob subset: Get Blob, Get Blob Properties, Put Page, "
                "Get Page Ranges)."
            )
        except PlatformError as err:
            response = render(request, err)  # type: ignore[arg-type]
            response.headers.update(_common_headers(request))
            if request.method in ("PUT", "POST", "DELETE"):
                # The body may be unread: close instead of parsing the rest as a next request.
                response.headers["Connection"] = "close"
            return response
        except ClientDisconnect:
            log.warning(
                "client disconnected mid-body: %s %s (nothing written)",
                request.method,
                request.url.path,
            )
            return Response(status_code=400, headers={"Connection": "close"})

    async def properties(self, request: Request) -> Response:
        grant = self._grant(request, "r")
        size = await run_in_threadpool(self.store.blobs.size, grant.blob)
        headers = {
            **_common_headers(request),
            **self._blob_headers(grant),
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
        }
        return Response(status_code=200, headers=headers)

    async def download(self, request: Request) -> Response:
        grant = self._grant(request, "r")
        blobs = self.store.blobs
        size = await run_in_threadpool(blobs.size, grant.blob)
        rng = _parse_range(request.headers.get("x-ms-range") or request.headers.get("range"), size)
        start, end = rng if rng else (0, size)
        if start >= size and (rng or size):  # an empty blob reads as 200 with no bytes
            raise StorageInvalidRange("The range specified is invalid for the current size.")
        end = min(end, size)
        headers = {
            **_common_headers(request),
            **self._blob_headers(grant),
            "Content-Length": str(end - start),
            "Content-Type": "application/octet-stream",
        }
        if rng:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"

        async def body() -> AsyncIterator[bytes]:
            pos = start
            while pos < end:
                n = min(_READ_CHUNK, end - pos)
                yield await run_in_threadpool(blobs.read, grant.blob, pos, n)
                pos += n

        return StreamingResponse(body(), status_code=206 if rng else 200, headers=headers)

    async def page_list(self, request: Request) -> Response:
        grant = self._grant(request, "r")
        size = await run_in_threadpool(self.store.blobs.size, grant.blob)
        found = await run_in_threadpool(self.store.blobs.page_ranges, grant.blob)
        rng = _parse_range(request.headers.get("x-ms-range") or request.headers.get("range"), size)
        if rng:
            found = ranges_mod.within(found, *rng)
        xml = (
            '<?xml version="1.0" encoding="utf-8"?><PageList>'
            + "".join(
                f"<PageRange><Start>{s}</Start><End>{e - 1}</End></PageRange>" for s, e in found
            )
            + "</PageList>"
        )
        headers = {
            **_common_headers(request),
            **self._blob_headers(grant),
            "x-ms-blob-content-length": str(size),
        }
        return Response(xml, media_type="application/xml", headers=headers)

    async def put_page(self, request: Request) -> Response:
        grant = self._grant(request, "w")
        with sas.WRITES.write(grant.resource_id):
            return await self._put_page(request, grant)

    async def _put_page(self, request: Request, grant: sas.Grant) -> Response:
        for header in request.headers:
            if header.startswith("x-ms-if-sequence-number") or header == "x-ms-content-crc64":
                raise UnsupportedStorageOperation(
                    f"The header '{header}' is not supported by azimg's blob endpoint."
                )
        await run_in_threadpool(disks.check_upload_open, self.store, grant.resource_id)
        mode = request.headers.get("x-ms-page-write", "").lower()
        if mode not in ("update", "clear"):
            raise MissingRequiredHeader("The header x-ms-page-write must be 'update' or 'clear'.")
        size = await run_in_threadpool(self.store.blobs.size, grant.blob)
        header = request.headers.get("x-ms-range") or request.headers.get("range")
        if not header:
            raise MissingRequiredHeader("A Put Page request needs an x-ms-range header.")
        start, end = _parse_range(header, size) or (0, 0)
        if start % PAGE or end % PAGE:
            raise InvalidPageRange(
                f"The page range {header} is invalid: start and end + 1 must be multiples of 512."
            )
        if end > size:
            raise InvalidPageRange(
                f"The page range {header} is beyond the end of the {size}-byte blob."
            )
        declared = request.headers.get("content-length")
        if declared is not None and not declared.isdigit():
            raise InvalidHeaderValue(f"The Content-Length '{declared}' is not a number.")
        if mode == "clear":
            if declared is not None and int(declared) != 0:
                raise InvalidHeaderValue("A Put Page with x-ms-page-write: clear has no body.")
            await run_in_threadpool(self.store.blobs.clear_pages, grant.blob, start, end)
            return self._written(request, grant)
        if end - start > MAX_PUT_PAGE:
            raise RequestBodyTooLarge(
                f"The request body is too large and exceeds the maximum permissible limit: "
                f"a Put Page writes at most {MAX_PUT_PAGE} bytes (4 MiB); the range {header} "
                f"is {end - start} bytes."
            )
        if declared is not None and int(declared) != end - start:
            raise InvalidHeaderValue(
                f"Content-Length {declared} does not match the range {header} "
                f"({end - start} bytes)."
            )
        data = await _read_at_most(request, end - start)
        if len(data) > end - start:
            raise InvalidHeaderValue(
                f"The body is longer than the range {header} ({end - start} bytes); it was "
                "cut off there and refused."
            )
        if len(data) < end - start:
            raise InvalidHeaderValue(
                f"The body is {len(data)} bytes; the range {header} is {end - start} bytes."
            )
        md5 = request.headers.get("content-md5")
        if md5 is not None:
            try:
                digest = base64.b64decode(md5, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidHeaderValue(f"The Content-MD5 '{md5}' is not base64.") from None
            if digest != hashlib.md5(data).digest():
                raise InvalidHeaderValue("The MD5 value specified in the request did not match.")
        await run_in_threadpool(self.store.blobs.write_pages, grant.blob, start, bytes(data))
        response = self._written(request, grant)
        if md5 is not None:
            response.headers["Content-MD5"] = md5
        return response

    def _written(self, request: Request, grant: sas.Grant) -> Response:
        headers = {
            **_common_headers(request),
            **self._blob_headers(grant),
            "x-ms-request-server-encrypted": "true",
        }
        return Response(status_code=201, headers=headers)


async def _read_at_most(request: Request, limit: int) -> bytearray:
    """The body, read until it ends or passes ``limit`` by one byte (then the caller refuses
    it and the connection closes): a chunked body never costs more than limit + one chunk."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            del data[limit + 1 :]
            break
    return data


def create_blob_app(store: Store) -> Starlette:
    endpoint = BlobEndpoint(store)
    return Starlette(
        routes=[
            Route(
                "/{container}/{blob}",
                endpoint.dispatch,
                methods=["GET", "HEAD", "PUT", "DELETE", "POST"],
            )
        ]
    )
