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

from azimg.platform import sources
from azimg.platform.errors import (
    PlatformError,
    ReplicationFailed,
)
from azimg.platform.gallery_errors import (
    VersionDeletedWhileReplicating,
)
from azimg.platform.jobs import JobSpec
from azimg.platform.resources import image_checks, replication
from azimg.platform.resources.gallery_versions.model import (
    JOB_DELETE,
    JOB_REPLICATE,
    VERSION_TYPE,
    GalleryImageVersion,
    display_region,
    from_doc,
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
    """One replication run's reads and writes of the version document.

    Every write is ``store.update`` (compare-and-set on the ETag), so a DELETE marking the
    version Deleting or a resource-group delete is never overwritten by a progress update:
    the change declines and the run stops (``_Gone``). The run's replica threads take turns
    through ``lock`` only to spare each other needless retries.
    """

    def __init__(self, store: Store, rid: str) -> None:
        self.store = store
        self.rid = rid
        self.lock = threading.Lock()

    def load(self) -> GalleryImageVersion:
        version = _live(self.store.meta.get(self.rid))
        if version is None:
            raise _Gone(self.rid)
        return version

    def save(self, change: Callable[[GalleryImageVersion], GalleryImageVersion]) -> None:
        def apply(doc: Document) -> Document | None:
            version = _live(doc)
            return None if version is None else to_doc(change(version))

        with self.lock:
            if self.store.update(self.rid, apply) is None:
                raise _Gone(self.rid)

    def put_replica(self, replica: replication.Replica) -> None:
        def change(version: GalleryImageVersion) -> GalleryImageVersion:
            replicas = tuple(
                replica if (r.region, r.index) == (replica.region, replica.index) else r
                for r in version.replicas
            )
            return replace(version, replicas=replicas)

        self.save(change)


def _live(doc: Document | None) -> GalleryImageVersion | None:
    """The version in ``doc`` unless it is gone or being deleted."""
    if doc is None or doc.type != VERSION_TYPE:
        return None
    version = from_doc(doc)
    return None if version.deleting else version


def _export(store: Store, disk: replication.DiskCopy) -> None:
    """A VM's clone in use becomes the replica's fixed VHD (flattened, never the qcow2)."""
    source = sources.SourceDisk(
        disk.lun, disk.source, disk.size - sources.VHD_FOOTER, format=disk.format
    )
    sources.copy_disk(store, source, disk.target)


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
            replication.copy_replica(
                writer.store.blobs,
                replica,
                rate=rate,
                report=report,
                export=lambda d: _export(writer.store, d),
            )
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
        raise VersionDeletedWhileReplicating(name=op.resource_id.rsplit("/", 1)[1]) from None
    if version.aggregated_state is replication.AggregatedReplicationState.FAILED:
        failed = [s for s in version.status if s.state is replication.ReplicationState.FAILED]
        raise ReplicationFailed(
            "; ".join(f"{display_region(version, s.region)}: {s.details}" for s in failed),
            target="publishingProfile.targetRegions",
        )
    # The platform checks every image it is given (image_checks.py), on the home replica.
    image_checks.record(store, op.resource_id, region=version.location)
    return None


def _on_replication_failed(store: Store, op: Operation, _error: Mapping[str, Any]) -> None:
    """A run that could not finish: replicas still in flight end Failed, never Creating."""

    def change(doc: Document) -> Document | None:
        if doc.type != VERSION_TYPE:
            return None
        version = from_doc(doc)
        replicas = tuple(
            r if r.done else replication.fail(r, "the replication job was interrupted")
            for r in version.replicas
        )
        return to_doc(replace(version, replicas=replicas, updating=False))

    store.update(op.resource_id, change)


def _run_delete(store: Store, op: Operation) -> Mapping[str, Any] | None:
    finish_delete(store, op.resource_id)
    return None


JOBS: dict[str, JobSpec] = {
    JOB_REPLICATE: JobSpec(
        run=_run_replication, on_fail=_on_replication_failed, resumable=True, dedicated=True
    ),
    JOB_DELETE: JobSpec(run=_run_delete, resumable=True),
}
