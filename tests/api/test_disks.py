"""Disks through azure-mgmt-compute 39 and azure-storage-blob: every createOption, the upload
flow, read access, and the rules Azure enforces (with Azure's error codes)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.api.conftest import PlatformServer
from tests.api.helpers import MIB, download, make_vhd, upload_disk, upload_pages


@pytest.fixture(scope="module")
def vhd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_vhd(tmp_path_factory.mktemp("vhd"), mib=24)


def test_upload_flow_and_read_back(compute: Any, resource_group: str, vhd: Path) -> None:
    size = vhd.stat().st_size
    created = compute.disks.begin_create_or_update(
        resource_group,
        "up1",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "hyperVGeneration": "V2",
                "creationData": {"createOption": "Upload", "uploadSizeBytes": size},
            },
        },
    ).result()
    assert created.disk_state == "ReadyToUpload"
    assert created.disk_size_bytes == size - 512
    assert created.disk_size_gb == 1
    access = compute.disks.begin_grant_access(
        resource_group, "up1", {"access": "Write", "durationInSeconds": 3600}
    ).result()
    assert compute.disks.get(resource_group, "up1").disk_state == "ActiveUpload"
    upload_pages(access.access_sas, vhd)
    compute.disks.begin_revoke_access(resource_group, "up1").result()
    disk = compute.disks.get(resource_group, "up1")
    assert disk.disk_state == "Unattached"
    assert disk.os_type == "Linux" and disk.hyper_v_generation == "V2"

    read = compute.disks.begin_grant_access(
        resource_group, "up1", {"access": "Read", "durationInSeconds": 600}
    ).result()
    assert compute.disks.get(resource_group, "up1").disk_state == "ActiveSAS"
    assert download(read.access_sas) == vhd.read_bytes()
    compute.disks.begin_revoke_access(resource_group, "up1").result()
    assert compute.disks.get(resource_group, "up1").disk_state == "Unattached"


def test_page_ranges_report_what_was_written(compute: Any, resource_group: str) -> None:
    from azure.storage.blob import BlobClient

    size = 20 * MIB + 512
    compute.disks.begin_create_or_update(
        resource_group,
        "ranges",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": size}},
        },
    ).result()
    sas = compute.disks.begin_grant_access(
        resource_group, "ranges", {"access": "Write", "durationInSeconds": 600}
    ).result()
    client = BlobClient.from_blob_url(sas.access_sas)
    client.upload_page(b"\x01" * 1024, offset=0, length=1024)
    client.upload_page(b"\x02" * 512, offset=1024, length=512)
    client.upload_page(b"\x03" * 4096, offset=MIB, length=4096)
    client.clear_page(offset=MIB, length=512)
    props = client.get_blob_properties()
    assert props.size == size and props.blob_type == "PageBlob"
    found = [(r.start, r.end) for r in client.list_page_ranges()]
    assert found == [(0, 1535), (MIB + 512, MIB + 4095)]


def test_misaligned_and_oversized_page_writes_are_refused(
    compute: Any, resource_group: str
) -> None:
    from azure.storage.blob import BlobClient

    size = 20 * MIB + 512
    compute.disks.begin_create_or_update(
        resource_group,
        "align",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": size}},
        },
    ).result()
    sas = compute.disks.begin_grant_access(
        resource_group, "align", {"access": "Write", "durationInSeconds": 600}
    ).result()
    client = BlobClient.from_blob_url(sas.access_sas)
    # the SDK checks alignment itself, so the misaligned write goes out raw
    raw = requests.put(
        sas.access_sas + "&comp=page",
        data=b"\x00" * 512,
        headers={
            "x-ms-page-write": "update",
            "x-ms-range": "bytes=100-611",
            "x-ms-version": "2021-08-06",
        },
        timeout=10,
    )
    assert raw.status_code == 416
    assert raw.headers["x-ms-error-code"] == "InvalidPageRange"
    with pytest.raises(HttpResponseError) as err:
        client.upload_page(b"\x00" * 512, offset=size, length=512)
    assert err.value.error_code == "InvalidPageRange"
    with pytest.raises(HttpResponseError) as err:
        client.upload_page(b"\x00" * (4 * MIB + 512), offset=0, length=4 * MIB + 512)
    assert err.value.error_code == "RequestBodyTooLarge"


def test_tampered_or_revoked_sas_is_refused(compute: Any, resource_group: str) -> None:
    from azure.storage.blob import BlobClient

    compute.disks.begin_create_or_update(
        resource_group,
        "sas",
        {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "Upload", "uploadSizeBytes": 20 * MIB + 512}
            },
        },
    ).result()
    sas = compute.disks.begin_grant_access(
        resource_group, "sas", {"access": "Write", "durationInSeconds": 600}
    ).result()
    tampered = sas.access_sas.replace("sp=rw", "sp=rwd")
    with pytest.raises(HttpResponseError) as err:
        BlobClient.from_blob_url(tampered).upload_page(b"\x01" * 512, offset=0, length=512)
    assert err.value.status_code == 403
    assert err.value.error_code == "AuthenticationFailed"


def test_upload_size_must_be_whole_mib_plus_512(compute: Any, resource_group: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            resource_group,
            "badsize",
            {
                "location": "eastus",
                "properties": {
                    "creationData": {"createOption": "Upload", "uploadSizeBytes": 20 * MIB + 1000}
                },
            },
        ).result()
    assert err.value.error.code == "BadRequest"
    assert "must be a multiple of MiB" in err.value.error.message


def test_upload_size_limits(compute: Any, resource_group: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            resource_group,
            "small",
            {
                "location": "eastus",
                "properties": {
                    "creationData": {"createOption": "Upload", "uploadSizeBytes": 19 * MIB + 512}
                },
            },
        ).result()
    assert err.value.error.code == "BadRequest"


def test_end_access_with_a_bad_footer_is_invalid_vhd(compute: Any, resource_group: str) -> None:
    compute.disks.begin_create_or_update(
        resource_group,
        "nofooter",
        {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "Upload", "uploadSizeBytes": 20 * MIB + 512}
            },
        },
    ).result()
    sas = compute.disks.begin_grant_access(
        resource_group, "nofooter", {"access": "Write", "durationInSeconds": 600}
    ).result()
    from azure.storage.blob import BlobClient

    BlobClient.from_blob_url(sas.access_sas).upload_page(b"\x07" * 512, offset=0, length=512)
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_revoke_access(resource_group, "nofooter").result()
    assert "InvalidVhd" in str(err.value)
    assert "conectix" in str(err.value)
    assert compute.disks.get(resource_group, "nofooter").disk_state == "ActiveUpload"


def test_empty_disk_is_a_fixed_vhd_of_that_size(compute: Any, resource_group: str) -> None:
    disk = compute.disks.begin_create_or_update(
        resource_group,
        "empty1",
        {
            "location": "eastus",
            "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
        },
    ).result()
    assert disk.disk_size_gb == 1 and disk.disk_state == "Unattached"
    assert disk.provisioning_state == "Succeeded"
    sas = compute.disks.begin_grant_access(
        resource_group, "empty1", {"access": "Read", "durationInSeconds": 600}
    ).result()
    from azure.storage.blob import BlobClient

    client = BlobClient.from_blob_url(sas.access_sas)
    assert client.get_blob_properties().size == 1024**3 + 512
    footer = client.download_blob(offset=1024**3, length=512).readall()
    assert footer[:8] == b"conectix"


def test_empty_without_size_is_refused(compute: Any, resource_group: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            resource_group,
            "nosize",
            {"location": "eastus", "properties": {"creationData": {"createOption": "Empty"}}},
        ).result()
    assert err.value.error.code == "InvalidParameter"


def test_copy_and_import_give_identical_bytes(compute: Any, resource_group: str, vhd: Path) -> None:
    upload_disk(compute, resource_group, "src", vhd)
    src_id = compute.disks.get(resource_group, "src").id
    copy = compute.disks.begin_create_or_update(
        resource_group,
        "copy1",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": src_id}},
        },
    ).result()
    assert copy.provisioning_state == "Succeeded"
    assert copy.os_type == "Linux" and copy.hyper_v_generation == "V2"
    assert copy.creation_data.source_unique_id == compute.disks.get(resource_group, "src").unique_id
    read = compute.disks.begin_grant_access(
        resource_group, "copy1", {"access": "Read", "durationInSeconds": 600}
    ).result()
    assert download(read.access_sas) == vhd.read_bytes()
    imported = compute.disks.begin_create_or_update(
        resource_group,
        "import1",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "creationData": {"createOption": "Import", "sourceUri": read.access_sas},
            },
        },
    ).result()
    assert imported.disk_size_bytes == vhd.stat().st_size - 512
    compute.disks.begin_revoke_access(resource_group, "copy1").result()
    read2 = compute.disks.begin_grant_access(
        resource_group, "import1", {"access": "Read", "durationInSeconds": 600}
    ).result()
    assert download(read2.access_sas) == vhd.read_bytes()


def test_copy_of_missing_source_is_404(compute: Any, resource_group: str) -> None:
    sub = compute._config.subscription_id
    src = (
        f"/subscriptions/{sub}/resourceGroups/{resource_group}"
        "/providers/Microsoft.Compute/disks/nope"
    )
    with pytest.raises(ResourceNotFoundError) as err:
        compute.disks.begin_create_or_update(
            resource_group,
            "copy2",
            {
                "location": "eastus",
                "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": src}},
            },
        ).result()
    assert err.value.error.code == "ResourceNotFound"


def test_write_access_to_a_normal_disk_is_refused(compute: Any, resource_group: str) -> None:
    compute.disks.begin_create_or_update(
        resource_group,
        "plain",
        {
            "location": "eastus",
            "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
        },
    ).result()
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_grant_access(
            resource_group, "plain", {"access": "Write", "durationInSeconds": 600}
        ).result()
    assert err.value.error.code == "OperationNotAllowed"


def test_creation_data_cannot_change(compute: Any, resource_group: str) -> None:
    compute.disks.begin_create_or_update(
        resource_group,
        "fixed",
        {
            "location": "eastus",
            "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
        },
    ).result()
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            resource_group,
            "fixed",
            {
                "location": "eastus",
                "properties": {
                    "creationData": {"createOption": "Upload", "uploadSizeBytes": 20 * MIB + 512}
                },
            },
        ).result()
    assert err.value.error.code == "PropertyChangeNotAllowed"


def test_disk_in_missing_group_is_404(compute: Any) -> None:
    with pytest.raises(ResourceNotFoundError) as err:
        compute.disks.get(f"rg-missing-{uuid.uuid4().hex[:6]}", "d")
    assert err.value.error.code == "ResourceGroupNotFound"


def test_missing_disk_is_404_with_azure_wording(compute: Any, resource_group: str) -> None:
    with pytest.raises(ResourceNotFoundError) as err:
        compute.disks.get(resource_group, "ghost")
    assert err.value.error.code == "ResourceNotFound"
    assert f"'Microsoft.Compute/disks/ghost' under resource group '{resource_group}'" in str(
        err.value.error.message
    )


def test_invalid_names_locations_and_options(compute: Any, resource_group: str) -> None:
    body = {
        "location": "eastus",
        "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
    }
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(resource_group, "bad name!", body).result()
    assert err.value.error.code == "InvalidResourceName"
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            resource_group, "d1", {**body, "location": "moon"}
        ).result()
    assert err.value.error.code == "LocationNotAvailableForResourceType"
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            resource_group,
            "d1",
            {"location": "eastus", "properties": {"creationData": {"createOption": "Sideways"}}},
        ).result()
    assert err.value.error.code == "InvalidParameter"
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            resource_group,
            "d1",
            {"location": "eastus", "properties": {"creationData": {"createOption": "Attach"}}},
        ).result()
    assert err.value.error.code == "InvalidParameter"


def test_list_and_delete(compute: Any, resource_group: str) -> None:
    body = {
        "location": "eastus",
        "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
    }
    for name in ("l1", "l2"):
        compute.disks.begin_create_or_update(resource_group, name, body).result()
    assert {d.name for d in compute.disks.list_by_resource_group(resource_group)} >= {"l1", "l2"}
    assert {"l1", "l2"} <= {d.name for d in compute.disks.list()}
    compute.disks.begin_delete(resource_group, "l1").result()
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(resource_group, "l1")


def test_disk_with_active_sas_cannot_be_deleted(compute: Any, resource_group: str) -> None:
    body = {
        "location": "eastus",
        "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
    }
    compute.disks.begin_create_or_update(resource_group, "busy", body).result()
    compute.disks.begin_grant_access(
        resource_group, "busy", {"access": "Read", "durationInSeconds": 600}
    ).result()
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_delete(resource_group, "busy").result()
    assert err.value.error.code == "OperationNotAllowed"


def test_unsupported_property_is_refused_by_name(
    platform_server: PlatformServer, resource_group: str
) -> None:
    r = platform_server.arm(
        "PUT",
        f"/subscriptions/{platform_server.subscription_id}/resourceGroups/{resource_group}"
        "/providers/Microsoft.Compute/disks/x?api-version=2026-03-02",
        json={
            "location": "eastus",
            "properties": {
                "diskSizeGB": 1,
                "creationData": {"createOption": "Empty"},
                "warpDrive": True,
            },
        },
    )
    assert r.status_code == 400
    assert r.json()["error"]["target"] == "properties.warpDrive"


def _upload_disk_shell(compute: Any, resource_group: str, name: str) -> None:
    compute.disks.begin_create_or_update(
        resource_group,
        name,
        {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "Upload", "uploadSizeBytes": 20 * MIB + 512}
            },
        },
    ).result()


def test_read_access_to_a_disk_awaiting_upload_is_refused(
    compute: Any, resource_group: str
) -> None:
    _upload_disk_shell(compute, resource_group, "waiting")
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_grant_access(
            resource_group, "waiting", {"access": "Read", "durationInSeconds": 600}
        ).result()
    assert err.value.error.code == "OperationNotAllowed"


def test_sas_stops_working_after_end_access_and_after_expiry(
    compute: Any, resource_group: str, vhd: Path
) -> None:
    import time

    from azure.storage.blob import BlobClient

    upload_disk(compute, resource_group, "expiring", vhd)
    sas = compute.disks.begin_grant_access(
        resource_group, "expiring", {"access": "Read", "durationInSeconds": 600}
    ).result()
    compute.disks.begin_revoke_access(resource_group, "expiring").result()
    with pytest.raises(HttpResponseError) as err:
        BlobClient.from_blob_url(sas.access_sas).get_blob_properties()
    assert err.value.status_code == 403

    short = compute.disks.begin_grant_access(
        resource_group, "expiring", {"access": "Read", "durationInSeconds": 1}
    ).result()
    client = BlobClient.from_blob_url(short.access_sas)
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        try:
            client.get_blob_properties()
        except HttpResponseError as e:
            status = e.status_code
            break
        time.sleep(0.2)
    assert status == 403


def test_write_after_upload_ended_is_refused(compute: Any, resource_group: str, vhd: Path) -> None:
    from azure.storage.blob import BlobClient

    size = vhd.stat().st_size
    compute.disks.begin_create_or_update(
        resource_group,
        "sealed",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": size}},
        },
    ).result()
    sas = compute.disks.begin_grant_access(
        resource_group, "sealed", {"access": "Write", "durationInSeconds": 600}
    ).result()
    upload_pages(sas.access_sas, vhd)
    compute.disks.begin_revoke_access(resource_group, "sealed").result()
    with pytest.raises(HttpResponseError) as err:
        BlobClient.from_blob_url(sas.access_sas).upload_page(b"\x01" * 512, offset=0, length=512)
    assert err.value.status_code == 403


@pytest.mark.parametrize(
    ("properties", "target"),
    [
        ({"diskSizeGB": 0, "creationData": {"createOption": "Empty"}}, "properties.diskSizeGB"),
        ({"diskSizeGB": 40000, "creationData": {"createOption": "Empty"}}, "properties.diskSizeGB"),
        (
            {"diskSizeGB": 1, "osType": "Plan9", "creationData": {"createOption": "Empty"}},
            "properties.osType",
        ),
        (
            {"diskSizeGB": 1, "hyperVGeneration": "V3", "creationData": {"createOption": "Empty"}},
            "properties.hyperVGeneration",
        ),
        (
            {"creationData": {"createOption": "Import", "sourceUri": "https://elsewhere/x/y.vhd"}},
            "properties.creationData.sourceUri",
        ),
        ({"creationData": {"createOption": "Copy"}}, "properties.creationData.sourceResourceId"),
        ({"creationData": {"createOption": "Upload"}}, "properties.creationData.uploadSizeBytes"),
    ],
    ids=[
        "size-0",
        "size-huge",
        "os-type",
        "generation",
        "import-elsewhere",
        "copy-no-src",
        "upload-no-size",
    ],
)
def test_invalid_disk_properties(
    compute: Any, resource_group: str, properties: dict[str, Any], target: str
) -> None:
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            resource_group, "invalid", {"location": "eastus", "properties": properties}
        ).result()
    assert err.value.error.code == "InvalidParameter"
    assert err.value.error.target == target


def test_not_implemented_options_are_refused_by_name(compute: Any, resource_group: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            resource_group,
            "restore",
            {"location": "eastus", "properties": {"creationData": {"createOption": "Restore"}}},
        ).result()
    assert err.value.status_code == 501
    assert err.value.error.code == "NotImplemented"


def test_snapshot_read_access_downloads_the_vhd(
    compute: Any, resource_group: str, vhd: Path
) -> None:
    disk = upload_disk(compute, resource_group, "to-snap", vhd)
    compute.snapshots.begin_create_or_update(
        resource_group,
        "snap-read",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk.id}},
        },
    ).result()
    sas = compute.snapshots.begin_grant_access(
        resource_group, "snap-read", {"access": "Read", "durationInSeconds": 600}
    ).result()
    assert compute.snapshots.get(resource_group, "snap-read").disk_state == "ActiveSAS"
    assert download(sas.access_sas) == vhd.read_bytes()


def test_grow_moves_the_footer_and_keeps_the_data(
    compute: Any, resource_group: str, vhd: Path
) -> None:
    from azure.storage.blob import BlobClient

    from azimg.disk.vhd import Footer

    upload_disk(compute, resource_group, "grow", vhd)
    data = vhd.read_bytes()
    old_footer = Footer.unpack(data[-512:], at=len(data) - 512)
    with pytest.raises(HttpResponseError) as err:  # shrinking is refused
        compute.disks.begin_update(
            resource_group, "grow", {"properties": {"diskSizeGB": 0}}
        ).result()
    assert err.value.error.code == "InvalidParameter"
    grown = compute.disks.begin_update(
        resource_group, "grow", {"properties": {"diskSizeGB": 2}}
    ).result()
    assert grown.disk_size_gb == 2 and grown.disk_size_bytes == 2 * 1024**3
    sas = compute.disks.begin_grant_access(
        resource_group, "grow", {"access": "Read", "durationInSeconds": 600}
    ).result()
    client = BlobClient.from_blob_url(sas.access_sas)
    assert client.get_blob_properties().size == 2 * 1024**3 + 512
    head = client.download_blob(offset=0, length=len(data)).readall()
    assert head[: len(data) - 512] == data[:-512]  # the guest's bytes did not move
    assert head[len(data) - 512 :] == bytes(512)  # the old footer is gone
    raw = client.download_blob(offset=2 * 1024**3, length=512).readall()
    footer = Footer.unpack(raw, at=2 * 1024**3)
    assert footer.current_size == 2 * 1024**3 and footer.unique_id == old_footer.unique_id
    with pytest.raises(HttpResponseError) as err:  # not while a SAS is out
        compute.disks.begin_update(
            resource_group, "grow", {"properties": {"diskSizeGB": 3}}
        ).result()
    assert err.value.error.code == "OperationNotAllowed"
    compute.disks.begin_revoke_access(resource_group, "grow").result()
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_update(
            resource_group, "grow", {"properties": {"diskSizeGB": 1}}
        ).result()
    assert err.value.error.code == "BadRequest"


def test_parallel_page_writes_land_intact(
    compute: Any, resource_group: str, tmp_path: Path
) -> None:
    """Four writers at once (as azcopy and the SDK's max_concurrency do)."""
    from concurrent.futures import ThreadPoolExecutor

    from azure.storage.blob import BlobClient

    data = os.urandom(24 * MIB)
    vhd = tmp_path / "dense.raw"
    vhd.write_bytes(data)
    from azimg.disk.convert import convert

    convert(vhd, tmp_path / "dense.vhd")
    image = (tmp_path / "dense.vhd").read_bytes()
    compute.disks.begin_create_or_update(
        resource_group,
        "parallel",
        {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "Upload", "uploadSizeBytes": len(image)}
            },
        },
    ).result()
    sas = compute.disks.begin_grant_access(
        resource_group, "parallel", {"access": "Write", "durationInSeconds": 600}
    ).result()
    client = BlobClient.from_blob_url(sas.access_sas)
    step = 1024 * 1024

    def put(off: int) -> None:
        chunk = image[off : off + step]
        client.upload_page(chunk, offset=off, length=len(chunk))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, range(0, len(image) - 512, step)))
    client.upload_page(image[-512:], offset=len(image) - 512, length=512)
    assert [(r.start, r.end) for r in client.list_page_ranges()] == [(0, len(image) - 1)]
    compute.disks.begin_revoke_access(resource_group, "parallel").result()
    read = compute.disks.begin_grant_access(
        resource_group, "parallel", {"access": "Read", "durationInSeconds": 600}
    ).result()
    assert download(read.access_sas) == image


@pytest.mark.parametrize(
    ("properties", "code", "target"),
    [
        ({"diskSizeGB": "one"}, "InvalidRequestContent", "properties.diskSizeGB"),
        (
            {"creationData": {"createOption": "FromImage", "imageReference": {"lun": "x"}}},
            "InvalidRequestContent",
            "properties.creationData.imageReference.lun",
        ),
        (
            {"creationData": {"createOption": "Empty"}, "encryption": {"type": 5}},
            "InvalidRequestContent",
            "properties.encryption.type",
        ),
        (
            {"creationData": {"createOption": "Empty", "bogus": 1}},
            "NotSupported",
            "properties.creationData.bogus",
        ),
        (
            {"creationData": {"createOption": "Empty"}, "securityProfile": {"nope": "x"}},
            "NotSupported",
            "properties.securityProfile.nope",
        ),
        (
            {"creationData": {"createOption": "Empty"}, "diskSizeGB": 0},
            "InvalidParameter",
            "properties.diskSizeGB",
        ),
        (
            {"creationData": {"createOption": "Upload", "uploadSizeBytes": 20971521}},
            "BadRequest",
            "properties.creationData.uploadSizeBytes",
        ),
        (
            {"creationData": {"createOption": "Upload"}},
            "InvalidParameter",
            "properties.creationData.uploadSizeBytes",
        ),
    ],
)
def test_a_wrong_body_anywhere_is_a_400_naming_the_property(
    platform_server: PlatformServer,
    resource_group: str,
    properties: dict[str, Any],
    code: str,
    target: str,
) -> None:
    """Typed bodies at the edge: nested objects are models too, so a wrong type or an unknown
    property deep in the body is Azure's 400 with ``target``, never a 500."""
    sub = platform_server.subscription_id
    r = platform_server.arm(
        "PUT",
        f"/subscriptions/{sub}/resourceGroups/{resource_group}/providers/Microsoft.Compute"
        "/disks/typed?api-version=2025-01-02",
        json={"location": "eastus", "properties": properties},
    )
    assert r.status_code in (400, 501), r.text
    error = r.json()["error"]
    assert (error["code"], error.get("target")) == (code, target)
    assert (
        platform_server.arm(
            "GET",
            f"/subscriptions/{sub}/resourceGroups/{resource_group}/providers/Microsoft.Compute"
            "/disks/typed?api-version=2025-01-02",
        ).status_code
        == 404
    )  # nothing half-written
