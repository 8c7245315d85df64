"""Blobs in the Azure Blob API (Azure Storage, or Azurite): one container per region.

The same interface as the filesystem store, through azure-storage-blob's page-blob calls, so
the platform can keep its bytes in a storage account when it scales past one machine. Design
notes: page writes go out in ≤ 4 MiB Put Page calls (the service limit); copies stream the
source's page ranges into a new page blob, so holes stay holes; the Blob API has no rename,
so a copy interrupted by a crash leaves a partial blob under the final key — the copy job
that owns it runs again on restart and overwrites it (``create_page_blob`` replaces).
``local_path`` is None: QEMU cannot open these blobs directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azimg.platform.errors import BlobNotFound
from azimg.platform.store import page_ranges
from azimg.platform.store.metadata import BlobRef
from azimg.platform.store.page_ranges import Range

_PUT_PAGE_MAX = 4 * 1024 * 1024


def container_of(region: str) -> str:
    return f"azimg-{region}"


class AzureBlobStore:
    def __init__(self, account_url: str, credential: Any, regions: tuple[str, ...]) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        self.service = BlobServiceClient(account_url, credential=credential)
        self.regions = regions
        for region in regions:
            with contextlib.suppress(ResourceExistsError):
                self.service.create_container(container_of(region))

    def _client(self, ref: BlobRef) -> Any:
        if ref.region not in self.regions:
            raise BlobNotFound(f"The blob {ref.region}/{ref.key} does not exist.")
        return self.service.get_blob_client(container_of(ref.region), ref.key)

    def _missing(self, ref: BlobRef) -> BlobNotFound:
        return BlobNotFound(f"The blob {ref.region}/{ref.key} does not exist.")

    def create(self, ref: BlobRef, size: int) -> None:
        self._client(ref).create_page_blob(size)

    def exists(self, ref: BlobRef) -> bool:
        return bool(self._client(ref).exists())

    def size(self, ref: BlobRef) -> int:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return int(self._client(ref).get_blob_properties().size)
        except ResourceNotFoundError:
            raise self._missing(ref) from None

    def resize(self, ref: BlobRef, size: int) -> None:
        self._client(ref).resize_blob(size)

    def write_pages(self, ref: BlobRef, offset: int, data: bytes) -> None:
        client = self._client(ref)
        view = memoryview(data)
        for start in range(0, len(view), _PUT_PAGE_MAX):
            chunk = bytes(view[start : start + _PUT_PAGE_MAX])
            client.upload_page(chunk, offset=offset + start, length=len(chunk))

    def clear_pages(self, ref: BlobRef, start: int, end: int) -> None:
        self._client(ref).clear_page(offset=start, length=end - start)

    def page_ranges(self, ref: BlobRef) -> list[Range]:
        from azure.core.exceptions import ResourceNotFoundError

        out: list[Range] = []
        try:
            for r in self._client(ref).list_page_ranges():
                if not r.cleared:
                    out = page_ranges.add(out, r.start, r.end + 1)
        except ResourceNotFoundError:
            raise self._missing(ref) from None
        return out

    def read(self, ref: BlobRef, offset: int, length: int) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return bytes(self._client(ref).download_blob(offset=offset, length=length).readall())
        except ResourceNotFoundError:
            raise self._missing(ref) from None

    def copy(
        self,
        src: BlobRef,
        dst: BlobRef,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        total = self.size(src)
        ranges = self.page_ranges(src)
        self.create(dst, total)
        done = 0
        for start, end in ranges:
            for pos in range(start, end, _PUT_PAGE_MAX):
                n = min(_PUT_PAGE_MAX, end - pos)
                self.write_pages(dst, pos, self.read(src, pos, n))
                done += n
                if progress:
                    progress(done, total)
        if progress:
            progress(total, total)

    def delete(self, ref: BlobRef) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self._client(ref).delete_blob()

    def local_path(self, ref: BlobRef) -> Path | None:
        return None

    def record_local_write(self, ref: BlobRef) -> None:
        raise AssertionError("no local files in a Blob API store: nothing writes behind it")
