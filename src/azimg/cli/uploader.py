"""The direct-upload flow (arm-api.md §4.5) as one resumable function.

create (Upload, exact size) → grant Write → Put Page of the allocated ranges only → revoke.

- **What is sent.** A raw image or a fixed VHD is read where it has data (SEEK_DATA/SEEK_HOLE);
  chunks of at most 4 MiB (the Put Page limit) that are all zeros are skipped, as azcopy does,
  because a new page blob reads as zeros. A raw image or mis-sized VHD is made Azure-ready on
  the fly: its size rounds up to a whole MiB (the padding is a hole, never sent) and a fixed
  footer is computed in memory. Other formats (qcow2, VMDK, VHDX, dynamic VHD) are converted to
  a temporary fixed VHD first (``azimg convert``), and the report says so.
- **Resuming.** Each Put Page is atomic, so Get Page Ranges says exactly which chunks arrived.
  Re-running the same command finds the disk ReadyToUpload/ActiveUpload with the same size,
  grants Write again (a new SAS; the bytes stay) and sends only the missing chunks.
- **Parallelism.** Put Page requests go out on ``threads`` threads, one BlobClient each.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azimg.disk.detect import ImageFormat, detect_format
from azimg.disk.vhd import FOOTER_COOKIE, Footer, azure_footer_problems, round_up_mib
from azimg.errors import AzimgError, InvalidArgument

PAGE_CHUNK = 4 * 1024 * 1024
FOOTER = 512
GRANT_SECONDS = 24 * 3600


class Blocked(AzimgError):
    """check found blockers; --force uploads anyway."""

    exit_code = 1


@dataclass(frozen=True)
class Source:
    """An Azure-ready fixed VHD as (file, data length, footer bytes, data runs)."""

    path: Path
    data_size: int  # bytes before the footer (a whole MiB)
    footer: bytes
    runs: tuple[tuple[int, int], ...]  # (offset, length) of file data within [0, data_size)
    converted: str | None  # how it was made Azure-ready, None if it already was

    @property
    def upload_size(self) -> int:
        return self.data_size + FOOTER

    @property
    def allocated(self) -> int:
        return sum(n for _, n in self.runs) + FOOTER


def _data_runs(fd: int, end: int) -> list[tuple[int, int]]:
    runs, pos = [], 0
    while pos < end:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole remains
            break
        if start >= end:
            break
        stop = min(os.lseek(fd, start, os.SEEK_HOLE), end)
        runs.append((start, stop - start))
        pos = stop
    return runs


@contextlib.contextmanager
def open_source(image: Path) -> Iterator[Source]:
    """The image as an Azure-ready fixed VHD, converting to a temporary file if it must."""
    from azimg.disk.convert import convert

    image = Path(image)
    if not image.is_file():
        raise InvalidArgument(f"{image}: no such file")
    with open(image, "rb") as fh:
        fmt = detect_format(fh)
        size = os.fstat(fh.fileno()).st_size
        if fmt in (ImageFormat.raw, ImageFormat.vhd_fixed):
            length = size - FOOTER if fmt is ImageFormat.vhd_fixed else size
            if length <= 0 or length % 512:
                raise InvalidArgument(f"{image}: {length} bytes is not a whole number of sectors")
            target = round_up_mib(length)
            footer, how = b"", None
            if fmt is ImageFormat.vhd_fixed:
                fh.seek(length)
                footer = fh.read(FOOTER)
                parsed = Footer.unpack(footer, at=length, verify=False)
                if target != length or azure_footer_problems(parsed, size):
                    footer = b""
            if not footer:
                footer = Footer.for_fixed_disk(target).pack()
                how = f"{fmt.value}: footer for {target} bytes computed on the fly"
            runs = _data_runs(fh.fileno(), length)
            yield Source(image, target, footer, tuple(runs), how)
            return
    with tempfile.TemporaryDirectory(prefix="azimg-upload-") as td:
        tmp = Path(td) / "converted.vhd"
        convert(image, tmp)
        with open(tmp, "rb") as fh:
            data = os.fstat(fh.fileno()).st_size - FOOTER
            fh.seek(data)
            footer = fh.read(FOOTER)
            assert footer[:8] == FOOTER_COOKIE
            runs = _data_runs(fh.fileno(), data)
        yield Source(tmp, data, footer, tuple(runs), f"{fmt.value} converted to a temporary VHD")


def chunks(runs: tuple[tuple[int, int], ...], data_size: int) -> list[tuple[int, int]]:
    """4 MiB-aligned pieces of the runs (512-aligned ends; Put Page's rules), then the footer."""
    out = []
    for start, length in runs:
        start_a = start - start % 512
        end = min(data_size, -(-(start + length) // 512) * 512)
        pos = start_a
        while pos < end:
            stop = min(end, (pos // PAGE_CHUNK + 1) * PAGE_CHUNK)
            out.append((pos, stop - pos))
            pos = stop
    merged: list[tuple[int, int]] = []
    for off, n in out:  # runs meeting inside one 4 MiB window become one request
        if merged and merged[-1][0] + merged[-1][1] == off and off % PAGE_CHUNK:
            merged[-1] = (merged[-1][0], merged[-1][1] + n)
        else:
            merged.append((off, n))
    return [*merged, (data_size, FOOTER)]


def missing(pieces: list[tuple[int, int]], present: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Pieces not wholly inside one of the blob's present ranges ((start, end) inclusive)."""
    present = sorted(present)
    out = []
    for off, n in pieces:
        end = off + n - 1
        if not any(s <= off and end <= e for s, e in present):
            out.append((off, n))
    return out


@dataclass(frozen=True)
class UploadResult:
    id: str
    bytes_sent: int
    seconds: float
    resumed: bool
    converted: str | None
    allocated: int
    upload_size: int
    already_uploaded: bool = False
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bytesSent": self.bytes_sent,
            "seconds": round(self.seconds, 3),
            "resumed": self.resumed,
            "alreadyUploaded": self.already_uploaded,
            "converted": self.converted,
            "allocatedBytes": self.allocated,
            "uploadSizeBytes": self.upload_size,
            "warnings": list(self.warnings),
        }


def preflight(image: Path, generation: str | None, *, force: bool) -> tuple[str, list[str]]:
    """Run check; refuse on blockers unless forced. Returns (hyperVGeneration, warnings)."""
    from azimg.image.check import check_image
    from azimg.image.rules import CheckContext

    gen = generation[-1] if generation else None
    report = check_image(image, CheckContext(generalized=True, generation=gen))
    warnings = []
    if report.blockers:
        listed = "; ".join(f"{f.rule} {f.title}" for f in report.blockers[:5])
        if not force:
            raise Blocked(
                f"check found {len(report.blockers)} blocker(s): {listed} "
                "(azimg check shows them; --force uploads anyway)"
            )
        warnings.append(f"uploaded despite blockers (--force): {listed}")
    if generation:
        return generation, warnings
    gens = report.generations
    return ("V2" if gens is not None and gens.gen2 else "V1"), warnings


def put_pages(
    sas_url: str,
    fh_path: Path,
    pieces: list[tuple[int, int]],
    footer: bytes,
    data_size: int,
    threads: int,
    advance: Callable[[int], None],
) -> int:
    from azure.storage.blob import BlobClient

    local = threading.local()
    sent = 0
    lock = threading.Lock()
    fd = os.open(fh_path, os.O_RDONLY)

    def one(piece: tuple[int, int]) -> None:
        nonlocal sent
        off, n = piece
        if off == data_size:
            data = footer
        else:
            data = os.pread(fd, n, off)
            if len(data) < n:  # the tail of a raw image rounded up to a whole MiB
                data += bytes(n - len(data))
        if not any(data):
            advance(n)
            return
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = BlobClient.from_blob_url(sas_url)
        client.upload_page(data, offset=off, length=n)
        with lock:
            sent += n
        advance(n)

    try:
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for fut in [pool.submit(one, p) for p in pieces]:
                fut.result()
    finally:
        os.close(fd)
    return sent


def _present_ranges(sas_url: str) -> list[tuple[int, int]]:
    from azure.storage.blob import BlobClient

    client = BlobClient.from_blob_url(sas_url)
    return [(r.start, r.end) for r in client.list_page_ranges() if not r.cleared]


def upload(
    conn: Any,
    image: Path,
    *,
    resource_group: str,
    name: str,
    location: str | None = None,
    hyper_v_generation: str | None = None,
    os_type: str = "Linux",
    force: bool = False,
    threads: int = 4,
    progress: Callable[[int], Any] | None = None,
    checked: bool = True,
) -> UploadResult:
    """Upload ``image`` as managed disk ``name`` (resuming one left part-way)."""
    from azure.core.exceptions import ResourceNotFoundError

    started = time.monotonic()
    warnings: list[str] = []
    gen = hyper_v_generation
    if checked:
        gen, warnings = preflight(image, hyper_v_generation, force=force)
    compute = conn.compute()
    with open_source(image) as src:
        try:
            disk = compute.disks.get(resource_group, name)
        except ResourceNotFoundError:
            disk = None
        resumed = False
        if disk is not None:
            cd = disk.creation_data
            if cd.create_option != "Upload" or cd.upload_size_bytes != src.upload_size:
                raise InvalidArgument(
                    f"disk '{name}' already exists (createOption {cd.create_option}, "
                    f"uploadSizeBytes {cd.upload_size_bytes}) and is not an upload of this "
                    f"image ({src.upload_size} bytes); delete it or choose another --name"
                )
            if disk.disk_state not in ("ReadyToUpload", "ActiveUpload"):
                return UploadResult(
                    disk.id, 0, time.monotonic() - started, True, src.converted,
                    src.allocated, src.upload_size, already_uploaded=True,
                    warnings=(*warnings, f"disk is {disk.disk_state}: already uploaded"),
                )  # fmt: skip
            resumed = disk.disk_state == "ActiveUpload"
        else:
            group_at = conn.resource_group_location(compute, resource_group, create_in=location)
            where = location or group_at
            body: dict[str, Any] = {
                "location": where,
                "sku": {"name": "Standard_LRS"},
                "properties": {
                    "osType": os_type,
                    "creationData": {
                        "createOption": "Upload",
                        "uploadSizeBytes": src.upload_size,
                    },
                },
            }
            if gen:
                body["properties"]["hyperVGeneration"] = gen
            disk = compute.disks.begin_create_or_update(resource_group, name, body).result()
        access = compute.disks.begin_grant_access(
            resource_group,
            name,
            {"access": "Write", "durationInSeconds": GRANT_SECONDS},
        ).result()
        sas = access.access_sas
        pieces = chunks(src.runs, src.data_size)
        if resumed:
            pieces = missing(pieces, _present_ranges(sas))
        total = sum(n for _, n in pieces)
        advance = progress(total) if progress else (lambda _n: None)
        sent = put_pages(sas, src.path, pieces, src.footer, src.data_size, threads, advance)
        compute.disks.begin_revoke_access(resource_group, name).result()
        final = compute.disks.get(resource_group, name)
        return UploadResult(
            final.id, sent, time.monotonic() - started, resumed, src.converted,
            src.allocated, src.upload_size, warnings=tuple(warnings),
        )  # fmt: skip
