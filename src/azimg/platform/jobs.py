"""Long-running operations: a durable row per operation, run on a small thread pool.

A resource module declares what a kind of job does as a ``JobSpec``: ``run`` does the work
and returns the operation's output (JSON-ready, or None); ``on_fail`` puts the resource into
an honest state when the work fails or cannot be resumed. Rows are written before the work
starts, so after a crash (kill -9) ``resume`` finds every operation still InProgress: a
resumable job runs again from its params (its ``run`` must be idempotent), any other is
finished Failed and its ``on_fail`` runs — never a resource left Creating with nothing behind
it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azimg.platform.errors import OperationNotFound, PlatformError
from azimg.platform.store import Operation, Store
from azimg.platform.store.sql import utc_now

log = logging.getLogger(__name__)

RunFn = Callable[[Store, Operation], Mapping[str, Any] | None]
FailFn = Callable[[Store, Operation, Mapping[str, Any]], None]


@dataclass(frozen=True)
class JobSpec:
    run: RunFn
    on_fail: FailFn | None = None
    resumable: bool = False
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
        self._guard = threading.Lock()

    def register(self, kind: str, spec: JobSpec) -> None:
        assert kind not in self.specs, f"job kind {kind} registered twice"
        self.specs[kind] = spec

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="azimg-job")
        self.resume()

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def resume(self) -> None:
        """Pick up what a previous process left InProgress (see the module docstring)."""
        for op in self.store.meta.operations_in_progress():
            spec = self.specs.get(op.kind)
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
    ) -> Operation:
        assert kind in self.specs, f"unknown job kind {kind}"
        op = Operation(
            id=str(uuid.uuid4()),
            kind=kind,
            status="InProgress",
            action=action,
            resource_id=resource_id,
            location=location,
            params=dict(params or {}),
            start_time=utc_now(),
        )
        self.store.meta.add_operation(op)
        self._schedule(op)
        return op

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
        op = Operation(
            id=str(uuid.uuid4()),
            kind=kind,
            status="InProgress",
            action=action,
            resource_id=resource_id,
            location=location,
            start_time=utc_now(),
        )
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
        try:
            output = spec.run(self.store, op)
        except Exception as err:
            if not isinstance(err, PlatformError):
                log.exception("operation %s (%s) failed", op.id, op.kind)
            self._fail(op, spec, error_body(err))
        else:
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
