"""Container rules: what Azure demands of the image file itself (prerequisites.md §2-4).

FMT-* (format), VHD-* (footer and dynamic metadata), SZ-* (sizes; SZ-03 needs the partition
table and lives in ``rules/generation.py``). Each rule reports pass,
fail, n/a or unreadable with evidence and a one-line fix; damage in the bytes is a finding here,
never an exception, so ``azimg info`` and ``azimg check`` can show everything at once.

Non-VHD inputs (raw, qcow2, VMDK, VHDX) get the FMT rules and the SZ rules on their virtual
size; the VHD-* rules are n/a for them, because ``azimg convert`` writes a fresh footer. The
virtual size and backing file of qcow2/VMDK/VHDX come from ``qemu-img info`` (the field's tool),
which needs a real file behind ``fh``; without one those rules report unreadable.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from azimg.disk import qemu_img
from azimg.disk.detect import ImageFormat, detect_format
from azimg.disk.vhd import (
    AZURE_MAX_SIZE,
    AZURE_MIN_SIZE,
    FEATURES_RESERVED,
    FIXED_DATA_OFFSET,
    FOOTER_COOKIE,
    FOOTER_SIZE,
    FORMAT_VERSION,
    MAX_CHS_SECTORS,
    MIB,
    SECTOR,
    DiskType,
    Footer,
    open_vhd,
    read_trailing_footer,
    round_up_mib,
)
from azimg.errors import AzimgError
from azimg.image.findings import Evidence, Finding, Severity, Status
from azimg.image.rules import Rule

GIB = 1024 * MIB
OS_DISK_MAX = 4095 * GIB
LEGACY_MAX = 1023 * GIB
MARKETPLACE_MIN = 20 * 1000 * 1000  # "20 MB"
SPARSE_ADVICE_ABOVE = 30 * GIB  # SZ-06: the usual default image size
SPARSE_ADVICE_RATIO = 4  # SZ-06: advise when less than a quarter is allocated
# Creators whose readers size a VHD from CHS geometry (QEMU block/vpc.c's table).
CHS_SIZING_CREATORS = (b"vpc ", b"qemu")

CONVERT = "azimg convert IMAGE OUT.vhd"
IN_PLACE = "azimg convert --in-place IMAGE"


_B, _W, _A = Severity.blocker, Severity.warning, Severity.advice
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "FMT-01",
            _B,
            "image is a VHD, or raw/qcow2/VMDK that azimg converts (never VHDX)",
            CONVERT,
        ),
        Rule(
            "FMT-02",
            _B,
            "a single self-contained disk: no backing file or parent",
            "flatten the chain (qemu-img convert without -B), then " + CONVERT,
        ),
        Rule(
            "FMT-03",
            _W,
            "not encrypted, so the guest can be inspected",
            "decrypt it (qemu-img convert with --object secret), then check again",
        ),
        Rule("FMT-04", _W, "already a VHD; other formats must be converted before upload", CONVERT),
        Rule("FMT-05", _B, "fixed VHD (footer disk type 2)", CONVERT + " (writes a fixed VHD)"),
        Rule(
            "FMT-06",
            _B,
            "not a differencing VHD (disk type 4)",
            "merge it into its parent, then " + CONVERT,
        ),
        Rule(
            "VHD-01",
            _B,
            "footer cookie 'conectix' in the last 512 bytes",
            "re-export from the source disk: " + CONVERT,
        ),
        Rule("VHD-02", _B, "footer checksum valid", "rewrite the footer: " + IN_PLACE),
        Rule("VHD-03", _B, "file length = current size + 512 (fixed VHD)", IN_PLACE),
        Rule(
            "VHD-04",
            _B,
            "current size is a whole number of MiB",
            IN_PLACE + " (rounds up to the next MiB)",
        ),
        Rule("VHD-05", _B, "file length is a multiple of 512 (page blob)", CONVERT),
        Rule("VHD-06", _W, "data offset all ones (fixed VHD)", IN_PLACE),
        Rule("VHD-07", _W, "format version 1.0 and the reserved feature bit set", IN_PLACE),
        Rule(
            "VHD-08",
            _W,
            "no saved state in the footer",
            "boot and shut down the disk cleanly, then re-export",
        ),
        Rule(
            "VHD-09",
            _A,
            "CHS geometry agrees with the current size for every reader",
            IN_PLACE + " (exact current size, spec CHS)",
        ),
        Rule("VHD-10", _A, "unique ID non-zero and time stamp not in the future", IN_PLACE),
        Rule(
            "VHD-11",
            _B,
            "dynamic header and BAT consistent (cookie, checksum, block size, BAT inside the file)",
            "regenerate from a healthy source: " + CONVERT,
        ),
        Rule(
            "SZ-01",
            _B,
            "size + 512 between 20 MiB + 512 and 32 TiB + 512 bytes",
            "resize the disk into Azure's range (qemu-img resize), then " + CONVERT,
        ),
        Rule(
            "SZ-02",
            _B,
            "an OS disk is at most 4,095 GiB",
            "shrink the filesystem, partitions and image",
        ),
        Rule(
            "SZ-04",
            _A,
            "at most 1,023 GiB (legacy guidance; some tools still enforce it)",
            "informational: Azure accepts OS disks up to 4 TiB",
        ),
        Rule(
            "SZ-05",
            _W,
            "Marketplace: at least 20 MB and at most 1,023 GiB (scope: mkt)",
            "resize the disk into the Marketplace range",
        ),
        Rule(
            "SZ-06",
            _A,
            "virtual size not far beyond the data it holds (upload time, cost)",
            "shrink the filesystem and the image; 30 GiB is the usual default",
        ),
    )
}


def _finding(
    rule_id: str,
    status: Status,
    *evidence: Evidence,
    **data: Any,
) -> Finding:
    rule = RULES[rule_id]
    return Finding(
        rule=rule.id,
        severity=rule.severity,
        status=status,
        title=rule.title,
        fix="" if status in (Status.passed, Status.not_applicable) else rule.fix,
        evidence=tuple(evidence),
        supporting_data=data,
    )


def _verdict(ok: bool) -> Status:
    return Status.passed if ok else Status.failed


def _na(*rule_ids: str, why: str) -> list[Finding]:
    return [_finding(r, Status.not_applicable, Evidence("container", why)) for r in rule_ids]


@dataclass(frozen=True)
class _Foreign:
    """What qemu-img says about a qcow2/VMDK/VHDX (None where it could not say)."""

    virtual_size: int | None
    backing: str | None
    encrypted: bool | None
    error: str = ""


def _foreign_facts(fh: BinaryIO, fmt: ImageFormat) -> _Foreign:
    name = getattr(fh, "name", None)
    if not isinstance(name, str) or not os.path.isfile(name):
        return _Foreign(None, None, None, "no file behind the stream for qemu-img")
    try:
        info = qemu_img.info(Path(name), fmt.qemu_name)
    except AzimgError as err:
        return _Foreign(None, None, None, str(err))
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    return _Foreign(int(info["virtual-size"]), backing, bool(info.get("encrypted", False)))


def check_container(fh: BinaryIO) -> list[Finding]:
    """Every container rule for the image in ``fh``, in catalogue order."""
    fmt = detect_format(fh)
    file_size = fh.seek(0, os.SEEK_END)
    if fmt.is_vhd:
        return _check_vhd(fh, fmt, file_size)
    return _check_foreign(fh, fmt, file_size)


def _check_foreign(fh: BinaryIO, fmt: ImageFormat, file_size: int) -> list[Finding]:
    where = Evidence("container", f"format {fmt} (by content)")
    out = [_finding("FMT-01", _verdict(fmt is not ImageFormat.vhdx), where, format=str(fmt))]
    raw = fmt is ImageFormat.raw
    facts = _Foreign(file_size, None, False) if raw else _foreign_facts(fh, fmt)
    if facts.backing is None and facts.error:
        out.append(_finding("FMT-02", Status.unreadable, Evidence("qemu-img info", facts.error)))
    else:
        out.append(
            _finding(
                "FMT-02",
                _verdict(facts.backing is None),
                Evidence("header", f"backing file {facts.backing!r}" if facts.backing else "none"),
                backing_file=facts.backing,
            )
        )
    if fmt is ImageFormat.raw:
        out += _na("FMT-03", why="raw disks carry no container encryption")
    elif facts.encrypted is None:
        out.append(_finding("FMT-03", Status.unreadable, Evidence("qemu-img info", facts.error)))
    else:
        out.append(
            _finding(
                "FMT-03",
                _verdict(not facts.encrypted),
                Evidence("header", f"encrypted: {facts.encrypted}"),
            )
        )
    size = facts.virtual_size
    detail = f"{fmt}, virtual size {size}" if size is not None else f"{fmt}"
    out.append(
        _finding(
            "FMT-04",
            Status.failed,
            Evidence("container", f"{detail}; convert it to a fixed VHD"),
            format=str(fmt),
            virtual_size=size,
            converted_size=round_up_mib(size) if size else None,
        )
    )
    out += _na("FMT-05", "FMT-06", why=f"not a VHD ({fmt}); conversion writes a fixed VHD")
    out += _na(
        *(f"VHD-{i:02d}" for i in range(1, 12)),
        why=f"not a VHD ({fmt}); conversion writes a fresh footer",
    )
    out += _size_rules(size, "virtual size", facts.error)
    out.append(_sparse_rule(size, fh))
    return out


def _check_vhd(fh: BinaryIO, fmt: ImageFormat, file_size: int) -> list[Finding]:
    at = file_size - FOOTER_SIZE
    footer = read_trailing_footer(fh, verify=False)  # detection saw 512 bytes: cannot fail

    def ev(offset: int, detail: str) -> Evidence:
        return Evidence(f"footer@{at}+{offset}", detail)

    out = [_finding("FMT-01", Status.passed, Evidence("container", f"format {fmt} (by content)"))]
    diff = footer.disk_type == DiskType.differencing
    out.append(_finding("FMT-02", _verdict(not diff), ev(60, f"disk type {footer.kind}")))
    out += _na("FMT-03", why="VHD has no container encryption")
    out.append(_finding("FMT-04", Status.passed, Evidence("container", "VHD")))
    kind = ev(60, f"disk type {footer.disk_type} ({footer.kind})")
    out.append(
        _finding(
            "FMT-05", _verdict(footer.disk_type == DiskType.fixed), kind, disk_type=footer.kind
        )
    )
    out.append(_finding("FMT-06", _verdict(not diff), kind, disk_type=footer.kind))
    cookie_ok = footer.cookie == FOOTER_COOKIE
    out.append(_finding("VHD-01", _verdict(cookie_ok), ev(0, f"cookie {footer.cookie!r}")))
    out.append(
        _finding(
            "VHD-02",
            _verdict(footer.checksum_ok),
            ev(64, f"stored {footer.checksum:#010x}, computed {footer.computed_checksum:#010x}"),
        )
    )
    size = footer.current_size
    fixed = footer.disk_type == DiskType.fixed
    if fixed:
        out.append(
            _finding(
                "VHD-03",
                _verdict(file_size == size + FOOTER_SIZE),
                ev(48, f"file {file_size} bytes, current size {size} + 512 = {size + FOOTER_SIZE}"),
                file_size=file_size,
                current_size=size,
            )
        )
    else:
        out += _na("VHD-03", why=f"{footer.kind} disk")
    out.append(
        _finding(
            "VHD-04",
            _verdict(size % MIB == 0),
            ev(48, f"current size {size} = {size / MIB:.4f} MiB"),
            current_size=size,
            rounded_up=round_up_mib(size),
        )
    )
    out.append(
        _finding(
            "VHD-05",
            _verdict(file_size % SECTOR == 0),
            Evidence("container", f"file length {file_size}"),
        )
    )
    if fixed:
        out.append(
            _finding(
                "VHD-06",
                _verdict(footer.data_offset == FIXED_DATA_OFFSET),
                ev(16, f"data offset {footer.data_offset:#018x}"),
            )
        )
    else:
        out += _na("VHD-06", why=f"{footer.kind} disk")
    version_ok = footer.file_format_version == FORMAT_VERSION
    features_ok = bool(footer.features & FEATURES_RESERVED)
    out.append(
        _finding(
            "VHD-07",
            _verdict(version_ok and features_ok),
            ev(8, f"features {footer.features:#010x}, version {footer.file_format_version:#010x}"),
        )
    )
    out.append(
        _finding(
            "VHD-08", _verdict(footer.saved_state == 0), ev(84, f"saved state {footer.saved_state}")
        )
    )
    chs = f"{footer.cylinders}/{footer.heads}/{footer.sectors_per_track}"
    creator = footer.creator_application
    geometry = f"CHS {chs} = {footer.chs_size} bytes, creator {creator!r}"
    out.append(_geometry_rule(footer, ev(56, geometry)))
    future = footer.created_unix > time.time() + 86400
    out.append(
        _finding(
            "VHD-10",
            _verdict(footer.unique_id.int != 0 and not future),
            ev(68, f"unique id {footer.unique_id}, created {footer.to_json()['created']}"),
        )
    )
    if footer.disk_type in (DiskType.dynamic, DiskType.differencing):
        out.append(_dynamic_rule(fh, footer, file_size))
    else:
        out += _na("VHD-11", why=f"{footer.kind} disk has no dynamic header")
    out += _size_rules(size, "current size", "")
    out.append(_sparse_rule(size, fh))
    return out


def _geometry_rule(footer: Footer, where: Evidence) -> Finding:
    chs_sectors = footer.chs_size // SECTOR
    sentinel = chs_sectors == MAX_CHS_SECTORS
    fits = footer.chs_size <= footer.current_size or sentinel
    by_chs = footer.creator_application in CHS_SIZING_CREATORS and not sentinel
    ok = fits and not (by_chs and footer.chs_size != footer.current_size)
    return _finding(
        "VHD-09",
        _verdict(ok),
        where,
        chs_size=footer.chs_size,
        current_size=footer.current_size,
        creator_application=footer.creator_application.decode("latin-1"),
    )


def _dynamic_rule(fh: BinaryIO, footer: Footer, file_size: int) -> Finding:
    if footer.disk_type == DiskType.differencing:
        return _finding(
            "VHD-11",
            Status.unreadable,
            Evidence("dynamic header", "differencing disk: needs its parent"),
        )
    try:
        disk = open_vhd(fh)
    except AzimgError as err:
        offset = getattr(err, "offset", None)
        where = f"byte {offset}" if offset is not None else "dynamic header"
        return _finding("VHD-11", Status.failed, Evidence(where, str(err)))
    assert disk.header is not None and disk.bat is not None
    used = sum(1 for e in disk.bat.entries if e != 0xFFFF_FFFF)
    return _finding(
        "VHD-11",
        Status.passed,
        Evidence(
            f"dynamic header@{footer.data_offset}",
            f"{used} of {len(disk.bat)} blocks of {disk.header.block_size} bytes allocated",
        ),
        block_size=disk.header.block_size,
        max_table_entries=len(disk.bat),
        allocated_blocks=used,
    )


def _size_rules(size: int | None, what: str, why_unknown: str) -> list[Finding]:
    if size is None:
        ev = Evidence("qemu-img info", why_unknown or "virtual size unknown")
        return [_finding(r, Status.unreadable, ev) for r in ("SZ-01", "SZ-02", "SZ-04", "SZ-05")]
    ev = Evidence("container", f"{what} {size} bytes ({size / GIB:.3f} GiB)")
    out = [
        _finding(
            "SZ-01",
            _verdict(AZURE_MIN_SIZE <= size <= AZURE_MAX_SIZE),
            ev,
            size=size,
            upload_size=size + FOOTER_SIZE,
        ),
        _finding("SZ-02", _verdict(size <= OS_DISK_MAX), ev, size=size),
    ]
    out.append(_finding("SZ-04", _verdict(size <= LEGACY_MAX), ev, size=size))
    mkt = MARKETPLACE_MIN <= size <= LEGACY_MAX
    out.append(_finding("SZ-05", _verdict(mkt), ev, size=size, scope="mkt"))
    return out


def _sparse_rule(size: int | None, fh: BinaryIO) -> Finding:
    """SZ-06 by a stated heuristic: over 30 GiB with less than a quarter of it allocated.

    The bytes the file allocates stand in for the data the guest uses (holes are never-written
    space); the catalogue gives no threshold, so this one is ours and advice only.
    """
    try:
        allocated = os.fstat(fh.fileno()).st_blocks * 512
    except (OSError, AttributeError, io.UnsupportedOperation):
        allocated = None
    if size is None or allocated is None:
        ev = Evidence("container", "virtual size or allocated bytes unknown")
        return _finding("SZ-06", Status.unreadable, ev)
    ok = size <= SPARSE_ADVICE_ABOVE or allocated * SPARSE_ADVICE_RATIO >= size
    detail = f"virtual {size / GIB:.2f} GiB, allocated {allocated / GIB:.2f} GiB"
    ev = Evidence("container", detail)
    return _finding("SZ-06", _verdict(ok), ev, size=size, allocated_bytes=allocated)
