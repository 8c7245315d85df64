"""kill -9 the platform mid-work: state is durable and work goes on (issue 5, point 6)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient

from tests.api.conftest import PlatformServer
from tests.api.helpers import PAGE_CHUNK, download, make_vhd


@pytest.mark.slow
def test_kill_mid_upload_then_upload_goes_on(make_server: Any, tmp_path: Path) -> None:
    vhd = make_vhd(tmp_path, mib=40, seed=3)
    data = vhd.read_bytes()
    server: PlatformServer = make_server()
    compute, resources = server.compute_client(), server.resource_client()
    resources.resource_groups.create_or_update("crash", {"location": "eastus"})
    compute.disks.begin_create_or_update(
        "crash",
        "os",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "creationData": {"createOption": "Upload", "uploadSizeBytes": len(data)},
            },
        },
    ).result()
    sas = compute.disks.begin_grant_access(
        "crash", "os", {"access": "Write", "durationInSeconds": 3600}
    ).result()
    client = BlobClient.from_blob_url(sas.access_sas)
    half = (len(data) // 2) // PAGE_CHUNK * PAGE_CHUNK
    for off in range(0, half, PAGE_CHUNK):
        client.upload_page(data[off : off + PAGE_CHUNK], offset=off, length=PAGE_CHUNK)

    server.kill()
    server.start()

    compute, resources = server.compute_client(), server.resource_client()
    assert compute.disks.get("crash", "os").disk_state == "ActiveUpload"
    client = BlobClient.from_blob_url(sas.access_sas)  # the same SAS URL still works
    ranges = [(r.start, r.end) for r in client.list_page_ranges()]
    assert ranges and ranges[-1][1] < half  # what was written before the crash is there
    for off in range(half, len(data), PAGE_CHUNK):
        chunk = data[off : off + PAGE_CHUNK]
        client.upload_page(chunk, offset=off, length=len(chunk))
    compute.disks.begin_revoke_access("crash", "os").result()
    assert compute.disks.get("crash", "os").disk_state == "Unattached"
    read = compute.disks.begin_grant_access(
        "crash", "os", {"access": "Read", "durationInSeconds": 600}
    ).result()
    assert download(read.access_sas) == data


@pytest.mark.slow
def test_kill_during_copies_leaves_nothing_stuck(make_server: Any, tmp_path: Path) -> None:
    """Copies in flight (or queued) when the server dies end Succeeded after the restart:
    the operation rows outlive the process and resumable jobs run again."""
    vhd = make_vhd(tmp_path, mib=64, seed=5)
    data = vhd.read_bytes()
    server: PlatformServer = make_server()
    compute, resources = server.compute_client(), server.resource_client()
    resources.resource_groups.create_or_update("crash2", {"location": "eastus"})
    from tests.api.helpers import upload_disk

    src = upload_disk(compute, "crash2", "src", vhd)
    names = [f"copy{i}" for i in range(6)]
    for name in names:  # no .result(): the 202s come back while the copies run or queue
        compute.disks.begin_create_or_update(
            "crash2",
            name,
            {
                "location": "eastus",
                "properties": {
                    "creationData": {"createOption": "Copy", "sourceResourceId": src.id}
                },
            },
        )
    server.kill()
    server.start()
    compute = server.compute_client()
    deadline = time.monotonic() + 60
    states = {}
    while time.monotonic() < deadline:
        states = {n: compute.disks.get("crash2", n).provisioning_state for n in names}
        if all(s != "Creating" for s in states.values()):
            break
        time.sleep(0.2)
    assert states == dict.fromkeys(names, "Succeeded")
    for name in (names[0], names[-1]):
        read = compute.disks.begin_grant_access(
            "crash2", name, {"access": "Read", "durationInSeconds": 600}
        ).result()
        assert download(read.access_sas) == data


@pytest.mark.slow
def test_platform_on_postgresql(make_server: Any, postgres_url: str, tmp_path: Path) -> None:
    """The same server with its metadata in PostgreSQL: upload, copy, read back, restart."""
    from tests.api.helpers import upload_disk

    vhd = make_vhd(tmp_path, mib=20, seed=9)
    server: PlatformServer = make_server(database_url=postgres_url)
    compute, resources = server.compute_client(), server.resource_client()
    resources.resource_groups.create_or_update("pg", {"location": "westus"})
    disk = upload_disk(compute, "pg", "os", vhd)
    assert disk.disk_state == "Unattached"
    with pytest.raises(HttpResponseError, match="same region"):
        compute.snapshots.begin_create_or_update(
            "pg",
            "snap",
            {
                "location": "westus",  # the disk is in eastus
                "properties": {
                    "creationData": {"createOption": "Copy", "sourceResourceId": disk.id}
                },
            },
        ).result()
    server.kill()
    server.start()
    compute = server.compute_client()
    assert [d.name for d in compute.disks.list_by_resource_group("pg")] == ["os"]
    read = compute.disks.begin_grant_access(
        "pg", "os", {"access": "Read", "durationInSeconds": 600}
    ).result()
    assert download(read.access_sas) == vhd.read_bytes()
    server.resource_client().resource_groups.begin_delete("pg").result()
    assert server.data_dir.joinpath("metadata.sqlite").exists() is False


@pytest.mark.slow
def test_platform_with_blobs_in_the_blob_api(
    make_server: Any, azurite_url: str, tmp_path: Path
) -> None:
    """Bytes in a storage account (Azurite) instead of files: upload, copy, read back."""
    from tests.api.conftest import AZURITE_KEY
    from tests.api.helpers import upload_disk

    vhd = make_vhd(tmp_path, mib=20, seed=11)
    server: PlatformServer = make_server(
        env={"AZIMG_BLOB_URL": azurite_url, "AZIMG_BLOB_KEY": AZURITE_KEY}
    )
    compute, resources = server.compute_client(), server.resource_client()
    resources.resource_groups.create_or_update("blobapi", {"location": "eastus"})
    disk = upload_disk(compute, "blobapi", "os", vhd)
    assert disk.disk_state == "Unattached"
    compute.snapshots.begin_create_or_update(
        "blobapi",
        "snap",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk.id}},
        },
    ).result()
    read = compute.snapshots.begin_grant_access(
        "blobapi", "snap", {"access": "Read", "durationInSeconds": 600}
    ).result()
    assert download(read.access_sas) == vhd.read_bytes()
    assert not any(server.data_dir.joinpath("blobs").glob("*/*"))  # nothing went to files


@pytest.mark.slow
def test_kill_while_creates_are_being_written_leaves_no_resource_without_its_operation(
    make_server: Any, tmp_path: Path
) -> None:
    """The disk document and its operation row are one transaction (issue 9, point 5): kill
    -9 lands while Copy PUTs are still arriving, and after the restart every disk that
    exists finishes (its operation resumes) — none stays Creating with nothing behind it."""
    import threading

    import requests

    vhd = make_vhd(tmp_path, mib=24, seed=9)
    server: PlatformServer = make_server()
    compute, resources = server.compute_client(), server.resource_client()
    resources.resource_groups.create_or_update("crash3", {"location": "eastus"})
    from tests.api.helpers import upload_disk

    src = upload_disk(compute, "crash3", "src", vhd)
    token = server.token()
    base = (
        f"{server.base_url}/subscriptions/{server.subscription_id}/resourceGroups/crash3"
        "/providers/Microsoft.Compute/disks"
    )
    body = {
        "location": "eastus",
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": src.id}},
    }
    answered = threading.Event()

    def put(i: int) -> None:
        try:
            r = requests.put(
                f"{base}/c{i}?api-version=2025-01-02",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                verify=server.ca_bundle,
                timeout=30,
            )
            if r.status_code in (200, 202):
                answered.set()
        except requests.RequestException:
            pass  # the server died under this request: exactly the case under test

    threads = [threading.Thread(target=put, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    answered.wait(30)  # at least one create is durable; the others are in flight or queued
    server.kill()
    for t in threads:
        t.join(60)
    # straight after the crash, in the database it left: no Creating disk without its row
    import sqlalchemy as sa

    from azimg.platform.store.sql import SqlMetadataStore, operations

    meta = SqlMetadataStore(f"sqlite:///{server.data_dir / 'metadata.sqlite'}")
    try:
        creating = [
            d.id.lower()
            for d in meta.list(type="Microsoft.Compute/disks")
            if d.body.get("provisioning_state") == "Creating"
        ]
        with meta.engine.connect() as conn:
            with_ops = {r.resource_id.lower() for r in conn.execute(sa.select(operations))}
    finally:
        meta.close()
    assert [rid for rid in creating if rid not in with_ops] == []
    server.start()
    compute = server.compute_client()
    disks = [d for d in compute.disks.list_by_resource_group("crash3") if d.name != "src"]
    assert disks, "no create reached the store before the kill"
    deadline = time.monotonic() + 120  # a liveness bound only: the copies run again
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {d.name: compute.disks.get("crash3", d.name).provisioning_state for d in disks}
        if all(s != "Creating" for s in states.values()):
            break
        time.sleep(0.2)
    assert set(states.values()) == {"Succeeded"}, states
