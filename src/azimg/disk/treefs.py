"""The path-walking half of our read-only filesystem readers (ext4, XFS, FAT).

Each format implements five primitives over node numbers (inode numbers, or FAT's own ids);
this base turns them into the ``GuestFS`` protocol: guest paths, symlinks resolved inside the
guest root with a hop limit, small LRU caches, and a count of the bytes pulled from the image.
Reads are exact: a short read means the image is truncated, which is ``CorruptImage``.
"""

from __future__ import annotations

import abc
from collections import OrderedDict
from typing import BinaryIO, Generic, TypeVar

from azimg.disk.guestfs import DEFAULT_READ_LIMIT, MAX_SYMLINK_HOPS, GuestStat
from azimg.errors import CorruptImage

K = TypeVar("K")
V = TypeVar("V")

MAX_SYMLINK_TARGET = 4096  # PATH_MAX: a longer link target is corruption, not a path
MAX_CACHED_ENTRIES = 65536


class LRU(Generic[K, V]):
    """A tiny bounded cache: metadata blocks, inodes and directories a lookup revisits."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)


def split_path(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


class TreeFS(abc.ABC):
    """A read-only filesystem reached through a binary file object over its volume."""

    label: str

    def __init__(self, fh: BinaryIO, label: str) -> None:
        self._fh = fh
        self.label = label
        self._bytes_read = 0
        self._stats: LRU[int, GuestStat] = LRU(4096)
        self._dirs: LRU[int, dict[str, int]] = LRU(64)

    # -- what each format provides ------------------------------------------------------------

    @abc.abstractmethod
    def _root(self) -> int: ...

    @abc.abstractmethod
    def _node_stat(self, node: int) -> GuestStat: ...

    @abc.abstractmethod
    def _node_entries(self, node: int) -> dict[str, int]:
        """Names in a directory (without "." and "..") mapped to their nodes."""

    @abc.abstractmethod
    def _node_link(self, node: int) -> bytes: ...

    @abc.abstractmethod
    def _node_data(self, node: int, limit: int) -> bytes: ...

    # -- shared machinery ---------------------------------------------------------------------

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    def _pread(self, offset: int, length: int, what: str = "data") -> bytes:
        self._fh.seek(offset)
        data = self._fh.read(length)
        self._bytes_read += len(data)
        if len(data) != length:
            raise CorruptImage(
                f"{self.label}: {what} lies past the end of the volume", offset=offset
            )
        return data

    def _stat(self, node: int) -> GuestStat:
        st = self._stats.get(node)
        if st is None:
            st = self._node_stat(node)
            self._stats.put(node, st)
        return st

    def _entries(self, node: int) -> dict[str, int]:
        ents = self._dirs.get(node)
        if ents is None:
            ents = self._node_entries(node)
            if len(ents) <= MAX_CACHED_ENTRIES:  # keep memory bounded: huge dirs are re-read
                self._dirs.put(node, ents)
        return ents

    def _lookup(self, node: int, name: str) -> int | None:
        """The child called ``name`` (formats with case-insensitive names override this)."""
        return self._entries(node).get(name)

    def _link(self, node: int) -> str:
        raw = self._node_link(node)
        if len(raw) > MAX_SYMLINK_TARGET:
            raise CorruptImage(f"{self.label}: symlink target longer than {MAX_SYMLINK_TARGET}")
        return raw.decode("utf-8", "surrogateescape")

    def _walk(self, path: str, *, follow_last: bool) -> int:
        root = self._root()
        stack = [root]
        parts = split_path(path)
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            if not self._stat(stack[-1]).is_dir:
                raise NotADirectoryError(path)
            node = self._lookup(stack[-1], name)
            if node is None:
                raise FileNotFoundError(path)
            if self._stat(node).is_symlink and (parts or follow_last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise FileNotFoundError(f"too many symlinks resolving {path}")
                target = self._link(node)
                if target.startswith("/"):
                    stack = [root]
                parts = split_path(target) + parts
                continue
            stack.append(node)
        return stack[-1]

    # -- the GuestFS protocol -----------------------------------------------------------------

    def lstat(self, path: str) -> GuestStat:
        return self._stat(self._walk(path, follow_last=False))

    def readlink(self, path: str) -> str:
        node = self._walk(path, follow_last=False)
        if not self._stat(node).is_symlink:
            raise OSError(22, "not a symlink", path)
        return self._link(node)

    def listdir(self, path: str) -> list[str]:
        node = self._walk(path, follow_last=True)
        if not self._stat(node).is_dir:
            raise NotADirectoryError(path)
        return sorted(self._entries(node))

    def read_file(self, path: str, *, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        node = self._walk(path, follow_last=True)
        st = self._stat(node)
        if st.is_dir:
            raise IsADirectoryError(path)
        if not st.is_file:
            return b""  # devices, fifos, sockets: no data in the image
        return self._node_data(node, min(limit, st.size))
