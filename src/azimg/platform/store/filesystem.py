"""Blobs as sparse files: ``<root>/<region>/<key>``, page ranges in a ``.ranges`` sidecar.

Copies try a reflink (FICLONE: instant and shared on XFS/btrfs), then fall back to a sparse
copy that walks data extents with SEEK_DATA/SEEK_HOLE, so holes stay holes. Copies and new
blobs are written under a temporary name and renamed, so a crash never leaves a half-copy
under the final name. Page ranges are kept exactly (512-byte granularity, as Azure reports
them) instead of being derived from the filesystem's 4 KiB allocation.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from azimg.platform.errors import BlobNotFound, FileTooLargeForHost
from azimg.platform.store import page_ranges
from azimg.platform.store.metadata import BlobRef
from azimg.platform.store.page_ranges import Range

_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_CHUNK = 8 * 1024 * 1024


class FilesystemBlobStore:
    def __init__(self, root: Path, regions: tuple[str, ...]) -> None:
        self.root = root
        self.regions = regions
        for region in regions:
            (root / region).mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _path(self, ref: BlobRef) -> Path:
        if ref.region not in self.regions or "/" in ref.key or ref.key.startswith("."):
            raise BlobNotFound(f"The blob {ref.region}/{ref.key} does not exist.")
        return self.root / ref.region / ref.key

    def _ranges_path(self, ref: BlobRef) -> Path:
        return self._path(ref).with_name(ref.key + ".ranges")

    def _lock(self, ref: BlobRef) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(f"{ref.region}/{ref.key}", threading.Lock())

    def _save_ranges(self, ref: BlobRef, ranges: list[Range]) -> None:
        path = self._ranges_path(ref)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(ranges))
        os.replace(tmp, path)

    def _load_ranges(self, ref: BlobRef) -> list[Range]:
        try:
            return [(s, e) for s, e in json.loads(self._ranges_path(ref).read_text())]
        except FileNotFoundError:
            return []

    def create(self, ref: BlobRef, size: int) -> None:
        path = self._path(ref)
        tmp = path.with_name(path.name + ".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            try:
                fh.truncate(size)
            except OSError as err:
                tmp.unlink()
                _raise_if_too_large(err, size, path)
                raise
        self._save_ranges(ref, [])
        os.replace(tmp, path)

    def exists(self, ref: BlobRef) -> bool:
        return self._path(ref).exists()

    def size(self, ref: BlobRef) -> int:
        try:
            return self._path(ref).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(f"The blob {ref.region}/{ref.key} does not exist.") from None

    @contextlib.contextmanager
    def _open_rw(self, ref: BlobRef) -> Iterator[int]:
        try:
            fd = os.open(self._path(ref), os.O_RDWR)
        except FileNotFoundError:
            raise BlobNotFound(f"The blob {ref.region}/{ref.key} does not exist.") from None
        try:
            yield fd
        finally:
            os.close(fd)

    def resize(self, ref: BlobRef, size: int) -> None:
        with self._open_rw(ref) as fd:
            try:
                os.ftruncate(fd, size)
            except OSError as err:
                _raise_if_too_large(err, size, self._path(ref))
                raise
        with self._lock(ref):
            self._save_ranges(ref, page_ranges.remove(self._load_ranges(ref), size, 1 << 62))

    def write_pages(self, ref: BlobRef, offset: int, data: bytes) -> None:
        with self._open_rw(ref) as fd:
            view = memoryview(data)
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], offset + done)
        with self._lock(ref):
            ranges = page_ranges.add(self._load_ranges(ref), offset, offset + len(data))
            self._save_ranges(ref, ranges)

    def clear_pages(self, ref: BlobRef, start: int, end: int) -> None:
        zeros = bytes(min(_CHUNK, end - start))
        with self._open_rw(ref) as fd:
            pos = start
            while pos < end:
                n = min(len(zeros), end - pos)
                os.pwrite(fd, zeros[:n], pos)
                pos += n
        with self._lock(ref):
            self._save_ranges(ref, page_ranges.remove(self._load_ranges(ref), start, end))

    def page_ranges(self, ref: BlobRef) -> list[Range]:
        self.size(ref)
        with self._lock(ref):
            return self._load_ranges(ref)

    def read(self, ref: BlobRef, offset: int, length: int) -> bytes:
        try:
            with open(self._path(ref), "rb") as fh:
                return os.pread(fh.fileno(), length, offset)
        except FileNotFoundError:
            raise BlobNotFound(f"The blob {ref.region}/{ref.key} does not exist.") from None

    def copy(
        self,
        src: BlobRef,
        dst: BlobRef,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        src_path, dst_path = self._path(src), self._path(dst)
        tmp = dst_path.with_name(dst_path.name + ".tmp")
        if not src_path.exists():
            raise BlobNotFound(f"The blob {src.region}/{src.key} does not exist.")
        with open(src_path, "rb") as fin, open(tmp, "wb") as fout:
            total = os.fstat(fin.fileno()).st_size
            if not _reflink(fin.fileno(), fout.fileno()):
                _sparse_copy(fin.fileno(), fout.fileno(), total, progress)
        self._save_ranges(dst, self._load_ranges(src))
        os.replace(tmp, dst_path)
        if progress:
            progress(total, total)

    def delete(self, ref: BlobRef) -> None:
        for path in (self._path(ref), self._ranges_path(ref)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def local_path(self, ref: BlobRef) -> Path | None:
        return self._path(ref)

    def record_local_write(self, ref: BlobRef) -> None:
        with self._lock(ref), open(self._path(ref), "rb") as fh:
            total = os.fstat(fh.fileno()).st_size
            ranges: list[Range] = []
            for start, end in _data_extents(fh.fileno(), total):
                # Pages are 512 bytes; extents are filesystem blocks (already multiples).
                ranges = page_ranges.add(ranges, start // 512 * 512, -(-end // 512) * 512)
            self._save_ranges(ref, ranges)


def _raise_if_too_large(err: OSError, size: int, path: Path) -> None:
    """EFBIG (ext4 holds at most 16 TiB in one file with 4 KiB blocks) as a clear 400 that
    names the limit and the fixes, instead of a 500 ``File too large``."""
    if err.errno != errno.EFBIG:
        return
    raise FileTooLargeForHost(
        f"This host cannot store a {size}-byte ({size / 2**40:.2f} TiB) disk: the filesystem "
        f"of the data directory ({path.parent.parent}) limits one file to less than that "
        "(ext4: 16 TiB). Azure allows up to 32 TiB; to store such disks run azimg serve with "
        "a --data-dir on XFS, or keep blobs in a Blob API account (--blob-url)."
    ) from None


def _reflink(fd_in: int, fd_out: int) -> bool:
    try:
        fcntl.ioctl(fd_out, _FICLONE, fd_in)
        return True
    except OSError as err:
        if err.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EPERM):
            return False
        raise


def _data_extents(fd: int, total: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each data extent; the whole file if the fs cannot say."""
    pos = 0
    while pos < total:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as err:
            if err.errno == errno.ENXIO:  # only a hole remains
                return
            yield pos, total
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        pos = end


def _sparse_copy(
    fd_in: int, fd_out: int, total: int, progress: Callable[[int, int], None] | None
) -> None:
    os.ftruncate(fd_out, total)
    for start, end in list(_data_extents(fd_in, total)):
        pos = start
        while pos < end:
            n = min(_CHUNK * 4, end - pos)
            try:
                copied = os.copy_file_range(fd_in, fd_out, n, pos, pos)
            except OSError:
                data = os.pread(fd_in, n, pos)
                copied = os.pwrite(fd_out, data, pos)
            if copied == 0:
                break
            pos += copied
            if progress:
                progress(pos, total)
