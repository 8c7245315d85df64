"""Metadata in SQL through SQLAlchemy Core: SQLite by default, PostgreSQL by URL.

One table of documents (primary key = lower-cased ARM id) and one of operations. Lists by
prefix use a key range on SQLite (binary collation) and an escaped LIKE elsewhere, so ids
containing ``_`` or ``%`` match only themselves.
SQLite allows one writer at a time anyway; a process lock around read-check-write keeps ETag
conditions exact without relying on SQLite's deferred-transaction upgrade behaviour.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from azimg.platform.errors import PreconditionFailed
from azimg.platform.ids import utc_now
from azimg.platform.store.metadata import BlobRef, Document, Operation

_meta = sa.MetaData()

documents = sa.Table(
    "documents",
    _meta,
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("id", sa.String(1024), nullable=False),
    sa.Column("type", sa.String(256), nullable=False, index=True),
    sa.Column("parent", sa.String(1024), nullable=False, index=True),
    sa.Column("location", sa.String(64)),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("blobs", sa.Text, nullable=False, default="[]"),
    sa.Column("updated", sa.String(40), nullable=False),
)

operations = sa.Table(
    "operations",
    _meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(128), nullable=False),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("location", sa.String(64), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("output", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("start_time", sa.String(40), nullable=False),
    sa.Column("end_time", sa.String(40)),
    sa.Column("deadline", sa.String(40)),
)


def parent_key(resource_id: str) -> str:
    """The id one ``/type/name`` pair up, lower-cased: a nested resource's parent."""
    return resource_id.lower().rstrip("/").rsplit("/", 2)[0]


def _create_private(database: str | None) -> None:
    """Make a new SQLite file 0600 before SQLite does: it holds secrets (client secret, SAS
    key), and SQLite gives its WAL/SHM files the database file's mode."""
    if database and database != ":memory:" and not database.startswith("file:"):
        # Only when it is new: open+close of a database this process (the server, via
        # ``azimg credentials`` then ``open_store``) already has open drops its SQLite POSIX
        # locks, and another process's writes then corrupt its view ("database disk image
        # is malformed", or stale reads of what ``azimg tenant create`` wrote).
        with contextlib.suppress(FileExistsError):
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class SqlMetadataStore:
    def __init__(self, url: str) -> None:
        is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine = sa.create_engine(url, **kwargs)
        if is_sqlite:
            _create_private(self.engine.url.database)

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

        _meta.create_all(self.engine)
        self._migrate()
        self._write_lock = threading.Lock()
        self._is_sqlite = is_sqlite
        self._local = threading.local()

    def _migrate(self) -> None:
        """Columns added since a data dir was created (``create_all`` adds only tables)."""
        have = {c["name"] for c in sa.inspect(self.engine).get_columns("operations")}
        if "deadline" not in have:
            with self.engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE operations ADD COLUMN deadline VARCHAR(40)"))

    # --- documents ---------------------------------------------------------------------------

    @staticmethod
    def _doc(row: Any) -> Document:
        return Document(
            id=row.id,
            type=row.type,
            body=json.loads(row.body),
            etag=row.etag,
            location=row.location,
            blobs=tuple(BlobRef.from_json(b) for b in json.loads(row.blobs)),
        )

    def get(self, resource_id: str) -> Document | None:
        if self._is_sqlite:
            return self._get_sqlite(resource_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(documents).where(documents.c.key == resource_id.lower())
            ).first()
        return self._doc(row) if row else None

    _GET_SQL = "SELECT id, type, body, etag, location, blobs FROM documents WHERE key = ?"

    def _get_sqlite(self, resource_id: str) -> Document | None:
        """The hot path of every ARM GET: one indexed read on a per-thread DB-API connection
        (SQLAlchemy's pool checkout and statement building cost more than the read)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # A connection of this thread's own, outside SQLAlchemy's pool: holding a pooled
            # one per thread would exhaust the pool once more threads than its size read.
            conn = sqlite3.connect(
                self.engine.url.database or ":memory:", check_same_thread=False, timeout=30
            )
            self._local.conn = conn
        row = conn.execute(self._GET_SQL, (resource_id.lower(),)).fetchone()
        if row is None:
            return None
        rid, rtype, body, etag, location, blobs = row
        return Document(
            id=rid,
            type=rtype,
            body=json.loads(body),
            etag=etag,
            location=location,
            blobs=tuple(BlobRef.from_json(b) for b in json.loads(blobs)),
        )

    def put(
        self,
        doc: Document,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        operation: Operation | None = None,
    ) -> Document:
        key = doc.key
        etag = uuid.uuid4().hex
        values = {
            "id": doc.id,
            "type": doc.type,
            "parent": parent_key(doc.id),
            "location": doc.location,
            "etag": etag,
            "body": _dumps(doc.body),
            "blobs": _dumps([b.to_json() for b in doc.blobs]),
            "updated": utc_now(),
        }
        with self._write_lock, self.engine.begin() as conn:
            current = conn.execute(
                sa.select(documents.c.etag).where(documents.c.key == key).with_for_update()
            ).first()
            if if_none_match and current is not None:
                raise PreconditionFailed(f"The resource '{doc.id}' already exists.")
            wanted = if_match.strip('"') if if_match is not None else None
            if wanted is not None and (current is None or wanted not in ("*", current.etag)):
                raise PreconditionFailed(
                    f"The condition If-Match '{if_match}' does not match resource '{doc.id}'."
                )
            if current is None:
                conn.execute(documents.insert().values(key=key, **values))
            else:
                conn.execute(documents.update().where(documents.c.key == key).values(**values))
            if operation is not None:
                conn.execute(operations.insert().values(**self._op_row(operation)))
        return Document(
            id=doc.id,
            type=doc.type,
            body=doc.body,
            etag=etag,
            location=doc.location,
            blobs=doc.blobs,
        )

    def delete(self, resource_id: str, *, if_match: str | None = None) -> bool:
        query = documents.delete().where(documents.c.key == resource_id.lower())
        if if_match is not None:
            query = query.where(documents.c.etag == if_match.strip('"'))
        with self._write_lock, self.engine.begin() as conn:
            return conn.execute(query).rowcount > 0

    def list(
        self,
        *,
        type: str | None = None,
        prefix: str | None = None,
        parent: str | None = None,
    ) -> list[Document]:
        query = sa.select(documents)
        if type is not None:
            query = query.where(documents.c.type == type)
        if prefix is not None:
            low = prefix.lower()
            if self._is_sqlite:  # binary collation: a key range uses the primary key index
                query = query.where(documents.c.key >= low, documents.c.key < low + "\U0010ffff")
            else:  # other collations may not order by code point: LIKE 'prefix%' (escaped)
                query = query.where(documents.c.key.startswith(low, autoescape=True))
        if parent is not None:
            query = query.where(documents.c.parent == parent.lower().rstrip("/"))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(documents.c.key)).all()
        return [self._doc(r) for r in rows]

    # --- operations --------------------------------------------------------------------------

    @staticmethod
    def _op(row: Any) -> Operation:
        return Operation(
            id=row.id,
            kind=row.kind,
            status=row.status,
            action=row.action,
            resource_id=row.resource_id,
            location=row.location,
            params=json.loads(row.params),
            output=json.loads(row.output) if row.output else None,
            error=json.loads(row.error) if row.error else None,
            start_time=row.start_time,
            end_time=row.end_time,
            deadline=row.deadline,
        )

    @staticmethod
    def _op_row(op: Operation) -> dict[str, Any]:
        return {
            "id": op.id,
            "kind": op.kind,
            "status": op.status,
            "action": op.action,
            "resource_id": op.resource_id,
            "location": op.location,
            "params": _dumps(dict(op.params)),
            "output": None,
            "error": None,
            "start_time": op.start_time or utc_now(),
            "end_time": None,
            "deadline": op.deadline,
        }

    def add_operation(self, op: Operation) -> None:
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(operations.insert().values(**self._op_row(op)))

    def get_operation(self, op_id: str) -> Operation | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(operations).where(operations.c.id == op_id)).first()
        return self._op(row) if row else None

    def finish_operation(
        self,
        op_id: str,
        *,
        status: str,
        output: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> Operation:
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                operations.update()
                .where(operations.c.id == op_id, operations.c.status == "InProgress")
                .values(
                    status=status,
                    output=_dumps(dict(output)) if output is not None else None,
                    error=_dumps(dict(error)) if error is not None else None,
                    end_time=utc_now(),
                )
            )
        op = self.get_operation(op_id)
        assert op is not None, op_id
        return op

    def operations_in_progress(self) -> Sequence[Operation]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(operations)
                .where(operations.c.status == "InProgress")
                .order_by(operations.c.start_time)
            ).all()
        return [self._op(r) for r in rows]

    def close(self) -> None:
        self.engine.dispose()
