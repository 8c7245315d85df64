"""The blob endpoint and SAS against hostile clients: Put Page body limits and memory, SAS
scope (blob path, sv, permission codes, duration bounds), an empty page blob, the revoke race,
and disks bigger than this host's filesystem can hold in one file."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient

from tests.api.conftest import PlatformServer
from tests.api.helpers import MIB, make_vhd, upload_pages

FOOTER = 512


def _upload_disk(compute: Any, rg: str, name: str, size: int = 20 * MIB + FOOTER) -> str:
    """An Upload disk with an open Write SAS; returns the SAS URL."""
    compute.disks.begin_create_or_update(
        rg,
        name,
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": size}},
        },
    ).result()
    return (
        compute.disks.begin_grant_access(rg, name, {"access": "Write", "durationInSeconds": 600})
        .result()
        .access_sas
    )


def _page_ranges(sas_url: str) -> list[Any]:
    return list(BlobClient.from_blob_url(sas_url).list_page_ranges())


def _raw_put_page(
    server: PlatformServer,
    sas_url: str,
    *,
    start: int,
    end: int,
    headers: dict[str, str],
    chunks: int = 0,
    chunk_size: int = 1024 * 1024,
) -> tuple[int, str, int]:
    """A Put Page over a raw TLS socket (so sizes and framing can lie). With ``chunks`` the
    body is sent chunked, ``chunks`` x ``chunk_size`` bytes, until the server hangs up.
    Returns (status, error code, bytes sent)."""
    url = urlparse(sas_url)
    ctx = ssl.create_default_context(cafile=server.ca_bundle)
    sock = ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", server.port), timeout=60),
        server_hostname="127.0.0.1",
    )
    head = [
        f"PUT {url.path}?{url.query}&comp=page HTTP/1.1",
        "Host: 127.0.0.1",
        "x-ms-page-write: update",
        f"x-ms-range: bytes={start}-{end - 1}",
        "x-ms-version: 2021-08-06",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    if chunks:
        head.append("Transfer-Encoding: chunked")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = 0
    payload = f"{chunk_size:x}\r\n".encode() + b"\xab" * chunk_size + b"\r\n"
    try:  # the server refuses early and closes: sending then fails
        for _ in range(chunks):
            sock.sendall(payload)
            sent += chunk_size
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = b""
    try:
        while b"\r\n\r\n" not in data or b"</Error>" not in data:
            more = sock.recv(65536)
            if not more:
                break
            data += more
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else 0
    code = ""
    if b"<Code>" in data:
        code = data.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode()
    return status, code, sent


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


# --- Put Page limits -----------------------------------------------------------------------


def test_content_length_must_equal_the_range(
    platform_server: PlatformServer, compute: Any, resource_group: str
) -> None:
    sas = _upload_disk(compute, resource_group, "cl")
    status, code, _ = _raw_put_page(
        platform_server, sas, start=0, end=512, headers={"Content-Length": str(64 * MIB)}
    )
    assert (status, code) == (400, "InvalidHeaderValue")
    assert _page_ranges(sas) == []


def test_put_page_above_4_mib_is_413_before_reading(
    platform_server: PlatformServer, compute: Any, resource_group: str
) -> None:
    sas = _upload_disk(compute, resource_group, "big")
    status, code, _ = _raw_put_page(
        platform_server, sas, start=0, end=8 * MIB, headers={"Content-Length": str(8 * MIB)}
    )
    assert (status, code) == (413, "RequestBodyTooLarge")


def test_chunked_256_mib_body_for_a_512_byte_range_keeps_memory_flat(
    make_server: Any,
) -> None:
    """Was: read to the end before being refused (RSS 130 → 1,103 MiB for 512 MiB). Now the
    body is cut off at the range size + 1 byte and refused; nothing is written."""
    server = make_server()
    client = server.compute_client()
    server.resource_client().resource_groups.create_or_update("mem", {"location": "eastus"})
    sas = _upload_disk(client, "mem", "d")
    pid = server.proc.pid
    before = _rss_kib(pid, "VmRSS")
    status, code, _ = _raw_put_page(
        server, sas, start=0, end=512, headers={}, chunks=256, chunk_size=MIB
    )
    peak = _rss_kib(pid, "VmHWM")
    assert (peak - before) / 1024 < 64, f"server RSS grew {(peak - before) / 1024:.0f} MiB"
    assert status in (400, 0), code  # 0: the server closed before we read its answer
    if status:
        assert code == "InvalidHeaderValue"
    assert _page_ranges(sas) == []


def test_put_page_with_a_bad_content_md5_is_400_not_500(
    platform_server: PlatformServer, compute: Any, resource_group: str
) -> None:
    sas = _upload_disk(compute, resource_group, "md5")
    with pytest.raises(HttpResponseError) as err:
        BlobClient.from_blob_url(sas).upload_page(
            b"\x01" * 512, offset=0, length=512, headers={"Content-MD5": "not base64!"}
        )
    assert err.value.status_code == 400
    assert err.value.error_code == "InvalidHeaderValue"


def test_client_disconnect_mid_put_page_is_logged_as_such(make_server: Any) -> None:
    """Was logged as an unhandled error (ClientDisconnect out of request.body())."""
    server = make_server()
    client = server.compute_client()
    server.resource_client().resource_groups.create_or_update("gone", {"location": "eastus"})
    sas = _upload_disk(client, "gone", "d")
    url = urlparse(sas)
    ctx = ssl.create_default_context(cafile=server.ca_bundle)
    with ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", server.port), timeout=60),
        server_hostname="127.0.0.1",
    ) as sock:
        head = (
            f"PUT {url.path}?{url.query}&comp=page HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"x-ms-page-write: update\r\nx-ms-range: bytes=0-{MIB - 1}\r\n"
            f"Content-Length: {MIB}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"\x07" * (MIB // 4))
    log = server.data_dir.parent / f"{server.data_dir.name}-server.log"
    deadline = time.monotonic() + 30
    while "client disconnected mid-body" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    text = log.read_text()
    assert "PUT /" in text and "nothing written" in text
    assert "unhandled error" not in text and "Traceback" not in text
    assert _page_ranges(sas) == []


# --- SAS scope -----------------------------------------------------------------------------


def test_sas_works_only_on_its_own_blob_path(compute: Any, resource_group: str) -> None:
    sas = _upload_disk(compute, resource_group, "path")
    other = sas.replace("/abcd?", "/other?")
    with pytest.raises(HttpResponseError) as err:
        BlobClient.from_blob_url(other).upload_page(b"\x01" * 512, offset=0, length=512)
    assert err.value.status_code == 403
    assert err.value.error_code == "AuthenticationFailed"
    BlobClient.from_blob_url(sas).upload_page(b"\x01" * 512, offset=0, length=512)


def test_sas_signed_version_cannot_be_changed(compute: Any, resource_group: str) -> None:
    sas = _upload_disk(compute, resource_group, "sv")
    assert "sv=2018-03-28" in sas
    with pytest.raises(HttpResponseError) as err:
        BlobClient.from_blob_url(sas.replace("sv=2018-03-28", "sv=2020-10-02")).upload_page(
            b"\x01" * 512, offset=0, length=512
        )
    assert err.value.status_code == 403
    assert err.value.error_code == "AuthenticationFailed"


def test_read_sas_used_to_write_is_authorization_permission_mismatch(
    compute: Any, resource_group: str, tmp_path: Path
) -> None:
    compute.disks.begin_create_or_update(
        resource_group,
        "ro",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        },
    ).result()
    sas = (
        compute.disks.begin_grant_access(
            resource_group, "ro", {"access": "Read", "durationInSeconds": 600}
        )
        .result()
        .access_sas
    )
    with pytest.raises(HttpResponseError) as err:
        BlobClient.from_blob_url(sas).upload_page(b"\x01" * 512, offset=0, length=512)
    assert err.value.status_code == 403
    assert err.value.error_code == "AuthorizationPermissionMismatch"
    compute.disks.begin_revoke_access(resource_group, "ro").result()


@pytest.mark.parametrize("seconds", [10**12, 2**63, 10**9, 5_184_001, 0, -1])
def test_duration_outside_azure_bounds_is_400_naming_the_bound(
    compute: Any, resource_group: str, seconds: int
) -> None:
    """10**12 and 2**63 were 500s (OverflowError); 10**9 gave a 31-year SAS."""
    name = f"dur{abs(seconds) % 997}"
    compute.disks.begin_create_or_update(
        resource_group,
        name,
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        },
    ).result()
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_grant_access(
            resource_group, name, {"access": "Read", "durationInSeconds": seconds}
        ).result()
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidParameter"
    assert "5184000" in err.value.error.message
    assert compute.disks.get(resource_group, name).disk_state == "Unattached"


def test_duration_of_60_days_is_granted(compute: Any, resource_group: str) -> None:
    compute.disks.begin_create_or_update(
        resource_group,
        "dur60",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        },
    ).result()
    sas = (
        compute.disks.begin_grant_access(
            resource_group, "dur60", {"access": "Read", "durationInSeconds": 5_184_000}
        )
        .result()
        .access_sas
    )
    assert "se=" in sas
    compute.disks.begin_revoke_access(resource_group, "dur60").result()


# --- an empty page blob --------------------------------------------------------------------


def test_get_of_an_empty_page_blob_is_200_with_no_bytes(platform_server: PlatformServer) -> None:
    """What az vm boot-diagnostics get-boot-log reads before the VM wrote to its console
    (was 416, printed as an XML error). The blob and grant are made through the platform's
    own store and SAS code, as the VM module does for boot diagnostics."""
    from azimg.platform import sas
    from azimg.platform.settings import Settings
    from azimg.platform.store import BlobRef, open_store

    settings = Settings(
        data_dir=platform_server.data_dir, regions=tuple(platform_server.regions.split(","))
    )
    store = open_store(settings)
    try:
        blob = BlobRef("eastus", f"bootdiag-{uuid.uuid4().hex}.serialconsole.log")
        store.blobs.create(blob, 0)
        grant = sas.create_grant(
            store, resource_id="/test/empty", blob=blob, permissions="r", duration_seconds=600
        )
        url = sas.url(store, grant, blob_base_url=platform_server.base_url + "/blob")
    finally:
        store.close()
    assert BlobClient.from_blob_url(url).download_blob().readall() == b""
    assert BlobClient.from_blob_url(url).get_blob_properties().size == 0


# --- revoke waits for writes ---------------------------------------------------------------


def test_no_write_lands_after_revoke_and_none_is_lost_before(
    platform_server: PlatformServer, compute: Any, resource_group: str, tmp_path: Path
) -> None:
    """Four writers hammer their own 1 MiB region while endGetAccess runs. Afterwards:
    the blob's last modification (its ETag is the file's mtime) is not later than the
    revoke operation's end, and each region holds exactly the last write acknowledged
    to its writer (was: writes landed up to 91 ms after revoke finished)."""
    vhd = make_vhd(tmp_path, mib=24)
    sas = _upload_disk(compute, resource_group, "race", vhd.stat().st_size)
    upload_pages(sas, vhd)

    acked: dict[int, bytes] = {}
    refused: dict[int, str] = {}
    counts = [0] * 4
    started = threading.Barrier(5)

    def writer(i: int) -> None:
        client = BlobClient.from_blob_url(sas)
        seq = 0
        started.wait()
        while True:
            seq += 1
            payload = f"writer {i} write {seq} ".encode().ljust(MIB, bytes([i + 1]))
            try:
                client.upload_page(payload, offset=(2 + 2 * i) * MIB, length=MIB)
            except HttpResponseError as err:
                refused[i] = str(getattr(err.error_code, "value", err.error_code))
                return
            acked[i] = payload
            counts[i] += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    started.wait()
    deadline = time.monotonic() + 120
    while min(counts) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    base = (
        f"/subscriptions/{platform_server.subscription_id}/resourceGroups/{resource_group}"
        "/providers/Microsoft.Compute/disks/race"
    )
    r = platform_server.arm("POST", f"{base}/endGetAccess?api-version=2025-01-02")
    assert r.status_code == 202, r.text
    status_path = r.headers["Azure-AsyncOperation"][len(platform_server.base_url) :]
    while (op := platform_server.arm("GET", status_path).json())["status"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert op["status"] == "Succeeded", op
    for t in threads:
        t.join(60)
    assert set(refused) == {0, 1, 2, 3}, refused  # every writer was stopped by the revoke
    assert set(refused.values()) <= {"AuthenticationFailed", "OperationNotAllowed"}

    read = (
        compute.disks.begin_grant_access(
            resource_group, "race", {"access": "Read", "durationInSeconds": 600}
        )
        .result()
        .access_sas
    )
    blob = BlobClient.from_blob_url(read)
    etag = blob.get_blob_properties().etag.strip('"')
    modified_ns = int(etag, 16)
    end = datetime.fromisoformat(op["endTime"].replace("Z", "+00:00"))
    end_ns = int(end.timestamp()) * 10**9 + end.microsecond * 1000
    assert modified_ns <= end_ns, f"a write landed {(modified_ns - end_ns) / 1e6:.1f} ms after"
    for i in range(4):
        region = blob.download_blob(offset=(2 + 2 * i) * MIB, length=MIB).readall()
        assert region == acked[i], f"writer {i}: the last acknowledged write is not there"
    compute.disks.begin_revoke_access(resource_group, "race").result()


def test_revoke_waits_for_a_write_in_flight_and_none_lands_after_it(
    platform_server: PlatformServer, compute: Any, resource_group: str, tmp_path: Path
) -> None:
    """Deterministic form of the race: a Put Page has its headers and half its body in when
    endGetAccess starts. The revoke stops admitting writes (a new Put Page is refused with
    409 while it waits) and waits for that write; the write lands (201), then the revoke
    succeeds. Before: the revoke succeeded at once and the write landed after it."""
    vhd = make_vhd(tmp_path, mib=24)
    sas = _upload_disk(compute, resource_group, "slow", vhd.stat().st_size)
    upload_pages(sas, vhd)
    url = urlparse(sas)
    payload = b"slow writer ".ljust(MIB, b"\x5a")
    ctx = ssl.create_default_context(cafile=platform_server.ca_bundle)
    sock = ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", platform_server.port), timeout=60),
        server_hostname="127.0.0.1",
    )
    head = (
        f"PUT {url.path}?{url.query}&comp=page HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"x-ms-page-write: update\r\nx-ms-range: bytes={2 * MIB}-{3 * MIB - 1}\r\n"
        f"x-ms-version: 2021-08-06\r\nContent-Length: {MIB}\r\n\r\n"
    )
    sock.sendall(head.encode() + payload[: MIB // 2])

    base = (
        f"/subscriptions/{platform_server.subscription_id}/resourceGroups/{resource_group}"
        "/providers/Microsoft.Compute/disks/slow"
    )
    r = platform_server.arm("POST", f"{base}/endGetAccess?api-version=2025-01-02")
    assert r.status_code == 202, r.text
    status_path = r.headers["Azure-AsyncOperation"][len(platform_server.base_url) :]
    probe = BlobClient.from_blob_url(sas)
    deadline = time.monotonic() + 60
    while True:  # a new write is refused once the revoke holds the gate
        try:
            probe.upload_page(b"\x01" * 512, offset=4 * MIB, length=512)
        except HttpResponseError as err:
            refusal = str(getattr(err.error_code, "value", err.error_code))
            break
        assert time.monotonic() < deadline
    during = platform_server.arm("GET", status_path).json()["status"]
    sock.sendall(payload[MIB // 2 :])
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    sock.close()
    while (op := platform_server.arm("GET", status_path).json())["status"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    assert during == "InProgress", "the revoke finished while a write was still in flight"
    assert refusal == "OperationNotAllowed"
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    assert op["status"] == "Succeeded", op
    read = (
        compute.disks.begin_grant_access(
            resource_group, "slow", {"access": "Read", "durationInSeconds": 600}
        )
        .result()
        .access_sas
    )
    blob = BlobClient.from_blob_url(read)
    assert blob.download_blob(offset=2 * MIB, length=MIB).readall() == payload  # not lost
    compute.disks.begin_revoke_access(resource_group, "slow").result()


# --- disks larger than one file on this host's filesystem ----------------------------------


def _fs_holds(directory: Path, size: int) -> bool:
    probe = directory / f".probe-{uuid.uuid4().hex}"
    try:
        with open(probe, "wb") as fh:
            fh.truncate(size)
        return True
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)


def _blob_files(server: PlatformServer) -> set[str]:
    return {p.name for p in (server.data_dir / "blobs").rglob("*")}


@pytest.mark.parametrize("tib", [16, 32])
def test_upload_disk_of_16_to_32_tib(
    platform_server: PlatformServer, compute: Any, resource_group: str, tib: int
) -> None:
    """Azure allows 32 TiB; ext4 holds < 16 TiB in one file. Where this host cannot hold it:
    400 naming the limit and the fixes, no disk, no file left (was: 500 'File too large' and
    a zero-byte .tmp). Where it can: created."""
    size = tib * 1024 * 1024 * MIB + FOOTER
    holds = _fs_holds(platform_server.data_dir / "blobs" / "eastus", size)
    before = _blob_files(platform_server)
    poller = lambda: compute.disks.begin_create_or_update(  # noqa: E731
        resource_group,
        f"huge{tib}",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": size}},
        },
    ).result()
    if holds:
        assert poller().disk_state == "ReadyToUpload"
        compute.disks.begin_delete(resource_group, f"huge{tib}").result()
        return
    with pytest.raises(HttpResponseError) as err:
        poller()
    assert err.value.status_code == 400
    assert err.value.error.code == "FileTooLargeForHost"
    assert "ext4: 16 TiB" in err.value.error.message and "XFS" in err.value.error.message
    assert "--blob-url" in err.value.error.message
    assert _blob_files(platform_server) == before
    assert not [d for d in compute.disks.list_by_resource_group(resource_group)]


def test_patch_growing_a_disk_beyond_the_host_limit_is_refused_cleanly(
    platform_server: PlatformServer, compute: Any, resource_group: str
) -> None:
    compute.disks.begin_create_or_update(
        resource_group,
        "grow",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        },
    ).result()
    holds = _fs_holds(platform_server.data_dir / "blobs" / "eastus", 32767 * 1024 * MIB + 512)
    before = _blob_files(platform_server)
    poller = lambda: compute.disks.begin_update(  # noqa: E731
        resource_group, "grow", {"properties": {"diskSizeGB": 32767}}
    ).result()
    if holds:
        assert poller().disk_size_gb == 32767
        return
    with pytest.raises(HttpResponseError) as err:
        poller()
    assert err.value.status_code == 400
    assert err.value.error.code == "FileTooLargeForHost"
    disk = compute.disks.get(resource_group, "grow")
    assert disk.disk_size_gb == 1
    assert _blob_files(platform_server) == before
    sas = (
        compute.disks.begin_grant_access(
            resource_group, "grow", {"access": "Read", "durationInSeconds": 600}
        )
        .result()
        .access_sas
    )
    assert BlobClient.from_blob_url(sas).get_blob_properties().size == 1024 * MIB + FOOTER
    compute.disks.begin_revoke_access(resource_group, "grow").result()
