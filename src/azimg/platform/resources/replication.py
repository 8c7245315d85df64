"""Replication of a gallery image version: one replica job per target region and replica.

The state machine is pure and table-tested; the copy itself is the blob store's (reflink or
sparse copy) or, when a rate limit is set, a streamed copy over the page ranges so progress is
visible and a kill -9 can land mid-copy.

Design choices:
- Each replica is its own unit of work (region, index) with its own bytes, state and progress.
  The region's ``replicationStatus`` summary is derived from its replicas; the version's
  ``aggregatedState`` and ``provisioningState`` are derived from the regions. Nothing derived
  is stored, so it can never disagree with the replicas.
- A replica is written under its final key but only counts once its state says Completed: the
  metadata is the commit point. After a crash a replica that was Replicating starts again from
  byte 0 (copies are cheap and idempotent); a replica whose source has vanished ends Failed.
  So nothing is left "Creating" with nothing behind it.
- Azure's replication states are Unknown, Replicating, Completed, Failed; a queued replica
  reports Replicating at 0 % (Azure shows the same for queued regions).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from azimg.platform.store.blobs import BlobStore
from azimg.platform.store.metadata import BlobRef


class ReplicaState(StrEnum):
    """Per replica; ``Queued`` is ours (Azure reports it as Replicating at 0 %)."""

    QUEUED = "Queued"
    REPLICATING = "Replicating"
    COMPLETED = "Completed"
    FAILED = "Failed"


class ReplicationState(StrEnum):
    """Azure's per-region ``ReplicationState``."""

    UNKNOWN = "Unknown"
    REPLICATING = "Replicating"
    COMPLETED = "Completed"
    FAILED = "Failed"


class AggregatedReplicationState(StrEnum):
    UNKNOWN = "Unknown"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"


@dataclass(frozen=True)
class DiskCopy:
    """One disk image of a replica: where its bytes come from and go to."""

    lun: int | None  # None = the OS disk image
    source: BlobRef
    target: BlobRef
    size: int
    format: str = "vhd"  # "qcow2": the source is a VM's clone in use, exported, not copied

    def to_json(self) -> dict[str, Any]:
        return {
            "lun": self.lun,
            "source": self.source.to_json(),
            "target": self.target.to_json(),
            "size": self.size,
            "format": self.format,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DiskCopy:
        return cls(
            lun=raw["lun"],
            source=BlobRef.from_json(raw["source"]),
            target=BlobRef.from_json(raw["target"]),
            size=int(raw["size"]),
            format=raw.get("format", "vhd"),
        )


@dataclass(frozen=True)
class Replica:
    """One copy of every disk image of a version in one region."""

    region: str  # normalised region name
    index: int  # 0 .. regionalReplicaCount-1
    disks: tuple[DiskCopy, ...]
    state: ReplicaState = ReplicaState.QUEUED
    copied: int = 0  # bytes of all disks done so far
    details: str | None = None
    attempts: int = 0

    @property
    def total(self) -> int:
        return sum(d.size for d in self.disks)

    @property
    def done(self) -> bool:
        return self.state in (ReplicaState.COMPLETED, ReplicaState.FAILED)

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "index": self.index,
            "disks": [d.to_json() for d in self.disks],
            "state": self.state.value,
            "copied": self.copied,
            "details": self.details,
            "attempts": self.attempts,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Replica:
        return cls(
            region=raw["region"],
            index=int(raw["index"]),
            disks=tuple(DiskCopy.from_json(d) for d in raw["disks"]),
            state=ReplicaState(raw["state"]),
            copied=int(raw.get("copied", 0)),
            details=raw.get("details"),
            attempts=int(raw.get("attempts", 0)),
        )


@dataclass(frozen=True)
class RegionalReplicationStatus:
    region: str
    state: ReplicationState
    progress: int  # 0..100
    details: str | None = None


# --- transitions (pure) ----------------------------------------------------------------------


def start(replica: Replica) -> Replica:
    """A worker picked the replica up: copying restarts from byte 0."""
    if replica.done:
        raise ValueError(f"replica {replica.region}#{replica.index} already {replica.state}")
    return replace(replica, state=ReplicaState.REPLICATING, copied=0, attempts=replica.attempts + 1)


def advance(replica: Replica, copied: int) -> Replica:
    """Progress: ``copied`` bytes of all disks are in place (never goes backwards)."""
    if replica.state is not ReplicaState.REPLICATING:
        return replica
    return replace(replica, copied=max(replica.copied, min(copied, replica.total)))


def complete(replica: Replica) -> Replica:
    return replace(replica, state=ReplicaState.COMPLETED, copied=replica.total, details=None)


def fail(replica: Replica, reason: str) -> Replica:
    """Azure words a regional failure as ``Replication failed in this region due to '…'``."""
    return replace(
        replica,
        state=ReplicaState.FAILED,
        details=f"Replication failed in this region due to '{reason}'.",
    )


def after_restart(replica: Replica) -> Replica:
    """A replica interrupted by a crash is queued again; finished ones stay as they are."""
    if replica.state is ReplicaState.REPLICATING:
        return replace(replica, state=ReplicaState.QUEUED, copied=0)
    return replica


# --- derived status (pure) -------------------------------------------------------------------


def region_status(region: str, replicas: Sequence[Replica]) -> RegionalReplicationStatus:
    """A region is Failed if any replica failed, Completed when all are, else Replicating."""
    if not replicas:
        return RegionalReplicationStatus(region, ReplicationState.UNKNOWN, 0)
    failed = [r for r in replicas if r.state is ReplicaState.FAILED]
    total = sum(r.total for r in replicas)
    copied = sum(r.copied for r in replicas)
    if failed:
        progress = copied * 100 // total if total else 0
        return RegionalReplicationStatus(
            region, ReplicationState.FAILED, progress, failed[0].details
        )
    if all(r.state is ReplicaState.COMPLETED for r in replicas):
        return RegionalReplicationStatus(region, ReplicationState.COMPLETED, 100)
    # 100 % only once every replica is committed, never while the last bytes are in flight.
    progress = min(99, copied * 100 // total) if total else 0
    return RegionalReplicationStatus(region, ReplicationState.REPLICATING, progress)


def summary(
    regions: Iterable[str], replicas: Sequence[Replica]
) -> tuple[RegionalReplicationStatus, ...]:
    """One status per target region, in the order the regions were given."""
    return tuple(region_status(reg, [r for r in replicas if r.region == reg]) for reg in regions)


def aggregate(statuses: Sequence[RegionalReplicationStatus]) -> AggregatedReplicationState:
    """InProgress while any region replicates; then Failed if any failed, else Completed."""
    if not statuses:
        return AggregatedReplicationState.UNKNOWN
    states = {s.state for s in statuses}
    if ReplicationState.REPLICATING in states or ReplicationState.UNKNOWN in states:
        return AggregatedReplicationState.IN_PROGRESS
    if ReplicationState.FAILED in states:
        return AggregatedReplicationState.FAILED
    return AggregatedReplicationState.COMPLETED


def provisioning_state(aggregated: AggregatedReplicationState, *, updating: bool) -> str:
    """The version's ``provisioningState`` follows its replication."""
    if aggregated is AggregatedReplicationState.IN_PROGRESS:
        return "Updating" if updating else "Creating"
    if aggregated is AggregatedReplicationState.FAILED:
        return "Failed"
    return "Succeeded"


def plan_replicas(
    targets: Sequence[tuple[str, int]],
    disks: Sequence[tuple[int | None, BlobRef, int, str]],
    *,
    key_prefix: str,
    existing: Sequence[Replica] = (),
) -> tuple[tuple[Replica, ...], tuple[Replica, ...]]:
    """The replicas for ``targets`` [(region, count)], reusing ``existing`` ones that still fit.

    Returns (replicas to keep or create, replicas to remove). ``disks`` lists each disk image
    as (lun, source blob, size, format); replica blobs are named ``{key_prefix}-r{index}-{disk}``.
    """
    wanted: list[Replica] = []
    by_slot = {(r.region, r.index): r for r in existing}
    for region, count in targets:
        for index in range(count):
            old = by_slot.pop((region, index), None)
            if old is not None:
                wanted.append(old)
                continue
            copies = tuple(
                DiskCopy(
                    lun=lun,
                    source=src,
                    target=BlobRef(region, f"{key_prefix}-r{index}-{_disk_tag(lun)}"),
                    size=size,
                    format=fmt,
                )
                for lun, src, size, fmt in disks
            )
            wanted.append(Replica(region=region, index=index, disks=copies))
    return tuple(wanted), tuple(by_slot.values())


def _disk_tag(lun: int | None) -> str:
    return "os" if lun is None else f"lun{lun}"


def serving_replica(replicas: Sequence[Replica], region: str) -> Replica | None:
    """The replica a deployment in ``region`` reads from: the first Completed one."""
    for r in replicas:
        if r.region == region and r.state is ReplicaState.COMPLETED:
            return r
    return None


# --- the copy (I/O) --------------------------------------------------------------------------

_STREAM_CHUNK = 4 * 1024 * 1024


def copy_replica(
    blobs: BlobStore,
    replica: Replica,
    *,
    rate: int | None = None,
    report: Callable[[int], None] | None = None,
    export: Callable[[DiskCopy], None] | None = None,
) -> None:
    """Copy every disk of ``replica``; ``report(bytes_done)`` as it goes.

    A disk whose source is not a fixed VHD (a VM's clone in use) is never copied byte for
    byte: ``export(disk)`` writes its VHD (a flatten), and without it the replica fails.

    Without a rate the blob store copies (reflink when the filesystem can, a sparse copy
    otherwise). With ``rate`` (bytes/s) the copy streams over the source's page ranges in
    4 MiB pieces, sleeping to keep to the rate: slow replication on purpose, like a WAN.
    """
    base = 0
    for disk in replica.disks:
        if not blobs.exists(disk.source):
            raise FileNotFoundError(f"The source blob of disk image {_disk_tag(disk.lun)} is gone")
        if disk.format != "vhd":
            if export is None:
                raise OSError(f"Disk image {_disk_tag(disk.lun)} is a {disk.format} clone")
            export(disk)
        elif rate is None:
            blobs.copy(
                disk.source,
                disk.target,
                progress=(lambda done, _total, b=base: report(b + done)) if report else None,
            )
        else:
            _streamed_copy(blobs, disk, rate, base, report)
        base += disk.size
        if report:
            report(base)


def _streamed_copy(
    blobs: BlobStore,
    disk: DiskCopy,
    rate: int,
    base: int,
    report: Callable[[int], None] | None,
) -> None:
    """Read the whole source in chunks; all-zero chunks are skipped (holes stay holes) and
    do not count against the rate, so only real data is slowed down."""
    blobs.create(disk.target, disk.size)
    started = time.monotonic()
    moved = 0
    pos = 0
    while pos < disk.size:
        chunk = blobs.read(disk.source, pos, min(_STREAM_CHUNK, disk.size - pos))
        if not chunk:
            raise OSError(f"The source blob of disk image {_disk_tag(disk.lun)} is truncated")
        if chunk.count(0) != len(chunk):
            blobs.write_pages(disk.target, pos, chunk)
            moved += len(chunk)
            ahead = moved / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        pos += len(chunk)
        if report:
            report(base + pos)
