"""Long-running operations: a durable row per operation, run on a small thread pool.

A resource module declares what a kind of job does as a ``JobSpec``: ``run`` does the work
and returns the operation's output (JSON-ready, or None); ``on_fail`` puts the resource into
an honest state when the work fails or cannot be resumed. Rows are written before the work
starts, so after a crash (kill -9) ``resume`` finds every operation still InProgress: a
resumable job runs again from its params (its ``run`` must be idempotent), any other is
finished Failed and its ``on_fail`` runs — never a resource left Creating with nothing behind
it.

Domain operations submit their own jobs (``submit(..., document=doc)``): the resource
document and its operation row are written in ONE transaction, so a crash can never leave a
resource Creating with no operation behind it. An operation finished by an outside event (a
VM reporting Ready) is started with ``expect`` and ended by ``complete`` / ``fail``, or by
its deadline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azimg.platform.errors import OperationNotFound, PlatformError
from azimg.platform.store import Document, Operation, Store

log = logging.getLogger(__name__)

RunFn = Callable[[Store, Operation], Mapping[str, Any] | None]
FailFn = Callable[[Store, Operation, Mapping[str, Any]], None]

DEADLINE_ERROR = {
    "code": "OperationTimedOut",
    "message": "The operation did not complete within its allowed time.",
}


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


@dataclass(frozen=True)
class JobSpec:
    """``run`` is None for a kind finished by an outside event (``Jobs.expect``); then
    ``resumable`` means "after a restart, keep waiting until the deadline". An ``awaited``
    kind has both: ``expect`` schedules ``run`` to start the work (a VM's boot), and its
    return does not end the operation (the outside event does; an exception fails it)."""

    run: RunFn | None
    on_fail: FailFn | None = None
    resumable: bool = False
    awaited: bool = False
    # A job that lasts as long as its bytes take (replication) gets a thread of its own, so it
    # never holds one of the pool's few workers while short jobs (a snapshot, a revoke) wait.
    dedicated: bool = False


def error_body(err: BaseException) -> dict[str, Any]:
    if isinstance(err, PlatformError):
        body: dict[str, Any] = {"code": err.code, "message": err.message}
        if err.target:
            body["target"] = err.target
        return body
    return {"code": "InternalServerError", "message": "An internal error occurred."}


class Jobs:
    def __init__(self, store: Store, *, workers: int = 2) -> None:
        self.store = store
        self.workers = workers
        self.specs: dict[str, JobSpec] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._done: dict[str, threading.Event] = {}
        self._timers: dict[str, threading.Timer] = {}
        self._guard = threading.Lock()

    def register(self, kind: str, spec: JobSpec) -> None:
        assert kind not in self.specs, f"job kind {kind} registered twice"
        self.specs[kind] = spec

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="azimg-job")
        self.resume()

    def stop(self) -> None:
        with self._guard:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def resume(self) -> None:
        """Pick up what a previous process left InProgress (see the module docstring)."""
        for op in self.store.meta.operations_in_progress():
            spec = self.specs.get(op.kind)
            if spec is not None and spec.resumable and (spec.run is None or spec.awaited):
                self._arm_deadline(op)
                continue
            if spec is not None and spec.resumable:
                log.warning("resuming operation %s (%s) after a restart", op.id, op.kind)
                self._schedule(op)
                continue
            error = {
                "code": "OperationInterrupted",
                "message": "The operation was interrupted by a platform restart and cannot "
                "be resumed; retry it.",
            }
            self._fail(op, spec, error)

    def submit(
        self,
        kind: str,
        *,
        action: str,
        resource_id: str,
        location: str,
        params: Mapping[str, Any] | None = None,
        document: Document | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> Operation:
        """Start a job. With ``document``, the document (under the ETag conditions) and the
        operation row are written in one transaction before the work is scheduled."""
        spec = self.specs.get(kind)
        assert spec is not None and spec.run is not None, f"unknown job kind {kind}"
        assert not spec.awaited, f"{kind} is awaited: use expect"
        op = Operation.new(
            kind, action=action, resource_id=resource_id, location=location, params=params
        )
        self._write(op, document, if_match=if_match, if_none_match=if_none_match)
        self._schedule(op)
        return op

    def expect(
        self,
        kind: str,
        *,
        action: str,
        resource_id: str,
        location: str,
        timeout: float,
        params: Mapping[str, Any] | None = None,
        document: Document | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> Operation:
        """An operation an outside event finishes (``complete`` / ``fail``); if none has
        after ``timeout`` seconds it fails with ``OperationTimedOut`` and ``on_fail`` runs.
        ``document`` is written with it in one transaction, as for ``submit``."""
        spec = self.specs.get(kind)
        assert spec is not None and (spec.run is None or spec.awaited), f"{kind} is not awaited"
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        op = Operation.new(
            kind,
            action=action,
            resource_id=resource_id,
            location=location,
            params=params,
            deadline=deadline.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
        )
        self._write(op, document, if_match=if_match, if_none_match=if_none_match)
        self._arm_deadline(op)
        if spec.run is not None:
            self._schedule(op)
        return op

    def complete(self, op_id: str, output: Mapping[str, Any] | None = None) -> Operation:
        """The outside event of an ``expect`` operation: it Succeeded (no-op once ended)."""
        self._cancel_deadline(op_id)
        return self.store.meta.finish_operation(op_id, status="Succeeded", output=output)

    def fail(self, op_id: str, error: Mapping[str, Any]) -> Operation:
        """The outside event of an ``expect`` operation: it Failed (``on_fail`` does not run:
        the caller reporting the failure has put the resource in its state already)."""
        self._cancel_deadline(op_id)
        return self.store.meta.finish_operation(op_id, status="Failed", error=error)

    def _write(
        self,
        op: Operation,
        document: Document | None,
        *,
        if_match: str | None,
        if_none_match: bool,
    ) -> None:
        if document is None:
            self.store.meta.add_operation(op)
        else:
            self.store.meta.put(
                document, if_match=if_match, if_none_match=if_none_match, operation=op
            )

    def _arm_deadline(self, op: Operation) -> None:
        assert op.deadline is not None, op.id
        delay = (_parse_time(op.deadline) - datetime.now(UTC)).total_seconds()
        timer = threading.Timer(max(delay, 0.0), self._expire, args=(op.id,))
        timer.daemon = True
        with self._guard:
            self._timers[op.id] = timer
        timer.start()

    def _cancel_deadline(self, op_id: str) -> None:
        with self._guard:
            timer = self._timers.pop(op_id, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, op_id: str) -> None:
        with self._guard:
            self._timers.pop(op_id, None)
        # End the operation first: only if the deadline won the race against ``complete`` /
        # ``fail`` does ``on_fail`` run (it must still check the resource's state with CAS).
        ended = self.store.meta.finish_operation(op_id, status="Failed", error=DEADLINE_ERROR)
        if ended.error != DEADLINE_ERROR:
            return
        spec = self.specs.get(ended.kind)
        if spec is not None and spec.on_fail is not None:
            try:
                spec.on_fail(self.store, ended, DEADLINE_ERROR)
            except Exception:
                log.exception("on_fail of operation %s (%s) failed", ended.id, ended.kind)

    def record_done(
        self,
        kind: str,
        *,
        action: str,
        resource_id: str,
        location: str,
        output: Mapping[str, Any] | None = None,
    ) -> Operation:
        """An operation whose work already happened in the request (it still gets the LRO
        shape clients poll): written InProgress, then finished Succeeded."""
        op = Operation.new(kind, action=action, resource_id=resource_id, location=location)
        self.store.meta.add_operation(op)
        return self.store.meta.finish_operation(op.id, status="Succeeded", output=output)

    def get(self, op_id: str) -> Operation:
        op = self.store.meta.get_operation(op_id)
        if op is None:
            raise OperationNotFound(f"The operation '{op_id}' was not found.")
        return op

    def wait(self, op_id: str, timeout: float) -> Operation:
        """The operation after it ends or ``timeout`` seconds pass (for in-process callers)."""
        with self._guard:
            event = self._done.get(op_id)
        if event is not None:
            event.wait(timeout)
        return self.get(op_id)

    def _schedule(self, op: Operation) -> None:
        assert self._pool is not None, "Jobs.start() was not called"
        with self._guard:
            self._done[op.id] = threading.Event()
        if self.specs[op.kind].dedicated:
            threading.Thread(
                target=self._run, args=(op,), name=f"azimg-job-{op.kind}", daemon=True
            ).start()
        else:
            self._pool.submit(self._run, op)

    def _run(self, op: Operation) -> None:
        spec = self.specs[op.kind]
        assert spec.run is not None, op.kind
        try:
            output = spec.run(self.store, op)
        except Exception as err:
            if not isinstance(err, PlatformError):
                log.exception("operation %s (%s) failed", op.id, op.kind)
            self._cancel_deadline(op.id)
            self._fail(op, spec, error_body(err))
        else:
            if not spec.awaited:
                self.store.meta.finish_operation(op.id, status="Succeeded", output=output)
        finally:
            with self._guard:
                event = self._done.pop(op.id, None)
            if event is not None:
                event.set()

    def _fail(self, op: Operation, spec: JobSpec | None, error: Mapping[str, Any]) -> None:
        if spec is not None and spec.on_fail is not None:
            try:
                spec.on_fail(self.store, op, error)
            except Exception:
                log.exception("on_fail of operation %s (%s) failed", op.id, op.kind)
        self.store.meta.finish_operation(op.id, status="Failed", error=error)
