"""Storage: a metadata store (documents + operations) and a blob store (bytes per region).

``Store`` bundles the two; resource modules take it first (house rule 1). Other backends
(PostgreSQL via URL today; the Azure Blob API later) implement the same two interfaces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from azimg.platform.errors import PreconditionFailed
from azimg.platform.settings import Settings
from azimg.platform.store.blobs import BlobStore
from azimg.platform.store.metadata import BlobRef, Document, MetadataStore, Operation

#: ``change(current) -> new document``, or None to write nothing (see ``Store.update``).
Change = Callable[[Document], Document | None]

__all__ = [
    "BlobRef",
    "BlobStore",
    "Change",
    "Document",
    "MetadataStore",
    "Operation",
    "Store",
    "open_store",
]


@dataclass(frozen=True)
class Store:
    meta: MetadataStore
    blobs: BlobStore
    regions: tuple[str, ...]

    def close(self) -> None:
        self.meta.close()

    def update(
        self, resource_id: str, change: Change, *, operation: Operation | None = None
    ) -> Document | None:
        """The one way to change a stored document: compare-and-set on its ETag.

        ``change`` gets the current document and returns the new one; it is called again
        with the fresh document whenever someone else wrote in between, so it must be a pure
        function of its argument (read-modify-write inside it, nothing captured from an
        earlier read). It returns None when the document is no longer the one the caller
        meant (replaced by a new one of the same name, wrong state): nothing is written.
        Returns the written document (with its new ETag), or None when the document is gone
        or ``change`` declined. ``operation`` is added in the same transaction as the write.
        """
        while True:
            doc = self.meta.get(resource_id)
            if doc is None:
                return None
            new = change(doc)
            if new is None:
                return None
            try:
                return self.meta.put(new, if_match=doc.etag, operation=operation)
            except PreconditionFailed:
                continue


def open_store(settings: Settings) -> Store:
    """SQL metadata (SQLite unless a URL says otherwise) and blobs in files, or in the Blob
    API when ``blob_url`` names a storage account (one container per region)."""
    from azimg.platform.store.sql import SqlMetadataStore

    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    blobs: BlobStore
    if settings.blob_url:
        from azimg.platform.store.azure_blob import AzureBlobStore

        account = settings.blob_url.rstrip("/").rsplit("/", 1)[-1].split(".")[0]
        credential = (
            {"account_name": account, "account_key": settings.blob_key}
            if settings.blob_key
            else None
        )
        blobs = AzureBlobStore(settings.blob_url, credential, settings.regions)
    else:
        from azimg.platform.store.filesystem import FilesystemBlobStore

        blobs = FilesystemBlobStore(settings.blob_root, settings.regions)
    return Store(
        meta=SqlMetadataStore(settings.effective_database_url),
        blobs=blobs,
        regions=settings.regions,
    )
