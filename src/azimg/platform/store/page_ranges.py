"""Page-range bookkeeping for page blobs: a pure edit of a sorted list of half-open ranges.

Design choice: ranges are merged eagerly (adjacent or overlapping writes fuse into one range),
so the list stays as short as the blob's real data layout and Get Page Ranges answers without
post-processing. Clearing splits a range at its edges. All ranges are ``(start, end)`` with
``end`` exclusive, 512-byte aligned by the caller; no I/O happens here.
"""

from __future__ import annotations

from collections.abc import Iterable

Range = tuple[int, int]


def add(ranges: Iterable[Range], start: int, end: int) -> list[Range]:
    """``ranges`` with ``[start, end)`` written: overlapping and touching ranges fuse."""
    if end <= start:
        return list(ranges)
    out: list[Range] = []
    placed = False
    for s, e in ranges:
        if e < start:
            out.append((s, e))
        elif s > end:
            if not placed:
                out.append((start, end))
                placed = True
            out.append((s, e))
        else:
            start, end = min(s, start), max(e, end)
    if not placed:
        out.append((start, end))
    return out


def remove(ranges: Iterable[Range], start: int, end: int) -> list[Range]:
    """``ranges`` with ``[start, end)`` cleared: ranges that straddle an edge are split."""
    if end <= start:
        return list(ranges)
    out: list[Range] = []
    for s, e in ranges:
        if e <= start or s >= end:
            out.append((s, e))
            continue
        if s < start:
            out.append((s, start))
        if e > end:
            out.append((end, e))
    return out


def within(ranges: Iterable[Range], start: int, end: int) -> list[Range]:
    """The parts of ``ranges`` inside ``[start, end)`` (Get Page Ranges with a range header)."""
    return [(max(s, start), min(e, end)) for s, e in ranges if e > start and s < end]
