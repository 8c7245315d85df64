"""The blob store interface: byte extents per region, written in pages, copied cheaply."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from azimg.platform.store.metadata import BlobRef
from azimg.platform.store.page_ranges import Range


class BlobStore(Protocol):
    """Byte storage; each region is a separate root (directory or storage account)."""

    def create(self, ref: BlobRef, size: int) -> None:
        """A zero-filled blob of ``size`` bytes (sparse: costs no space until written)."""
        ...

    def exists(self, ref: BlobRef) -> bool: ...

    def size(self, ref: BlobRef) -> int: ...

    def resize(self, ref: BlobRef, size: int) -> None:
        """Grow (or cut) the blob to ``size`` bytes; new bytes read as zeros."""
        ...

    def write_pages(self, ref: BlobRef, offset: int, data: bytes) -> None: ...

    def clear_pages(self, ref: BlobRef, start: int, end: int) -> None: ...

    def page_ranges(self, ref: BlobRef) -> list[Range]: ...

    def read(self, ref: BlobRef, offset: int, length: int) -> bytes: ...

    def copy(
        self,
        src: BlobRef,
        dst: BlobRef,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """``dst`` becomes a byte-identical copy of ``src`` (reflink where possible)."""
        ...

    def delete(self, ref: BlobRef) -> None: ...

    def local_path(self, ref: BlobRef) -> Path | None:
        """A file QEMU can open directly, when the backend has one."""
        ...

    def record_local_write(self, ref: BlobRef) -> None:
        """Bytes were written to ``local_path`` by a tool (qemu-img flattening a VM's clone),
        not through ``write_pages``: their data extents become the blob's page ranges, so Get
        Page Ranges lists what is there (else a client that reads by ranges gets zeros)."""
        ...
