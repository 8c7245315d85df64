"""Shared-access signatures for the blob endpoint: minted by disks/snapshots, checked per call.

A grant is a document (``/providers/azimg/accessGrants/{id}``) naming the resource and blob it
opens, its permissions and expiry. The URL's ``sig`` is an HMAC over grant id, permissions and
expiry with a key kept in the metadata store, so a signed URL survives a restart (an upload
interrupted by kill -9 goes on with the same URL) and cannot be widened by editing the query.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from azimg.platform.errors import PreconditionFailed, StorageAuthenticationFailed
from azimg.platform.store import BlobRef, Document, Store

GRANT_TYPE = "azimg/accessGrants"
_KEY_ID = "/providers/azimg/keys/sas"
SAS_VERSION = "2018-03-28"
BLOB_NAME = "abcd"  # what the real service calls every disk's blob


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


def _signature(key: bytes, grant_id: str, permissions: str, expiry: str) -> str:
    msg = f"{grant_id}\n{permissions}\n{expiry}\n{SAS_VERSION}".encode()
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


def create_grant(
    store: Store, *, resource_id: str, blob: BlobRef, permissions: str, duration_seconds: int
) -> Grant:
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
    sig = _signature(_key(store), grant.id, grant.permissions, grant.expiry)
    return (
        f"{blob_base_url}/{grant.id}/{BLOB_NAME}?sv={SAS_VERSION}&sr=b&si={grant.id}"
        f"&sp={grant.permissions}&se={quote(grant.expiry, safe='')}&sig={quote(sig, safe='')}"
    )


def check(store: Store, *, container: str, query: dict[str, str], need: str) -> Grant:
    """The grant a request's SAS query proves, or 403 ``AuthenticationFailed``."""
    doc = store.meta.get(grant_doc_id(container)) if container.isalnum() else None
    sig, perms, expiry = query.get("sig", ""), query.get("sp", ""), query.get("se", "")
    if doc is None:
        raise StorageAuthenticationFailed(
            "Server failed to authenticate the request. The access grant does not exist or "
            "was revoked."
        )
    b = doc.body
    expected = _signature(_key(store), container, b["permissions"], b["expiry"])
    if perms != b["permissions"] or expiry != b["expiry"] or not hmac.compare_digest(sig, expected):
        raise StorageAuthenticationFailed(
            "Server failed to authenticate the request. Make sure the value of Authorization "
            "header is formed correctly including the signature."
        )
    if datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) < datetime.now(UTC):
        raise StorageAuthenticationFailed(
            "Server failed to authenticate the request. Signed expiry time has passed."
        )
    if not set(need) <= set(perms):
        raise StorageAuthenticationFailed(
            "This request is not authorized to perform this operation using this permission."
        )
    return Grant(
        id=container,
        resource_id=b["resourceId"],
        blob=BlobRef.from_json(b["blob"]),
        permissions=b["permissions"],
        expiry=b["expiry"],
    )
