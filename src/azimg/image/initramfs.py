"""What an initramfs holds: its segments, files and kernel modules (hv_vmbus & co. for Azure).

An initramfs is what the kernel's init/initramfs.c unpacks: cpio archives, each either plain
or compressed, one after another with zero padding between them. Debian's initramfs-tools
writes an uncompressed early-microcode archive followed by the main archive compressed with
zstd (or gzip, xz, lz4 legacy, bzip2, lzma); dracut does the same. We walk it the same way:
skip zeros, then a ``0707`` magic is a plain archive and a compression magic starts a
compressed segment that may itself hold several archives.

Untrusted input: decompression is streamed with a bounded output per step and a cap on the
total unpacked size, the cpio reader keeps no file data except ``modules.builtin``, and
entries are counted, so a bomb or garbage ends in ``CorruptImage`` quickly, in bounded memory.
"""

from __future__ import annotations

import bz2
import io
import lzma
import posixpath
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import lz4.block
import zstandard

from azimg.disk.cpio import CpioEntry, iter_cpio
from azimg.errors import CorruptImage, UnsupportedFormat

HV_DRIVERS = ("hv_vmbus", "hv_storvsc", "hv_netvsc")
MAX_UNPACKED = 512 * 1024 * 1024  # RHEL dracut images unpack to ~150 MB; a bomb stops here
MAX_ENTRIES = 500_000
CHUNK = 256 * 1024
OUT_STEP = 1024 * 1024
LZ4_LEGACY_MAGIC = 0x184C2102
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
LZ4_LEGACY_BLOCK = 8 * 1024 * 1024
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz", ".ko.bz2")

# Compression magics, as the kernel's decompress_method() knows them (lib/decompress.c).
MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"\x1f\x9e", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"BZh", "bzip2"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x89LZO", "lzo"),
)


@dataclass(frozen=True)
class Segment:
    offset: int  # where it starts in the initramfs file
    compression: str  # none, gzip, xz, zstd, lz4, bzip2, lzma
    entries: int
    unpacked: int  # bytes of cpio produced by this segment


@dataclass(frozen=True)
class Initramfs:
    segments: tuple[Segment, ...]
    files: tuple[str, ...]  # every entry name (directories included), in archive order
    modules: frozenset[str]  # module names from .ko files, "-" normalised to "_"
    builtin: frozenset[str]  # modules listed in lib/modules/*/modules.builtin inside the image
    kernel_versions: tuple[str, ...]  # lib/modules/<version> directories
    module_paths: dict[str, str] = field(default_factory=dict)  # name → path of its .ko

    def has_module(self, name: str) -> bool:
        """Present as a loadable module or built into the kernel the initramfs was made for."""
        n = normalise_module(name)
        return n in self.modules or n in self.builtin

    @property
    def hv_drivers(self) -> dict[str, bool]:
        return {d: self.has_module(d) for d in HV_DRIVERS}

    @property
    def compression(self) -> str:
        """The main segment's compression (the last one; the microcode archive comes first)."""
        return self.segments[-1].compression if self.segments else "none"


def normalise_module(name: str) -> str:
    base = posixpath.basename(name)
    for suffix in MODULE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


class _Source:
    """Bytes pulled from a producer with a small look-ahead buffer; counts what it hands out.

    The buffer is consumed by moving an index, not by slicing, so reading thousands of small
    cpio headers out of a megabyte of decompressed data costs no copying of the rest.
    """

    def __init__(self, pull: Callable[[], bytes]) -> None:
        self._pull = pull
        self._buf = b""
        self._at = 0
        self.consumed = 0
        self.eof = False

    def _fill(self, n: int) -> None:
        while len(self._buf) - self._at < n and not self.eof:
            more = self._pull()
            if not more:
                self.eof = True
            self._buf = self._buf[self._at :] + more
            self._at = 0

    def read(self, n: int = -1) -> bytes:
        self._fill(n)
        out = self._buf[self._at : self._at + n]
        self._at += len(out)
        self.consumed += len(out)
        return out

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return self._buf[self._at : self._at + n]

    def skip_zeros(self) -> bool:
        """Skip zero padding; False when nothing but zeros (or nothing) remains."""
        while True:
            self._fill(1)
            if self._at >= len(self._buf):
                return False
            rest = len(self._buf) - self._at
            stripped = rest - len(self._buf[self._at :].lstrip(b"\0"))
            self._at += stripped
            self.consumed += stripped
            if self._at < len(self._buf):
                return True


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, data: bytes) -> bytes:
        self.left -= len(data)
        if self.left < 0:
            raise CorruptImage("initramfs unpacks to more than the allowed size (a bomb?)")
        return data


def _zstd_frame_length(data: memoryview, at: int) -> int:
    """Length of the zstd frame at ``at``, by walking its block headers (RFC 8878 §3.1.1)."""
    pos = at + 4
    if pos >= len(data):
        raise CorruptImage("zstd frame is truncated", offset=at)
    fhd = data[pos]
    single_segment = fhd >> 5 & 1
    fcs_flag = fhd >> 6
    dict_id_sizes = (0, 1, 2, 4)
    fcs_sizes = (1 if single_segment else 0, 2, 4, 8)
    pos += 1 + (0 if single_segment else 1) + dict_id_sizes[fhd & 3] + fcs_sizes[fcs_flag]
    while True:
        if pos + 3 > len(data):
            raise CorruptImage("zstd frame is truncated", offset=pos)
        header = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
        last, kind, size = header & 1, header >> 1 & 3, header >> 3
        if kind == 3:
            raise CorruptImage("zstd block of reserved type", offset=pos)
        pos += 3 + (1 if kind == 1 else size)
        if last:
            break
    pos += 4 if fhd >> 2 & 1 else 0
    if pos > len(data):
        raise CorruptImage("zstd frame is truncated", offset=at)
    return pos - at


def _decoder(
    kind: str, data: memoryview, at: int, budget: _Budget
) -> tuple[_Source, Callable[[], int]]:
    """A source of decompressed bytes and a function telling where the compressed data ended."""
    pos = at
    if kind == "zstd":
        # Frames written back to back (pzstd, or a split compression) form one stream, as for
        # `zstd -d`: the cpio archive may continue across a frame boundary.
        length = 0
        while bytes(data[at + length : at + length + 4]) == ZSTD_MAGIC:
            length += _zstd_frame_length(data, at + length)
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data[at : at + length]), read_across_frames=True
        )

        def pull_zstd() -> bytes:
            try:
                return budget.take(reader.read(OUT_STEP))
            except zstandard.ZstdError as exc:
                raise CorruptImage(f"zstd data is corrupt: {exc}", offset=at) from None

        return _Source(pull_zstd), lambda: at + length
    if kind == "lz4":
        pos = at + 4
        end = [len(data)]

        def pull_lz4() -> bytes:
            nonlocal pos
            while True:
                if pos + 4 > len(data):
                    end[0] = pos
                    return b""
                (size,) = struct.unpack_from("<I", data, pos)
                if size == LZ4_LEGACY_MAGIC:
                    pos += 4
                    continue
                if size == 0 or size > LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK // 255 + 16:
                    end[0] = pos  # not a block size: the legacy stream ended here
                    return b""
                if pos + 4 + size > len(data):
                    raise CorruptImage("lz4 block is truncated", offset=pos)
                try:
                    out = lz4.block.decompress(
                        bytes(data[pos + 4 : pos + 4 + size]), uncompressed_size=LZ4_LEGACY_BLOCK
                    )
                except lz4.block.LZ4BlockError as exc:
                    raise CorruptImage(f"lz4 data is corrupt: {exc}", offset=pos) from None
                pos += 4 + size
                return budget.take(out)

        return _Source(pull_lz4), lambda: end[0]
    if kind == "gzip":
        if data[at + 1] == 0x9E:
            raise UnsupportedFormat("old-style packed (1f 9e) initramfs is not supported")
        zd = zlib.decompressobj(31)
        pending = b""

        def pull_gzip() -> bytes:
            nonlocal pos, pending
            while not zd.eof:
                if not pending:
                    if pos >= len(data):
                        raise CorruptImage("gzip stream is truncated", offset=pos)
                    pending = bytes(data[pos : pos + CHUNK])
                    pos += len(pending)
                try:
                    out = zd.decompress(pending, OUT_STEP)
                except zlib.error as exc:
                    raise CorruptImage(f"gzip data is corrupt: {exc}", offset=at) from None
                pending = zd.unconsumed_tail
                if out:
                    return budget.take(out)
            return b""

        return _Source(pull_gzip), lambda: pos - len(zd.unused_data)
    if kind in ("xz", "lzma", "bzip2"):
        d: lzma.LZMADecompressor | bz2.BZ2Decompressor
        if kind == "bzip2":
            d = bz2.BZ2Decompressor()
        else:
            d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE)

        def pull_lz() -> bytes:
            nonlocal pos
            while not d.eof:
                chunk = b""
                if d.needs_input:
                    if pos >= len(data):
                        raise CorruptImage(f"{kind} stream is truncated", offset=pos)
                    chunk = bytes(data[pos : pos + CHUNK])
                    pos += len(chunk)
                try:
                    out = d.decompress(chunk, OUT_STEP)
                except (lzma.LZMAError, OSError, EOFError) as exc:
                    raise CorruptImage(f"{kind} data is corrupt: {exc}", offset=at) from None
                if out:
                    return budget.take(out)
            return b""

        return _Source(pull_lz), lambda: pos - len(d.unused_data)
    raise UnsupportedFormat(f"{kind}-compressed initramfs segments are not supported")


def _want(name: str) -> bool:
    return name.endswith("/modules.builtin") and "lib/modules/" in name


def read_initramfs(
    fh: BinaryIO | bytes, *, max_unpacked: int = MAX_UNPACKED, max_entries: int = MAX_ENTRIES
) -> Initramfs:
    """List an initramfs (a binary file object or its bytes): segments, files, modules."""
    raw = fh if isinstance(fh, bytes | bytearray) else fh.read()
    data = memoryview(raw)
    budget = _Budget(max_unpacked)
    segments: list[Segment] = []
    entries: list[CpioEntry] = []
    pos = 0
    while pos < len(data):
        # Zero padding between archives.
        nz = len(data[pos:]) - len(bytes(data[pos:]).lstrip(b"\0")) if data[pos] == 0 else 0
        pos += nz
        if pos >= len(data):
            break
        head = bytes(data[pos : pos + 6])
        if head.startswith(b"0707"):
            src = _Source(_chunks(data, pos))
            before = len(entries)
            _archives(src, pos, entries, max_entries, plain=True)
            segments.append(Segment(pos, "none", len(entries) - before, src.consumed))
            pos += src.consumed
            continue
        kind = next((k for magic, k in MAGICS if head.startswith(magic)), None)
        if kind is None:
            raise CorruptImage(
                f"initramfs holds neither cpio nor known compression ({head[:4].hex()})", offset=pos
            )
        src, end = _decoder(kind, data, pos, budget)
        before = len(entries)
        _archives(src, 0, entries, max_entries, plain=False)
        segments.append(Segment(pos, kind, len(entries) - before, src.consumed))
        new_pos = end()
        if new_pos <= pos:
            raise CorruptImage(f"{kind} segment made no progress", offset=pos)
        pos = new_pos
    return _summarise(segments, entries)


def _chunks(data: memoryview, start: int) -> Callable[[], bytes]:
    pos = start

    def pull() -> bytes:
        nonlocal pos
        out = bytes(data[pos : pos + CHUNK])
        pos += len(out)
        return out

    return pull


def _archives(
    src: _Source, base: int, into: list[CpioEntry], max_entries: int, *, plain: bool
) -> None:
    """Read cpio archives from ``src``: one for a plain segment, all of them when compressed."""
    while True:
        if not plain and not src.skip_zeros():
            return
        if not src.peek(4).startswith(b"0707"):
            raise CorruptImage("no cpio archive where one should start", offset=base + src.consumed)
        for entry in iter_cpio(
            src, offset=base + src.consumed, keep=_want, max_entries=max_entries
        ):
            into.append(entry)
            if len(into) > max_entries:
                raise CorruptImage(f"initramfs has more than {max_entries} entries")
        if plain:
            return


def _summarise(segments: list[Segment], entries: list[CpioEntry]) -> Initramfs:
    modules: set[str] = set()
    paths: dict[str, str] = {}
    builtin: set[str] = set()
    versions: list[str] = []
    for e in entries:
        parts = e.name.split("/")
        for i in range(len(parts) - 2):
            if parts[i] == "lib" and parts[i + 1] == "modules" and parts[i + 2] not in versions:
                versions.append(parts[i + 2])
                break
        if e.name.endswith(MODULE_SUFFIXES):
            name = normalise_module(e.name)
            modules.add(name)
            paths.setdefault(name, e.name)
        if e.data is not None:
            for line in e.data.decode("utf-8", "replace").splitlines():
                if line.strip():
                    builtin.add(normalise_module(line.strip()))
    return Initramfs(
        segments=tuple(segments),
        files=tuple(e.name for e in entries),
        modules=frozenset(modules),
        builtin=frozenset(builtin),
        kernel_versions=tuple(versions),
        module_paths=paths,
    )
