"""The replication run of a gallery image version (``JOB_REPLICATE``) and its delete job.

One PUT/PATCH is one durable operation whose replicas copy on their own threads; it occupies
one platform job worker until every replica is done. The state machine is
``resources/replication.py``; this module only runs it and records each step through the
document's ETag, so a concurrent DELETE or resource-group delete is never overwritten by a
progress update.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from azimg.platform.errors import Conflict, PlatformError, PreconditionFailed, ReplicationFailed
from azimg.platform.jobs import JobSpec
from azimg.platform.resources import replication
from azimg.platform.resources.gallery_versions.model import (
    JOB_DELETE,
    JOB_REPLICATE,
    VERSION_TYPE,
    GalleryImageVersion,
    display_region,
    from_doc,
    save,
    to_doc,
)
from azimg.platform.resources.gallery_versions.service import finish_delete
from azimg.platform.store import Document, Operation, Store

log = logging.getLogger(__name__)

_PROGRESS_EVERY = 0.25  # seconds between progress writes of one replica
_REPLICA_THREADS = 4


class _Gone(Exception):
    """The version was deleted (or is being deleted) while it replicated."""


class _VersionWriter:
    """One replication run's writes of the version document.

    The run's replica threads take turns through ``lock``; anyone else (a DELETE marking the
    version Deleting, a resource-group delete) is detected through the document's ETag, so
    their write is never overwritten by a progress update.
    """

    def __init__(self, store: Store, rid: str) -> None:
        self.store = store
        self.rid = rid
        self.lock = threading.Lock()

    def _load_doc(self) -> tuple[Document, GalleryImageVersion]:
        doc = self.store.meta.get(self.rid)
        if doc is None or doc.type != VERSION_TYPE:
            raise _Gone(self.rid)
        version = from_doc(doc)
        if version.deleting:
            raise _Gone(self.rid)
        return doc, version

    def load(self) -> GalleryImageVersion:
        return self._load_doc()[1]

    def save(self, change: Callable[[GalleryImageVersion], GalleryImageVersion]) -> None:
        """Apply ``change`` to the current document, retrying if someone else wrote first."""
        with self.lock:
            while True:
                doc, version = self._load_doc()
                try:
                    self.store.meta.put(to_doc(change(version)), if_match=doc.etag)
                    return
                except PreconditionFailed:
                    continue

    def put_replica(self, replica: replication.Replica) -> None:
        def change(version: GalleryImageVersion) -> GalleryImageVersion:
            replicas = tuple(
                replica if (r.region, r.index) == (replica.region, replica.index) else r
                for r in version.replicas
            )
            return replace(version, replicas=replicas)

        self.save(change)


def _replicate_one(
    writer: _VersionWriter, replica: replication.Replica, rate: int | None
) -> replication.Replica:
    replica = replication.start(replica)
    last = 0.0

    def report(done: int) -> None:
        nonlocal replica, last
        replica = replication.advance(replica, done)
        now = time.monotonic()
        if now - last >= _PROGRESS_EVERY:
            last = now
            writer.put_replica(replica)  # raises _Gone: the copy stops

    try:
        writer.put_replica(replica)
        try:
            replication.copy_replica(writer.store.blobs, replica, rate=rate, report=report)
        except (OSError, PlatformError) as err:
            reason = err.message if isinstance(err, PlatformError) else (err.strerror or str(err))
            log.warning(
                "replica %s#%d of %s failed: %s", replica.region, replica.index, writer.rid, reason
            )
            replica = replication.fail(replica, reason)
        else:
            replica = replication.complete(replica)
        writer.put_replica(replica)
    except _Gone:
        # Deleted under our feet: whoever deleted it may have freed the blobs before this
        # copy wrote them, so drop what this replica wrote.
        for d in replica.disks:
            writer.store.blobs.delete(d.target)
        raise
    return replica


def _run_replication(store: Store, op: Operation) -> Mapping[str, Any] | None:
    """Copy every replica that is not done yet; resumable (a restart re-runs this).

    ``op.params["rate"]`` is the platform's replication rate when the copy was asked for.
    """
    writer = _VersionWriter(store, op.resource_id)
    rate = op.params.get("rate")
    try:
        writer.save(
            lambda v: replace(v, replicas=tuple(replication.after_restart(r) for r in v.replicas))
        )
        todo = [r for r in writer.load().replicas if not r.done]
        if todo:
            with ThreadPoolExecutor(min(_REPLICA_THREADS, len(todo))) as pool:
                list(pool.map(lambda r: _replicate_one(writer, r, rate), todo))
        writer.save(lambda v: replace(v, updating=False))
        version = writer.load()
    except _Gone:
        raise Conflict(
            f"The gallery image version '{op.resource_id.rsplit('/', 1)[1]}' was deleted "
            "before its replication finished."
        ) from None
    if version.aggregated_state is replication.AggregatedReplicationState.FAILED:
        failed = [s for s in version.status if s.state is replication.ReplicationState.FAILED]
        raise ReplicationFailed(
            "; ".join(f"{display_region(version, s.region)}: {s.details}" for s in failed),
            target="publishingProfile.targetRegions",
        )
    return None


def _on_replication_failed(store: Store, op: Operation, _error: Mapping[str, Any]) -> None:
    """A run that could not finish: replicas still in flight end Failed, never Creating."""
    doc = store.meta.get(op.resource_id)
    if doc is None or doc.type != VERSION_TYPE:
        return
    version = from_doc(doc)
    replicas = tuple(
        r if r.done else replication.fail(r, "the replication job was interrupted")
        for r in version.replicas
    )
    save(store, replace(version, replicas=replicas, updating=False))


def _run_delete(store: Store, op: Operation) -> Mapping[str, Any] | None:
    finish_delete(store, op.resource_id)
    return None


def job_specs() -> dict[str, JobSpec]:
    return {
        JOB_REPLICATE: JobSpec(
            run=_run_replication, on_fail=_on_replication_failed, resumable=True, dedicated=True
        ),
        JOB_DELETE: JobSpec(run=_run_delete, resumable=True),
    }
