"""The platform's pure pieces and stores, table-driven: page ranges, ARM path canonicalisation,
resource-type parsing, the SQL metadata store's ETag conditions, the filesystem blob store."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from azimg.platform.arm.routing import canonical_path
from azimg.platform.errors import BlobNotFound, PreconditionFailed
from azimg.platform.ids import resource_type
from azimg.platform.store import BlobRef, BlobStore, Document, Operation, Store
from azimg.platform.store import page_ranges as pr
from azimg.platform.store.filesystem import FilesystemBlobStore
from azimg.platform.store.sql import SqlMetadataStore, parent_key


@pytest.mark.parametrize(
    ("ranges", "start", "end", "expected"),
    [
        ([], 0, 512, [(0, 512)]),
        ([(0, 512)], 512, 1024, [(0, 1024)]),  # touching ranges fuse
        ([(0, 512)], 1024, 1536, [(0, 512), (1024, 1536)]),
        ([(1024, 1536)], 0, 512, [(0, 512), (1024, 1536)]),  # inserted before
        ([(0, 512), (1024, 1536)], 256, 1280, [(0, 1536)]),  # bridges two
        ([(0, 4096)], 512, 1024, [(0, 4096)]),  # inside
        ([(0, 512), (2048, 2560), (4096, 4608)], 1024, 8192, [(0, 512), (1024, 8192)]),
    ],
)
def test_page_ranges_add(
    ranges: list[pr.Range], start: int, end: int, expected: list[pr.Range]
) -> None:
    assert pr.add(ranges, start, end) == expected


@pytest.mark.parametrize(
    ("ranges", "start", "end", "expected"),
    [
        ([(0, 4096)], 0, 4096, []),
        ([(0, 4096)], 1024, 2048, [(0, 1024), (2048, 4096)]),  # split in the middle
        ([(0, 1024), (2048, 4096)], 512, 3072, [(0, 512), (3072, 4096)]),
        ([(0, 512)], 1024, 2048, [(0, 512)]),  # nothing there
    ],
)
def test_page_ranges_remove(
    ranges: list[pr.Range], start: int, end: int, expected: list[pr.Range]
) -> None:
    assert pr.remove(ranges, start, end) == expected


def test_page_ranges_within() -> None:
    assert pr.within([(0, 1024), (2048, 4096)], 512, 3072) == [(512, 1024), (2048, 3072)]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/Subscriptions/S/resourceGroups/MyRG/providers/Microsoft.Compute/Disks/MyDisk",
            "/subscriptions/S/resourcegroups/MyRG/providers/microsoft.compute/disks/MyDisk",
        ),
        (
            "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Compute/disks/d/beginGetAccess",
            "/subscriptions/S/resourcegroups/rg/providers/microsoft.compute/disks/d/begingetaccess",
        ),
        (
            "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Compute/galleries/G/images/I"
            "/versions/1.0.0",
            "/subscriptions/S/resourcegroups/rg/providers/microsoft.compute/galleries/G/images/I"
            "/versions/1.0.0",
        ),
        (
            "/subscriptions/S/providers/Microsoft.Compute/locations/eastUS/DiskOperations/X",
            "/subscriptions/S/providers/microsoft.compute/locations/eastUS/diskoperations/X",
        ),
        ("/subscriptions/S/resourcegroups/", "/subscriptions/S/resourcegroups"),
        ("/blob/Container/abcd", "/blob/Container/abcd"),  # not ARM: untouched
        ("/TENANT/oauth2/v2.0/token", "/TENANT/oauth2/v2.0/token"),
    ],
)
def test_canonical_path(path: str, expected: str) -> None:
    assert canonical_path(path) == expected


@pytest.mark.parametrize(
    ("rid", "expected"),
    [
        (
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/disks/d",
            "microsoft.compute/disks",
        ),
        (
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/i",
            "microsoft.compute/galleries/images",
        ),
        ("/subscriptions/s/resourceGroups/r", "microsoft.resources/resourcegroups"),
    ],
)
def test_resource_type(rid: str, expected: str) -> None:
    assert resource_type(rid) == expected


def test_parent_key() -> None:
    rid = "/subscriptions/S/resourceGroups/R/providers/Microsoft.Compute/galleries/G/images/I"
    assert (
        parent_key(rid)
        == "/subscriptions/s/resourcegroups/r/providers/microsoft.compute/galleries/g"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlMetadataStore]:
    """The metadata store on each backend: the same tests hold for both."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = SqlMetadataStore(url)
    yield store
    store.close()


def test_operations_round_trip(meta: SqlMetadataStore) -> None:
    from azimg.platform.store import Operation

    op = Operation(
        id="op1",
        kind="k",
        status="InProgress",
        action="put",
        resource_id="/subscriptions/s/x",
        location="eastus",
        params={"n": 1},
        start_time="2026-01-01T00:00:00Z",
    )
    meta.add_operation(op)
    assert [o.id for o in meta.operations_in_progress()] == ["op1"]
    done = meta.finish_operation("op1", status="Failed", error={"code": "X", "message": "m"})
    assert done.done and done.error == {"code": "X", "message": "m"} and done.params == {"n": 1}
    assert meta.operations_in_progress() == []


def test_documents_are_keyed_case_insensitively(meta: SqlMetadataStore) -> None:
    doc = meta.put(Document(id="/subscriptions/s/resourceGroups/Rg/x/Y", type="t", body={"a": 1}))
    got = meta.get("/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/X/Y")
    assert got is not None and got.id == "/subscriptions/s/resourceGroups/Rg/x/Y"
    assert got.body == {"a": 1} and got.etag == doc.etag


def test_etag_conditions(meta: SqlMetadataStore) -> None:
    first = meta.put(Document(id="/a/b", type="t", body={"v": 1}))
    with pytest.raises(PreconditionFailed):
        meta.put(Document(id="/a/b", type="t", body={"v": 2}), if_none_match=True)
    with pytest.raises(PreconditionFailed):
        meta.put(Document(id="/a/b", type="t", body={"v": 2}), if_match="stale")
    second = meta.put(Document(id="/a/b", type="t", body={"v": 2}), if_match=first.etag)
    assert second.etag != first.etag
    assert meta.delete("/a/b", if_match=first.etag) is False
    assert meta.delete("/a/b", if_match=second.etag) is True
    assert meta.get("/a/b") is None


def test_document_and_operation_are_written_together_or_not_at_all(
    meta: SqlMetadataStore,
) -> None:
    """``put(..., operation=)``: one transaction. A failed condition writes neither."""
    op = Operation.new("k", action="put", resource_id="/a/c", location="eastus")
    meta.put(Document(id="/a/c", type="t", body={"v": 1}), operation=op)
    assert meta.get("/a/c") is not None and meta.get_operation(op.id) is not None
    again = Operation.new("k", action="put", resource_id="/a/c", location="eastus")
    with pytest.raises(PreconditionFailed):
        meta.put(Document(id="/a/c", type="t", body={"v": 2}), if_none_match=True, operation=again)
    assert meta.get_operation(again.id) is None
    # the operation row fails (same id again): the document is not written either
    with pytest.raises(Exception):  # noqa: B017 - the backend's IntegrityError
        meta.put(Document(id="/a/c", type="t", body={"v": 3}), operation=op)
    current = meta.get("/a/c")
    assert current is not None and current.body == {"v": 1}


def test_the_first_ending_of_an_operation_wins(meta: SqlMetadataStore) -> None:
    op = Operation.new("k", action="put", resource_id="/a/d", location="eastus", deadline="x")
    meta.add_operation(op)
    assert meta.get_operation(op.id).deadline == "x"  # type: ignore[union-attr]
    meta.finish_operation(op.id, status="Succeeded", output={"n": 1})
    late = meta.finish_operation(op.id, status="Failed", error={"code": "Late"})
    assert late.status == "Succeeded" and late.output == {"n": 1} and late.error is None


def test_store_update_is_compare_and_set(meta: SqlMetadataStore, tmp_path: Path) -> None:
    """Concurrent read-modify-writes through ``Store.update`` lose nothing."""
    store = Store(
        meta=meta, blobs=FilesystemBlobStore(tmp_path / "b", ("eastus",)), regions=("eastus",)
    )
    meta.put(Document(id="/a/e", type="t", body={"n": 0, "seen": []}))

    def bump(i: int) -> None:
        def change(doc: Document) -> Document:
            body = {"n": doc.body["n"] + 1, "seen": [*doc.body["seen"], i]}
            return Document(id=doc.id, type=doc.type, body=body)

        assert store.update("/a/e", change) is not None

    threads = [threading.Thread(target=bump, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = meta.get("/a/e")
    assert (
        final is not None and final.body["n"] == 8 and sorted(final.body["seen"]) == list(range(8))
    )
    assert store.update("/a/e", lambda doc: None) is None  # declined: nothing written
    assert meta.get("/a/e").etag == final.etag  # type: ignore[union-attr]
    assert store.update("/a/none", lambda doc: doc) is None  # gone


def test_list_by_prefix_type_and_parent(meta: SqlMetadataStore) -> None:
    base = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g"
    meta.put(Document(id=base, type="g", body={}))
    meta.put(Document(id=base + "/images/i1", type="i", body={}))
    meta.put(Document(id=base + "/images/i_2", type="i", body={}))
    meta.put(Document(id=base + "x", type="g", body={}))  # a sibling sharing the prefix text
    assert [d.id for d in meta.list(type="i", prefix=base + "/")] == [
        base + "/images/i1",
        base + "/images/i_2",
    ]
    assert len(meta.list(parent=base)) == 2
    assert len(meta.list(type="g", prefix="/SUBSCRIPTIONS/S/")) == 2


@pytest.fixture(params=["filesystem", "azurite"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """The blob store on each backend: files, and the Blob API (Azurite)."""
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path, ("eastus", "westus"))
    from azimg.platform.store.azure_blob import AzureBlobStore
    from tests.api.conftest import AZURITE_KEY

    url = request.getfixturevalue("azurite_url")
    return AzureBlobStore(
        url, {"account_name": "devstoreaccount1", "account_key": AZURITE_KEY}, ("eastus", "westus")
    )


def test_blob_store_pages_copy_and_holes(blobs: BlobStore, tmp_path: Path) -> None:
    src, dst = BlobRef("eastus", uuid.uuid4().hex), BlobRef("westus", uuid.uuid4().hex)
    blobs.create(src, 64 * 1024 * 1024)
    blobs.write_pages(src, 8 * 1024 * 1024, b"\x05" * 4096)
    blobs.write_pages(src, 8 * 1024 * 1024 + 4096, b"\x06" * 512)
    assert blobs.page_ranges(src) == [(8 * 1024 * 1024, 8 * 1024 * 1024 + 4608)]
    blobs.copy(src, dst)
    assert blobs.size(dst) == 64 * 1024 * 1024
    assert blobs.read(dst, 8 * 1024 * 1024, 4608) == b"\x05" * 4096 + b"\x06" * 512
    assert blobs.page_ranges(dst) == blobs.page_ranges(src)
    path = blobs.local_path(dst)
    if path is not None:  # the copy stays sparse: far less than its size is allocated
        assert os.stat(path).st_blocks * 512 < 4 * 1024 * 1024
    blobs.clear_pages(dst, 8 * 1024 * 1024, 8 * 1024 * 1024 + 512)
    assert blobs.read(dst, 8 * 1024 * 1024, 512) == bytes(512)
    assert blobs.page_ranges(dst) == [(8 * 1024 * 1024 + 512, 8 * 1024 * 1024 + 4608)]
    blobs.resize(dst, 128 * 1024 * 1024)
    assert blobs.size(dst) == 128 * 1024 * 1024
    assert blobs.read(dst, 100 * 1024 * 1024, 512) == bytes(512)
    blobs.delete(dst)
    assert not blobs.exists(dst)
    with pytest.raises(BlobNotFound):
        blobs.size(dst)


@pytest.mark.parametrize(
    ("headers", "current", "ok"),
    [
        ({}, None, True),
        ({}, "e1", True),
        ({"if-none-match": "*"}, None, True),
        ({"if-none-match": "*"}, "e1", False),
        ({"if-match": "*"}, "e1", True),
        ({"if-match": "*"}, None, False),
        ({"if-match": '"e1"'}, "e1", True),
        ({"if-match": 'W/"e1"'}, "e1", True),
        ({"if-match": '"e0"'}, "e1", False),
        ({"if-match": '"e1"'}, None, False),
    ],
)
def test_etag_conditions_table(headers: dict[str, str], current: str | None, ok: bool) -> None:
    from azimg.platform.arm import conditions

    parsed = conditions.from_headers(headers)
    if ok:
        conditions.check(parsed, current)
    else:
        with pytest.raises(PreconditionFailed):
            conditions.check(parsed, current)


def test_store_if_match_star_means_exists(meta: SqlMetadataStore) -> None:
    with pytest.raises(PreconditionFailed):
        meta.put(Document(id="/x/y", type="t", body={}), if_match="*")
    meta.put(Document(id="/x/y", type="t", body={}))
    meta.put(Document(id="/x/y", type="t", body={"v": 2}), if_match="*")


def test_many_reader_threads_do_not_exhaust_the_pool(meta: SqlMetadataStore) -> None:
    """More threads than SQLAlchemy's pool size (5 + 10) each read and keep reading."""
    from concurrent.futures import ThreadPoolExecutor

    meta.put(Document(id="/r/1", type="t", body={"v": 1}))
    barrier = threading.Barrier(24)

    def read(_: int) -> int:
        barrier.wait(30)  # all 24 threads hold their connection at the same time
        got = meta.get("/r/1")
        assert got is not None
        return int(got.body["v"])

    with ThreadPoolExecutor(24) as pool:
        assert sum(pool.map(read, range(24))) == 24


def test_bytes_written_behind_the_store_get_their_page_ranges(tmp_path: Path) -> None:
    """A VM's clone flattened by qemu-img lands in ``local_path`` without ``write_pages``:
    once recorded, Get Page Ranges lists its data (it listed nothing, so clients that read a
    disk by its ranges downloaded zeros)."""
    blobs = FilesystemBlobStore(tmp_path, ("eastus",))
    ref = BlobRef("eastus", uuid.uuid4().hex)
    blobs.create(ref, 64 * 1024 * 1024)
    path = blobs.local_path(ref)
    assert path is not None
    with open(path, "r+b") as fh:  # as qemu-img writes it: data, a hole, data at the end
        fh.seek(1024 * 1024)
        fh.write(b"\x07" * 8192)
        fh.seek(64 * 1024 * 1024 - 512)
        fh.write(b"\x09" * 512)
    assert blobs.page_ranges(ref) == []
    blobs.record_local_write(ref)
    ranges = blobs.page_ranges(ref)
    covered = b"".join(blobs.read(ref, s, e - s) for s, e in ranges)
    assert covered.count(b"\x07") == 8192 and covered.count(b"\x09") == 512
    assert sum(e - s for s, e in ranges) < 1024 * 1024  # the hole stays out
    assert all(s % 512 == 0 and e % 512 == 0 for s, e in ranges)
