"""cpio archives (newc, newc+crc and portable odc), read as a stream of entries.

Layout from cpio(5) ("New ASCII Format", "Portable ASCII Format"). The reader takes any object
with ``read(n)`` (a file, or a decompressing stream) and never holds file data it was not asked
to keep: the data of other entries is skipped in bounded chunks, so an archive of any size
lists in constant memory. It stops after the ``TRAILER!!!`` entry, leaving the stream just past
the trailer's padding; a caller reading concatenated archives (initramfs) continues from there.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from azimg.errors import CorruptImage

NEWC_MAGIC = b"070701"
CRC_MAGIC = b"070702"
ODC_MAGIC = b"070707"
TRAILER = "TRAILER!!!"
MAX_NAME = 4096  # PATH_MAX: longer names are corruption
SKIP_CHUNK = 1024 * 1024

# newc/crc header: magic + 13 fields of 8 hex digits (110 bytes).
_NEWC = struct.Struct("6s8s8s8s8s8s8s8s8s8s8s8s8s8s")
# odc header: magic, dev, ino, mode, uid, gid, nlink, rdev (6 octal digits), mtime (11),
# namesize (6), filesize (11): 76 bytes.
_ODC = struct.Struct("6s6s6s6s6s6s6s6s11s6s11s")


class ByteStream(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class CpioHeader:
    magic: bytes
    ino: int
    mode: int
    uid: int
    gid: int
    nlink: int
    mtime: int
    filesize: int
    namesize: int
    check: int = 0
    devmajor: int = 0
    devminor: int = 0
    rdevmajor: int = 0
    rdevminor: int = 0

    @classmethod
    def unpack_newc(cls, raw: bytes, *, at: int) -> CpioHeader:
        f = _NEWC.unpack(raw)
        try:
            v = [int(x, 16) for x in f[1:]]
        except ValueError:
            raise CorruptImage("cpio header has non-hex digits", offset=at, field="c_ino") from None
        ino, mode, uid, gid, nlink, mtime, size, dmaj, dmin, rmaj, rmin, namesize, check = v
        return cls(
            f[0], ino, mode, uid, gid, nlink, mtime, size, namesize, check, dmaj, dmin, rmaj, rmin
        )

    def pack_newc(self) -> bytes:
        fields = (
            self.ino,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.mtime,
            self.filesize,
            self.devmajor,
            self.devminor,
            self.rdevmajor,
            self.rdevminor,
            self.namesize,
            self.check,
        )
        return _NEWC.pack(self.magic, *(b"%08X" % x for x in fields))

    @classmethod
    def unpack_odc(cls, raw: bytes, *, at: int) -> CpioHeader:
        f = _ODC.unpack(raw)
        try:
            _dev, ino, mode, uid, gid, nlink, _rdev, mtime, namesize, size = (
                int(x, 8) for x in f[1:]
            )
        except ValueError:
            raise CorruptImage(
                "cpio header has non-octal digits", offset=at, field="c_ino"
            ) from None
        return cls(f[0], ino, mode, uid, gid, nlink, mtime, size, namesize)


@dataclass(frozen=True)
class CpioEntry:
    name: str  # as stored, without a leading "./" or "/"
    mode: int
    size: int
    uid: int
    gid: int
    offset: int  # header offset within the stream
    data: bytes | None = None  # only for entries the caller asked to keep


class _Reader:
    """Exact reads with a running offset, for error messages that say where."""

    def __init__(self, stream: ByteStream, offset: int) -> None:
        self.stream = stream
        self.offset = offset

    def exact(self, n: int, what: str) -> bytes:
        data = self.stream.read(n)
        while len(data) < n:
            more = self.stream.read(n - len(data))
            if not more:
                raise CorruptImage(
                    f"cpio archive is truncated in {what}", offset=self.offset + len(data)
                )
            data += more
        self.offset += n
        return data

    def skip(self, n: int, what: str) -> None:
        while n > 0:
            chunk = min(n, SKIP_CHUNK)
            self.exact(chunk, what)
            n -= chunk


def _pad(offset: int, align: int) -> int:
    return -offset % align


def iter_cpio(
    stream: ByteStream,
    *,
    offset: int = 0,
    keep: Callable[[str], bool] | None = None,
    keep_limit: int = 1024 * 1024,
    max_entries: int = 500_000,
) -> Iterator[CpioEntry]:
    """Yield the entries of one archive (the trailer is consumed, not yielded).

    ``offset`` is where the stream stands (for padding and error offsets); ``keep(name)``
    selects entries whose data (up to ``keep_limit`` bytes) is returned in ``data``.
    """
    r = _Reader(stream, offset)
    for _ in range(max_entries):
        at = r.offset
        magic = r.exact(6, "header")
        if magic in (NEWC_MAGIC, CRC_MAGIC):
            hdr = CpioHeader.unpack_newc(magic + r.exact(_NEWC.size - 6, "header"), at=at)
            align = 4
        elif magic == ODC_MAGIC:
            hdr = CpioHeader.unpack_odc(magic + r.exact(_ODC.size - 6, "header"), at=at)
            align = 1
        else:
            raise CorruptImage(f"no cpio magic (found {magic!r})", offset=at, field="c_magic")
        if not 1 <= hdr.namesize <= MAX_NAME:
            raise CorruptImage(f"cpio name size {hdr.namesize}", offset=at, field="c_namesize")
        raw_name = r.exact(hdr.namesize, "name")
        r.exact(_pad(r.offset, align), "name padding")
        name = raw_name.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if name == TRAILER:
            r.exact(_pad(r.offset, align), "trailer")
            return
        data: bytes | None = None
        clean = name.lstrip("/")
        clean = clean[2:] if clean.startswith("./") else clean
        if keep is not None and keep(clean):
            n = min(hdr.filesize, keep_limit)
            data = r.exact(n, f"data of {clean}")
            r.skip(hdr.filesize - n, f"data of {clean}")
        else:
            r.skip(hdr.filesize, f"data of {clean}")
        r.exact(_pad(r.offset, align), "data padding")
        yield CpioEntry(clean, hdr.mode, hdr.filesize, hdr.uid, hdr.gid, at, data)
    raise CorruptImage(f"cpio archive has more than {max_entries} entries", offset=r.offset)
