"""Shared-access signatures for the blob endpoint: minted by disks/snapshots, checked per call.

A grant is a document (``/providers/azimg/accessGrants/{id}``) naming the resource and blob it
opens, its permissions and expiry. The URL's ``sig`` is an HMAC over the signed version
(``sv``), the blob path (``/<grant>/abcd``), permissions and expiry with a key kept in the
metadata store, so a signed URL survives a restart (an upload interrupted by kill -9 goes on
with the same URL) and cannot be widened or moved to another blob by editing it.

Writes and revoke meet at a per-resource gate (``WriteGate``): endGetAccess closes it, waits
for the Put Pages already admitted, and only then checks the VHD, so no write lands after the
check that ends an upload.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from azimg.platform.errors import (
    BlobWriteNotAllowed,
    InvalidParameter,
    PreconditionFailed,
    StorageAuthenticationFailed,
    StorageAuthorizationPermissionMismatch,
)
from azimg.platform.store import BlobRef, Document, Store

GRANT_TYPE = "azimg/accessGrants"
_KEY_ID = "/providers/azimg/keys/sas"
SAS_VERSION = "2018-03-28"
BLOB_NAME = "abcd"  # what the real service calls every disk's blob
#: Azure's bounds of ``durationInSeconds``: a disk or snapshot SAS lives at most 60 days
#: (Azure CLI issue 29431: "Disk SAS limit max expiry to 5184000 seconds").
MIN_DURATION = 1
MAX_DURATION = 5_184_000


@dataclass(frozen=True)
class Grant:
    id: str
    resource_id: str
    blob: BlobRef
    permissions: str  # "r" or "rw"
    expiry: str  # ISO 8601, second precision, Z


def grant_doc_id(grant_id: str) -> str:
    return f"/providers/azimg/accessGrants/{grant_id}"


def _key(store: Store) -> bytes:
    doc = store.meta.get(_KEY_ID)
    if doc is None:
        with contextlib.suppress(PreconditionFailed):  # another thread made it first
            store.meta.put(
                Document(id=_KEY_ID, type="azimg/keys", body={"key": secrets.token_hex(32)}),
                if_none_match=True,
            )
        doc = store.meta.get(_KEY_ID)
    assert doc is not None
    return bytes.fromhex(doc.body["key"])


def _signature(key: bytes, grant_id: str, permissions: str, expiry: str, version: str) -> str:
    path = f"/{grant_id}/{BLOB_NAME}"
    msg = f"{permissions}\n{expiry}\n{path}\n{version}".encode()
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


def check_duration(duration_seconds: object) -> int:
    """``durationInSeconds`` within Azure's bounds, or 400 naming them (before any change)."""
    if not isinstance(duration_seconds, int) or isinstance(duration_seconds, bool):
        raise InvalidParameter(
            "durationInSeconds must be a whole number of seconds.", target="durationInSeconds"
        )
    if not MIN_DURATION <= duration_seconds <= MAX_DURATION:
        raise InvalidParameter(
            f"The value {duration_seconds} of durationInSeconds is out of range; it must be "
            f"{MIN_DURATION} to {MAX_DURATION} (60 days).",
            target="durationInSeconds",
        )
    return duration_seconds


def create_grant(
    store: Store, *, resource_id: str, blob: BlobRef, permissions: str, duration_seconds: int
) -> Grant:
    check_duration(duration_seconds)
    expiry = (datetime.now(UTC) + timedelta(seconds=duration_seconds)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    grant = Grant(
        id=secrets.token_hex(16),
        resource_id=resource_id,
        blob=blob,
        permissions=permissions,
        expiry=expiry,
    )
    store.meta.put(
        Document(
            id=grant_doc_id(grant.id),
            type=GRANT_TYPE,
            body={
                "resourceId": resource_id,
                "blob": blob.to_json(),
                "permissions": permissions,
                "expiry": expiry,
            },
        )
    )
    return grant


def revoke_grant(store: Store, grant_id: str | None) -> None:
    if grant_id:
        store.meta.delete(grant_doc_id(grant_id))


def url(store: Store, grant: Grant, *, blob_base_url: str) -> str:
    """``{base}/{grant}/abcd?sv=...&sr=b&sp=..&se=..&sig=..`` (shape of the real service)."""
    sig = _signature(_key(store), grant.id, grant.permissions, grant.expiry, SAS_VERSION)
    return (
        f"{blob_base_url}/{grant.id}/{BLOB_NAME}?sv={SAS_VERSION}&sr=b&si={grant.id}"
        f"&sp={grant.permissions}&se={quote(grant.expiry, safe='')}&sig={quote(sig, safe='')}"
    )


def check(store: Store, *, container: str, blob: str, query: dict[str, str], need: str) -> Grant:
    """The grant a request's SAS proves for ``/<container>/<blob>``, or 403
    ``AuthenticationFailed`` (bad, expired or revoked) / ``AuthorizationPermissionMismatch``
    (valid, but without the permission the operation needs)."""
    doc = store.meta.get(grant_doc_id(container)) if container.isalnum() else None
    sig, perms, expiry = query.get("sig", ""), query.get("sp", ""), query.get("se", "")
    version = query.get("sv", "")
    if doc is None:
        raise StorageAuthenticationFailed(
            "Server failed to authenticate the request. The access grant does not exist or "
            "was revoked."
        )
    b = doc.body
    expected = _signature(_key(store), container, b["permissions"], b["expiry"], SAS_VERSION)
    if (
        perms != b["permissions"]
        or expiry != b["expiry"]
        or version != SAS_VERSION
        or blob != BLOB_NAME
        or not hmac.compare_digest(sig.encode(), expected.encode())
    ):
        raise StorageAuthenticationFailed(
            "Server failed to authenticate the request. Make sure the value of Authorization "
            "header is formed correctly including the signature."
        )
    if datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) < datetime.now(UTC):
        raise StorageAuthenticationFailed(
            "Server failed to authenticate the request. Signed expiry time has passed."
        )
    if not set(need) <= set(perms):
        raise StorageAuthorizationPermissionMismatch(
            "This request is not authorized to perform this operation using this permission."
        )
    return Grant(
        id=container,
        resource_id=b["resourceId"],
        blob=BlobRef.from_json(b["blob"]),
        permissions=b["permissions"],
        expiry=b["expiry"],
    )


class WriteGate:
    """Admits Put Pages per resource until revoke closes it; revoke waits for those admitted.

    In-process state is enough: one server owns a data directory, and after a restart no
    write is in flight."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._writing: dict[str, int] = {}
        self._closed: set[str] = set()

    @contextlib.contextmanager
    def write(self, resource_id: str) -> Iterator[None]:
        """One Put Page on ``resource_id``; refused (409) while a revoke holds the gate."""
        rid = resource_id.lower()
        with self._cond:
            if rid in self._closed:
                raise BlobWriteNotAllowed(
                    "The disk's access is being revoked (endGetAccess); no more pages are accepted."
                )
            self._writing[rid] = self._writing.get(rid, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._writing[rid] -= 1
                if not self._writing[rid]:
                    del self._writing[rid]
                self._cond.notify_all()

    @contextlib.contextmanager
    def closed(self, resource_id: str) -> Iterator[None]:
        """Stop admitting writes on ``resource_id`` and wait for those in flight; reopen after
        (by then a successful revoke has removed the grant, so the SAS check refuses)."""
        rid = resource_id.lower()
        with self._cond:
            while rid in self._closed:  # another revoke of the same disk: one at a time
                self._cond.wait()
            self._closed.add(rid)
            while self._writing.get(rid):
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._closed.discard(rid)
                self._cond.notify_all()


#: The process's gate, shared by the blob endpoint and endGetAccess.
WRITES = WriteGate()
