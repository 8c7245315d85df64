"""The durable job runner with a real store: what a restart does with rows left InProgress."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from azimg.platform.errors import InvalidVhd
from azimg.platform.jobs import Jobs, JobSpec
from azimg.platform.settings import Settings
from azimg.platform.store import Document, Operation, Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(Settings(data_dir=tmp_path, regions=("eastus",)))
    yield s
    s.close()


def _left_behind(store: Store, kind: str, op_id: str) -> None:
    """A row exactly as a killed process leaves it: written, never finished."""
    store.meta.add_operation(
        Operation(
            id=op_id,
            kind=kind,
            status="InProgress",
            action="put",
            resource_id="/subscriptions/s/resourceGroups/r/providers/X/y/z",
            location="eastus",
            params={"n": 7},
        )
    )


def test_restart_reruns_resumable_jobs_and_fails_the_others(store: Store) -> None:
    ran: list[Mapping[str, Any]] = []
    failed: list[tuple[str, Mapping[str, Any]]] = []
    jobs = Jobs(store, workers=1)
    jobs.register(
        "again", JobSpec(run=lambda s, op: ran.append(op.params) or {"ok": True}, resumable=True)
    )
    jobs.register(
        "once",
        JobSpec(
            run=lambda s, op: None,
            on_fail=lambda s, op, err: failed.append((op.id, err)),
            resumable=False,
        ),
    )
    _left_behind(store, "again", "op-a")
    _left_behind(store, "once", "op-b")
    _left_behind(store, "gone", "op-c")  # a kind nobody registers any more
    jobs.start()
    try:
        assert jobs.wait("op-a", 30).status == "Succeeded"
        assert jobs.get("op-a").output == {"ok": True}
        assert ran == [{"n": 7}]
        b = jobs.get("op-b")
        assert b.status == "Failed" and b.error["code"] == "OperationInterrupted"
        assert [i for i, _ in failed] == ["op-b"]
        assert jobs.get("op-c").status == "Failed"
        assert store.meta.operations_in_progress() == []
    finally:
        jobs.stop()


def test_a_failing_job_records_the_arm_error_and_runs_on_fail(store: Store) -> None:
    seen = threading.Event()

    def run(s: Store, op: Operation) -> None:
        raise InvalidVhd("cookie is not conectix", target="footer")

    jobs = Jobs(store, workers=1)
    jobs.register("bad", JobSpec(run=run, on_fail=lambda s, op, err: seen.set()))
    jobs.start()
    try:
        op = jobs.submit("bad", action="post", resource_id="/subscriptions/s/x", location="eastus")
        done = jobs.wait(op.id, 30)
        assert done.status == "Failed"
        assert done.error == {
            "code": "InvalidVhd",
            "message": "cookie is not conectix",
            "target": "footer",
        }
        assert seen.is_set()
    finally:
        jobs.stop()


def test_a_dedicated_job_does_not_hold_a_pool_worker(store: Store) -> None:
    """Replication lasts as long as its bytes take; short jobs must not queue behind it."""
    release = threading.Event()
    jobs = Jobs(store, workers=1)
    jobs.register("long", JobSpec(run=lambda s, op: release.wait(60) and None, dedicated=True))
    jobs.register("short", JobSpec(run=lambda s, op: {"ok": True}))
    jobs.start()
    try:
        long_ops = [
            jobs.submit("long", action="put", resource_id=f"/x/{i}", location="eastus")
            for i in range(2)
        ]
        short = jobs.submit("short", action="put", resource_id="/x/s", location="eastus")
        # The one pool worker is free: the short job ends while both long ones still run.
        assert jobs.wait(short.id, 30).status == "Succeeded"
        assert all(jobs.get(op.id).status == "InProgress" for op in long_ops)
        release.set()
        assert all(jobs.wait(op.id, 30).status == "Succeeded" for op in long_ops)
    finally:
        release.set()
        jobs.stop()


def test_a_job_submitted_with_its_document_writes_both(store: Store) -> None:
    jobs = Jobs(store, workers=1)
    jobs.register("fill", JobSpec(run=lambda s, op: {"done": True}))
    jobs.start()
    try:
        doc = Document(
            id="/subscriptions/s/resourceGroups/r/providers/X/y/z",
            type="X/y",
            body={"state": "Creating"},
        )
        op = jobs.submit("fill", action="put", resource_id=doc.id, location="eastus", document=doc)
        assert store.meta.get(doc.id) is not None
        assert jobs.wait(op.id, 30).status == "Succeeded"
    finally:
        jobs.stop()


def test_an_expected_operation_ends_by_its_event_or_its_deadline(store: Store) -> None:
    """``expect``: an outside event completes it; without one the deadline fails it and
    ``on_fail`` runs once; an event after the deadline changes nothing."""
    failed: list[str] = []
    jobs = Jobs(store, workers=1)
    jobs.register("boot", JobSpec(run=None, on_fail=lambda s, op, err: failed.append(err["code"])))
    jobs.start()
    try:
        rid = "/subscriptions/s/resourceGroups/r/providers/X/vm/a"
        ok = jobs.expect("boot", action="put", resource_id=rid, location="eastus", timeout=60)
        assert store.meta.get_operation(ok.id).status == "InProgress"  # type: ignore[union-attr]
        assert jobs.complete(ok.id, {"ready": True}).status == "Succeeded"

        late = jobs.expect("boot", action="put", resource_id=rid, location="eastus", timeout=0)
        done = threading.Event()
        for _ in range(600):  # the timer thread fails it; poll the row, not the clock
            if store.meta.get_operation(late.id).done:  # type: ignore[union-attr]
                done.set()
                break
            done.wait(0.05)
        ended = store.meta.get_operation(late.id)
        assert ended is not None and ended.status == "Failed"
        assert ended.error is not None and ended.error["code"] == "OperationTimedOut"
        assert jobs.complete(late.id).status == "Failed"  # the deadline won; no flip-flop
        assert failed == ["OperationTimedOut"]
    finally:
        jobs.stop()


def test_an_expected_operation_outlives_a_restart_until_its_deadline(store: Store) -> None:
    first = Jobs(store, workers=1)
    first.register("boot", JobSpec(run=None, resumable=True))
    op = first.expect(
        "boot", action="put", resource_id="/subscriptions/s/x", location="eastus", timeout=3600
    )
    first.stop()  # the process goes away without ending it
    second = Jobs(store, workers=1)
    second.register("boot", JobSpec(run=None, resumable=True))
    second.start()
    try:
        assert store.meta.get_operation(op.id).status == "InProgress"  # type: ignore[union-attr]
        assert second.complete(op.id).status == "Succeeded"
    finally:
        second.stop()


def test_an_awaited_job_starts_its_work_and_waits_for_its_event(store: Store) -> None:
    """``awaited``: ``expect`` runs the kind's ``run`` (a VM boot) without ending the
    operation; the outside event ends it; a ``run`` that raises fails it and ``on_fail`` runs."""
    started = threading.Event()
    failed: list[str] = []

    def boot(s: Store, op: Operation) -> None:
        if op.params.get("broken"):
            raise InvalidVhd("no bootable disk")
        started.set()

    jobs = Jobs(store, workers=1)
    on_fail = lambda s, op, err: failed.append(err["code"])  # noqa: E731
    jobs.register("boot", JobSpec(run=boot, awaited=True, on_fail=on_fail))
    jobs.start()
    try:
        ok = jobs.expect("boot", action="put", resource_id="/subscriptions/s/a",
                         location="eastus", timeout=3600)  # fmt: skip
        assert started.wait(30)
        assert jobs.wait(ok.id, 30).status == "InProgress"  # run returned; still waiting
        assert jobs.complete(ok.id).status == "Succeeded"
        bad = jobs.expect("boot", action="put", resource_id="/subscriptions/s/b",
                          location="eastus", timeout=3600, params={"broken": True})  # fmt: skip
        ended = jobs.wait(bad.id, 30)
        assert (ended.status, ended.error and ended.error["code"]) == ("Failed", "InvalidVhd")
        assert failed == ["InvalidVhd"]
    finally:
        jobs.stop()
