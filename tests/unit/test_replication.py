"""The replication state machine, the derived statuses, and the copy over a real blob store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from azimg.platform.resources import replication as rp
from azimg.platform.resources.replication import (
    AggregatedReplicationState as Agg,
)
from azimg.platform.resources.replication import (
    DiskCopy,
    Replica,
    ReplicaState,
)
from azimg.platform.resources.replication import (
    ReplicationState as RS,
)
from azimg.platform.store.filesystem import FilesystemBlobStore
from azimg.platform.store.metadata import BlobRef

MIB = 1024 * 1024


def _replica(region: str = "westus", index: int = 0, size: int = 100, **kw: object) -> Replica:
    disk = DiskCopy(None, BlobRef("eastus", "src"), BlobRef(region, f"dst{index}"), size)
    return Replica(region=region, index=index, disks=(disk,), **kw)  # type: ignore[arg-type]


def test_a_replica_goes_queued_replicating_completed() -> None:
    r = _replica()
    assert r.state is ReplicaState.QUEUED
    r = rp.start(r)
    assert (r.state, r.copied, r.attempts) == (ReplicaState.REPLICATING, 0, 1)
    r = rp.advance(r, 40)
    r = rp.advance(r, 30)  # progress never goes backwards
    assert r.copied == 40
    r = rp.advance(r, 1000)  # nor past the total
    assert r.copied == 100
    r = rp.complete(r)
    assert r.state is ReplicaState.COMPLETED
    with pytest.raises(ValueError, match="already Completed"):
        rp.start(r)


def test_failure_is_worded_like_azure() -> None:
    r = rp.fail(rp.start(_replica()), "disk full")
    assert r.state is ReplicaState.FAILED
    assert r.details == "Replication failed in this region due to 'disk full'."


@pytest.mark.parametrize(
    ("before", "after_state", "after_copied"),
    [
        (ReplicaState.QUEUED, ReplicaState.QUEUED, 0),
        (ReplicaState.REPLICATING, ReplicaState.QUEUED, 0),
        (ReplicaState.COMPLETED, ReplicaState.COMPLETED, 100),
        (ReplicaState.FAILED, ReplicaState.FAILED, 50),
    ],
)
def test_after_restart(before: ReplicaState, after_state: ReplicaState, after_copied: int) -> None:
    copied = {ReplicaState.COMPLETED: 100, ReplicaState.FAILED: 50, ReplicaState.QUEUED: 0}.get(
        before, 60
    )
    r = rp.after_restart(_replica(state=before, copied=copied))
    assert (r.state, r.copied) == (after_state, after_copied)


def _r(state: ReplicaState, copied: int, region: str = "westus", index: int = 0) -> Replica:
    return _replica(region=region, index=index, state=state, copied=copied)


Q, REP, DONE, FAIL = (
    ReplicaState.QUEUED,
    ReplicaState.REPLICATING,
    ReplicaState.COMPLETED,
    ReplicaState.FAILED,
)


@pytest.mark.parametrize(
    ("replicas", "state", "progress"),
    [
        ([], RS.UNKNOWN, 0),
        ([_r(Q, 0)], RS.REPLICATING, 0),
        ([_r(REP, 50)], RS.REPLICATING, 50),
        ([_r(REP, 100)], RS.REPLICATING, 99),  # 100 % only once committed
        ([_r(DONE, 100), _r(REP, 50, index=1)], RS.REPLICATING, 75),
        ([_r(DONE, 100), _r(DONE, 100, index=1)], RS.COMPLETED, 100),
        ([_r(DONE, 100), _r(FAIL, 20, index=1)], RS.FAILED, 60),
        ([_r(REP, 10), _r(FAIL, 0, index=1)], RS.FAILED, 5),
    ],
)
def test_region_status(replicas: list[Replica], state: RS, progress: int) -> None:
    status = rp.region_status("westus", replicas)
    assert (status.state, status.progress) == (state, progress)


def test_region_status_carries_the_failure_details() -> None:
    failed = rp.fail(rp.start(_replica()), "boom")
    assert rp.region_status("westus", [failed]).details == failed.details


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], Agg.UNKNOWN),
        ([RS.COMPLETED, RS.COMPLETED], Agg.COMPLETED),
        ([RS.COMPLETED, RS.REPLICATING], Agg.IN_PROGRESS),
        ([RS.FAILED, RS.REPLICATING], Agg.IN_PROGRESS),
        ([RS.FAILED, RS.COMPLETED], Agg.FAILED),
        ([RS.UNKNOWN, RS.COMPLETED], Agg.IN_PROGRESS),
    ],
)
def test_aggregate(states: list[RS], expected: Agg) -> None:
    statuses = [rp.RegionalReplicationStatus(f"r{i}", s, 0) for i, s in enumerate(states)]
    assert rp.aggregate(statuses) is expected


@pytest.mark.parametrize(
    ("agg", "updating", "expected"),
    [
        (Agg.IN_PROGRESS, False, "Creating"),
        (Agg.IN_PROGRESS, True, "Updating"),
        (Agg.FAILED, False, "Failed"),
        (Agg.COMPLETED, True, "Succeeded"),
    ],
)
def test_provisioning_state_follows_replication(agg: Agg, updating: bool, expected: str) -> None:
    assert rp.provisioning_state(agg, updating=updating) == expected


def test_summary_keeps_region_order_and_covers_every_region() -> None:
    replicas = [_r(DONE, 100, "eastus"), _r(REP, 50, "westus")]
    out = rp.summary(["westus", "eastus", "westeurope"], replicas)
    assert [(s.region, s.state) for s in out] == [
        ("westus", RS.REPLICATING),
        ("eastus", RS.COMPLETED),
        ("westeurope", RS.UNKNOWN),
    ]


def test_plan_replicas_one_per_region_and_index_with_every_disk() -> None:
    disks = [(None, BlobRef("eastus", "os"), 10, "vhd"), (0, BlobRef("eastus", "d0"), 5, "vhd")]
    keep, drop = rp.plan_replicas([("eastus", 1), ("westus", 2)], disks, key_prefix="v1")
    assert [(r.region, r.index) for r in keep] == [("eastus", 0), ("westus", 0), ("westus", 1)]
    assert drop == ()
    assert [d.target for d in keep[2].disks] == [
        BlobRef("westus", "v1-r1-os"),
        BlobRef("westus", "v1-r1-lun0"),
    ]
    assert keep[2].total == 15


def test_plan_replicas_keeps_what_still_fits_and_drops_the_rest() -> None:
    disks = [(None, BlobRef("eastus", "os"), 10, "vhd")]
    first, _ = rp.plan_replicas([("eastus", 1), ("westus", 2)], disks, key_prefix="v1")
    done = tuple(rp.complete(r) for r in first)
    keep, drop = rp.plan_replicas(
        [("eastus", 1), ("westus", 1), ("westeurope", 1)], disks, key_prefix="v1", existing=done
    )
    assert [(r.region, r.index, r.state) for r in keep] == [
        ("eastus", 0, DONE),
        ("westus", 0, DONE),
        ("westeurope", 0, Q),
    ]
    assert [(r.region, r.index) for r in drop] == [("westus", 1)]


def test_replica_json_round_trip() -> None:
    r = rp.fail(rp.advance(rp.start(_replica()), 7), "x")
    assert Replica.from_json(r.to_json()) == r


def test_serving_replica_is_a_completed_one_in_the_region() -> None:
    replicas = [_r(REP, 1, "westus", 0), _r(DONE, 100, "westus", 1), _r(DONE, 100, "eastus")]
    served = rp.serving_replica(replicas, "westus")
    assert served is not None and served.index == 1
    assert rp.serving_replica(replicas, "westeurope") is None


@pytest.fixture
def blobs(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs", ("eastus", "westus"))


def _source(blobs: FilesystemBlobStore, size: int) -> tuple[BlobRef, bytes]:
    ref = BlobRef("eastus", "src")
    blobs.create(ref, size)
    payload = os.urandom(MIB)
    blobs.write_pages(ref, 0, payload)
    blobs.write_pages(ref, size - MIB, payload[::-1])  # a hole in the middle
    return ref, blobs.read(ref, 0, size)


@pytest.mark.parametrize("rate", [None, 64 * MIB])
def test_copy_replica_makes_identical_bytes_and_reports_progress(
    blobs: FilesystemBlobStore, rate: int | None
) -> None:
    size = 12 * MIB
    src, expected = _source(blobs, size)
    replica = Replica(
        region="westus",
        index=0,
        disks=(DiskCopy(None, src, BlobRef("westus", "v-r0-os"), size),),
    )
    seen: list[int] = []
    rp.copy_replica(blobs, replica, rate=rate, report=seen.append)
    assert blobs.read(BlobRef("westus", "v-r0-os"), 0, size) == expected
    assert seen[-1] == size
    assert seen == sorted(seen)
    if rate is not None:
        assert len(seen) >= 3  # streamed in pieces: progress is visible on the way


def test_copy_replica_fails_when_the_source_is_gone(blobs: FilesystemBlobStore) -> None:
    replica = Replica(
        region="westus",
        index=0,
        disks=(DiskCopy(None, BlobRef("eastus", "nope"), BlobRef("westus", "x"), MIB),),
    )
    with pytest.raises(FileNotFoundError, match="is gone"):
        rp.copy_replica(blobs, replica)


def test_copy_replica_fails_when_the_region_root_is_broken(
    blobs: FilesystemBlobStore, tmp_path: Path
) -> None:
    src, _ = _source(blobs, 2 * MIB)
    region_root = tmp_path / "blobs" / "westus"
    region_root.rmdir()
    region_root.write_bytes(b"")  # the region's storage is not a directory any more
    replica = Replica(
        region="westus", index=0, disks=(DiskCopy(None, src, BlobRef("westus", "x"), 2 * MIB),)
    )
    with pytest.raises(OSError):
        rp.copy_replica(blobs, replica)
