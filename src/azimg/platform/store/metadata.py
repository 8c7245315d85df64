"""The metadata store interface: JSON documents keyed by lower-cased ARM id, with ETags.

Documents carry a few indexed columns (type, subscription, resource group, parent, location)
so lists are one query; the body is opaque JSON owned by the resource module that wrote it.
``blobs`` names the byte extents a document owns, so deleting a resource group can release
bytes without knowing every resource type. Operations (long-running jobs) live beside them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from azimg.platform.ids import utc_now


@dataclass(frozen=True)
class BlobRef:
    """Where a resource's bytes live: a region's blob root and a key inside it."""

    region: str
    key: str

    def to_json(self) -> dict[str, str]:
        return {"region": self.region, "key": self.key}

    @classmethod
    def from_json(cls, raw: Mapping[str, str]) -> BlobRef:
        return cls(region=raw["region"], key=raw["key"])


@dataclass(frozen=True)
class Document:
    id: str  # as created (case preserved); the key is id.lower()
    type: str  # e.g. "Microsoft.Compute/disks"
    body: Mapping[str, Any]
    etag: str = ""
    location: str | None = None
    blobs: tuple[BlobRef, ...] = ()

    @property
    def key(self) -> str:
        return self.id.lower()


@dataclass(frozen=True)
class Operation:
    """One long-running operation: what runs (kind + params) and how it ended."""

    id: str
    kind: str
    status: str  # InProgress | Succeeded | Failed | Canceled
    action: str  # put | patch | post | delete
    resource_id: str
    location: str
    params: Mapping[str, Any] = field(default_factory=dict)
    output: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None
    start_time: str = ""
    end_time: str | None = None
    # An operation finished by an outside event (``Jobs.expect``) fails at this UTC time.
    deadline: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("Succeeded", "Failed", "Canceled")

    @classmethod
    def new(
        cls,
        kind: str,
        *,
        action: str,
        resource_id: str,
        location: str,
        params: Mapping[str, Any] | None = None,
        deadline: str | None = None,
    ) -> Operation:
        """The one builder of operations: a fresh id, InProgress, started now."""
        return cls(
            id=str(uuid.uuid4()),
            kind=kind,
            status="InProgress",
            action=action,
            resource_id=resource_id,
            location=location,
            params=dict(params or {}),
            start_time=utc_now(),
            deadline=deadline,
        )


class MetadataStore(Protocol):
    """Documents and operations; every implementation passes tests/api/test_store.py."""

    def get(self, resource_id: str) -> Document | None: ...

    def put(
        self,
        doc: Document,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        operation: Operation | None = None,
    ) -> Document:
        """Write ``doc`` with a fresh ETag; ``if_match`` / ``if_none_match`` are conditions.
        ``operation`` is added in the same transaction (both are written, or neither)."""
        ...

    def delete(self, resource_id: str, *, if_match: str | None = None) -> bool: ...

    def list(
        self,
        *,
        type: str | None = None,
        prefix: str | None = None,
        parent: str | None = None,
    ) -> list[Document]:
        """Documents of ``type`` whose id starts with ``prefix`` (case-insensitive), or the
        direct children of ``parent``."""
        ...

    def add_operation(self, op: Operation) -> None: ...

    def get_operation(self, op_id: str) -> Operation | None: ...

    def finish_operation(
        self,
        op_id: str,
        *,
        status: str,
        output: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> Operation:
        """End an InProgress operation; one already ended is returned unchanged (the first
        ending wins, so an outside event and a deadline cannot both finish it)."""
        ...

    def operations_in_progress(self) -> Sequence[Operation]: ...

    def close(self) -> None: ...
