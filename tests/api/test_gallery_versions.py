"""Gallery image versions through the real SDK: sources, rules, latest, replication, crashes.

Sources are disks uploaded through the real page-blob client (azure-storage-blob) to the SAS
endpoint; replicas are checked byte for byte in each region's blob root.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from azimg.platform.resources.gallery_versions.model import replica_key_prefix
from tests.api.conftest import PlatformServer

MIB = 1024 * 1024
PAGE = 4 * MIB


def make_vhd(path: Path, *, mib: int = 20, seed: int = 1) -> Path:
    """A fixed VHD with data spread through it (and holes), made by `azimg convert`."""
    import random
    import subprocess
    import sys

    rng = random.Random(seed)
    raw = path.with_suffix(".raw")
    with open(raw, "wb") as fh:
        fh.truncate(mib * MIB)
        for i in range(0, mib, 2):
            fh.seek(i * MIB)
            fh.write(rng.randbytes(MIB // 2))
    done = subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", "convert", str(raw), str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    raw.unlink()
    return path


def upload_disk(
    compute: Any, rg: str, name: str, vhd: Path, *, location: str = "eastus", gen: str = "V2"
) -> Any:
    """Disk (createOption Upload) ← page writes through azure-storage-blob ← endGetAccess."""
    from azure.storage.blob import BlobClient

    size = vhd.stat().st_size
    compute.disks.begin_create_or_update(
        rg,
        name,
        {
            "location": location,
            "sku": {"name": "Standard_LRS"},
            "properties": {
                "osType": "Linux",
                "hyperVGeneration": gen,
                "creationData": {"createOption": "Upload", "uploadSizeBytes": size},
            },
        },
    ).result()
    sas = compute.disks.begin_grant_access(
        rg, name, {"access": "Write", "durationInSeconds": 3600}
    ).result()
    blob = BlobClient.from_blob_url(sas.access_sas)
    with open(vhd, "rb") as fh:
        for offset in range(0, size, PAGE):
            chunk = fh.read(PAGE)
            if chunk.count(0) != len(chunk):
                blob.upload_page(chunk, offset=offset, length=len(chunk))
    compute.disks.begin_revoke_access(rg, name).result()
    return compute.disks.get(rg, name)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(PAGE):
            h.update(chunk)
    return h.hexdigest()


def replica_files(server: PlatformServer, version_id: str, region: str) -> list[Path]:
    """The OS-disk replica files of a version in one region's blob root."""
    prefix = replica_key_prefix(version_id)
    return sorted((server.data_dir / "blobs" / region).glob(f"{prefix}-r*-os"))


def wait_replicated(
    compute: Any, rg: str, gallery: str, image: str, version: str, *, timeout: float = 120
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = compute.gallery_image_versions.get(
            rg, gallery, image, version, expand="ReplicationStatus"
        )
        if got.replication_status.aggregated_state in ("Completed", "Failed"):
            return got
        assert time.monotonic() < deadline, got.replication_status.as_dict()
        time.sleep(0.2)


def definition(osState: str = "Generalized", gen: str = "V2", os_type: str = "Linux") -> dict:
    return {
        "location": "eastus",
        "properties": {
            "osType": os_type,
            "osState": osState,
            "hyperVGeneration": gen,
            "identifier": {"publisher": "azimg", "offer": "t", "sku": uuid.uuid4().hex[:10]},
        },
    }


def from_disk(disk_id: str, *regions: str, **publishing: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {"targetRegions": [{"name": r} for r in regions]} if regions else {}
    profile.update(publishing)
    return {
        "location": "eastus",
        "properties": {
            "publishingProfile": profile,
            "storageProfile": {"osDiskImage": {"source": {"id": disk_id}}},
        },
    }


@pytest.fixture(scope="module")
def vhd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_vhd(tmp_path_factory.mktemp("vhd") / "source.vhd")


@pytest.fixture(scope="module")
def shared(compute: Any, resources: Any, vhd: Path) -> Iterator[dict[str, Any]]:
    """A group with an uploaded V2 Linux disk and a gallery, shared by this module's tests."""
    rg = f"rg-gv-{uuid.uuid4().hex[:8]}"
    resources.resource_groups.create_or_update(rg, {"location": "eastus"})
    disk = upload_disk(compute, rg, "src-disk", vhd)
    gallery = f"gal{uuid.uuid4().hex[:8]}"  # gallery names are unique per subscription
    compute.galleries.begin_create_or_update(rg, gallery, {"location": "eastus"}).result()
    yield {"rg": rg, "disk": disk, "gallery": gallery}
    resources.resource_groups.begin_delete(rg).result()


@pytest.fixture
def image(compute: Any, shared: dict[str, Any]) -> str:
    name = f"img-{uuid.uuid4().hex[:8]}"
    compute.gallery_images.begin_create_or_update(
        shared["rg"], shared["gallery"], name, definition()
    ).result()
    return name


def test_version_from_a_disk_replicates_real_bytes_to_every_region(
    compute: Any, shared: dict[str, Any], image: str, vhd: Path, platform_server: PlatformServer
) -> None:
    rg, gal = shared["rg"], shared["gallery"]
    body = from_disk(shared["disk"].id, "eastus", "westus", "westeurope")
    body["properties"]["publishingProfile"]["targetRegions"][1]["regionalReplicaCount"] = 2
    version = compute.gallery_image_versions.begin_create_or_update(
        rg, gal, image, "1.0.0", body
    ).result()
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.os_disk_image.source.id == shared["disk"].id
    assert version.storage_profile.os_disk_image.size_in_gb == 1
    got = wait_replicated(compute, rg, gal, image, "1.0.0")
    status = got.replication_status
    assert status.aggregated_state == "Completed"
    assert {(s.region, s.state, s.progress) for s in status.summary} == {
        ("eastus", "Completed", 100),
        ("westus", "Completed", 100),
        ("westeurope", "Completed", 100),
    }
    expected = sha256(vhd)
    counts = {"eastus": 1, "westus": 2, "westeurope": 1}
    for region, count in counts.items():
        files = replica_files(platform_server, version.id, region)
        assert len(files) == count, region
        assert all(sha256(f) == expected for f in files), region
    # without $expand there is no replication status
    plain = compute.gallery_image_versions.get(rg, gal, image, "1.0.0")
    assert plain.replication_status is None

    compute.gallery_image_versions.begin_delete(rg, gal, image, "1.0.0").result()
    with pytest.raises(ResourceNotFoundError):
        compute.gallery_image_versions.get(rg, gal, image, "1.0.0")
    for region in counts:
        assert replica_files(platform_server, version.id, region) == []


def test_deleting_a_version_keeps_bytes_a_clone_links(
    compute: Any,
    shared: dict[str, Any],
    image: str,
    vhd: Path,
    tmp_path: Path,
    platform_server: PlatformServer,
) -> None:
    """A VM disk cloned from a version holds its own hard link of the replica (NOTES-gallery.md):
    deleting the version, then re-creating it under the same name from other bytes, leaves the
    linked bytes as they were, because a version only ever unlinks its own names."""
    rg, gal = shared["rg"], shared["gallery"]
    version = compute.gallery_image_versions.begin_create_or_update(
        rg, gal, image, "1.0.0", from_disk(shared["disk"].id)
    ).result()
    wait_replicated(compute, rg, gal, image, "1.0.0")
    (replica,) = replica_files(platform_server, version.id, "eastus")
    link = replica.with_name(f"osdisk-{uuid.uuid4().hex}.base")
    os.link(replica, link)  # what the VM clone does (compute's side)
    try:
        compute.gallery_image_versions.begin_delete(rg, gal, image, "1.0.0").result()
        assert replica_files(platform_server, version.id, "eastus") == []
        assert sha256(link) == sha256(vhd)

        other_vhd = make_vhd(tmp_path / "other.vhd", seed=7)
        other = upload_disk(compute, rg, f"other-{uuid.uuid4().hex[:6]}", other_vhd)
        compute.gallery_image_versions.begin_create_or_update(
            rg, gal, image, "1.0.0", from_disk(other.id)
        ).result()
        wait_replicated(compute, rg, gal, image, "1.0.0")
        (again,) = replica_files(platform_server, version.id, "eastus")
        assert again.stat().st_ino != link.stat().st_ino
        assert sha256(again) == sha256(other_vhd)
        assert sha256(link) == sha256(vhd)
    finally:
        link.unlink()
        compute.gallery_image_versions.begin_delete(rg, gal, image, "1.0.0").result()


def test_latest_is_the_highest_not_excluded_version(
    compute: Any, shared: dict[str, Any], image: str
) -> None:
    rg, gal, disk = shared["rg"], shared["gallery"], shared["disk"].id
    for name, exclude in (("1.2.0", False), ("1.10.0", False), ("2.0.0", True)):
        compute.gallery_image_versions.begin_create_or_update(
            rg, gal, image, name, from_disk(disk, excludeFromLatest=exclude)
        ).result()
    latest = compute.gallery_image_versions.get(rg, gal, image, "latest")
    assert latest.name == "1.10.0"
    # un-excluding 2.0.0 makes it latest
    compute.gallery_image_versions.begin_update(
        rg, gal, image, "2.0.0", {"properties": {"publishingProfile": {"excludeFromLatest": False}}}
    ).result()
    assert compute.gallery_image_versions.get(rg, gal, image, "latest").name == "2.0.0"
    names = sorted(
        v.name for v in compute.gallery_image_versions.list_by_gallery_image(rg, gal, image)
    )
    assert names == ["1.10.0", "1.2.0", "2.0.0"]
    # versions first, then the definition (Azure's delete order)
    with pytest.raises(ResourceExistsError) as info:
        compute.gallery_images.begin_delete(rg, gal, image)
    assert info.value.error.code == "CannotDeleteResource"
    for name in names:
        compute.gallery_image_versions.begin_delete(rg, gal, image, name).result()
    with pytest.raises(HttpResponseError) as err:
        compute.gallery_image_versions.get(rg, gal, image, "latest")
    assert "There is no latest image version exists for" in str(err.value)
    compute.gallery_images.begin_delete(rg, gal, image).result()


def test_a_disk_made_from_a_version_in_another_region_has_the_version_bytes(
    compute: Any, shared: dict[str, Any], image: str, vhd: Path
) -> None:
    rg, gal = shared["rg"], shared["gallery"]
    version = compute.gallery_image_versions.begin_create_or_update(
        rg, gal, image, "1.0.0", from_disk(shared["disk"].id, "eastus", "westus")
    ).result()
    wait_replicated(compute, rg, gal, image, "1.0.0")
    disk = compute.disks.begin_create_or_update(
        rg,
        "from-gallery",
        {
            "location": "westus",
            "properties": {
                "creationData": {
                    "createOption": "FromImage",
                    "galleryImageReference": {"id": version.id},
                }
            },
        },
    ).result()
    assert (disk.os_type, disk.hyper_v_generation) == ("Linux", "V2")
    assert disk.disk_size_bytes == vhd.stat().st_size - 512
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(
            rg,
            "nowhere",
            {
                "location": "westeurope",
                "properties": {
                    "creationData": {
                        "createOption": "FromImage",
                        "galleryImageReference": {"id": version.id},
                    }
                },
            },
        ).result()
    assert "is not available in westeurope region" in str(err.value)


def _put_error(compute: Any, rg: str, gal: str, image: str, name: str, body: dict) -> Any:
    with pytest.raises(HttpResponseError) as info:
        compute.gallery_image_versions.begin_create_or_update(rg, gal, image, name, body).result()
    err = info.value
    return err.response.status_code, err.error.code, str(err)


def test_version_rules_get_azures_error_codes(
    compute: Any, shared: dict[str, Any], image: str, resources: Any, vhd: Path
) -> None:
    rg, gal, disk = shared["rg"], shared["gallery"], shared["disk"].id
    cases: list[tuple[str, dict[str, Any], int, str, str]] = [
        ("1.0", from_disk(disk), 400, "InvalidParameter", "Major(int).Minor(int).Patch(int)"),
        ("1.0.0.0", from_disk(disk), 400, "InvalidParameter", "image version name is invalid"),
        (
            "1.0.0",
            from_disk(disk, "westus"),
            400,
            "InvalidParameter",
            "must contain the location of image version",
        ),
        (
            "1.0.0",
            from_disk(disk, "eastus", "East US"),
            400,
            "InvalidParameter",
            "Duplicate regions are not allowed",
        ),
        ("1.0.0", from_disk(disk, "eastus", "mars"), 400, "InvalidParameter", "not available"),
        (
            "1.0.0",
            from_disk(disk, replicaCount=0),
            400,
            "InvalidParameter",
            "out of range",
        ),
        (
            "1.0.0",
            from_disk(disk, storageAccountType="UltraSSD_LRS"),
            400,
            "InvalidParameter",
            "storageAccountType",
        ),
        (
            "1.0.0",
            {
                "location": "eastus",
                "properties": {"storageProfile": {"source": {"id": disk}}},
            },
            400,
            "InvalidParameter",
            "must either be a managed image, virtual machine or another gallery image version",
        ),
        (
            "1.0.0",
            {
                "location": "eastus",
                "properties": {
                    "storageProfile": {
                        "source": {"id": disk.replace("/disks/", "/images/")},
                        "osDiskImage": {"source": {"id": disk}},
                    }
                },
            },
            400,
            "InvalidParameter",
            "One and only one source type",
        ),
        (
            "1.0.0",
            from_disk(disk.replace("src-disk", "no-such-disk")),
            400,
            "InvalidParameter",
            "Source was not found",
        ),
        (
            "1.0.0",
            {**from_disk(disk, "westus"), "location": "westus"},
            400,
            "InvalidParameter",
            "is in the same region as gallery image version",
        ),
    ]
    for name, body, status, code, text in cases:
        got = _put_error(compute, rg, gal, image, name, body)
        assert got[:2] == (status, code), (name, body, got)
        assert text in got[2], (name, got)


@pytest.mark.parametrize(
    ("osState", "gen", "os_type", "text"),
    [
        ("Generalized", "V1", "Linux", "has a different Hypervisor generation ['V2']"),
        ("Generalized", "V2", "Windows", "has a different OS type ['Linux']"),
    ],
)
def test_source_must_match_the_definition(
    compute: Any, shared: dict[str, Any], osState: str, gen: str, os_type: str, text: str
) -> None:
    rg, gal = shared["rg"], shared["gallery"]
    name = f"img-{uuid.uuid4().hex[:8]}"
    compute.gallery_images.begin_create_or_update(
        rg, gal, name, definition(osState, gen, os_type)
    ).result()
    got = _put_error(compute, rg, gal, name, "1.0.0", from_disk(shared["disk"].id))
    assert got[:2] == (400, "BadRequest")
    assert text in got[2]


def test_versions_need_their_definition(compute: Any, shared: dict[str, Any]) -> None:
    rg, gal = shared["rg"], shared["gallery"]
    with pytest.raises(ResourceNotFoundError) as info:
        compute.gallery_image_versions.begin_create_or_update(
            rg, gal, "no-such-image", "1.0.0", from_disk(shared["disk"].id)
        )
    assert info.value.error.code == "ParentResourceNotFound"


def test_block_deletion_before_end_of_life(
    compute: Any, shared: dict[str, Any], image: str
) -> None:
    rg, gal = shared["rg"], shared["gallery"]
    body = from_disk(
        shared["disk"].id, endOfLifeDate=(datetime.now(UTC) + timedelta(days=30)).isoformat()
    )
    body["properties"]["safetyProfile"] = {"blockDeletionBeforeEndOfLife": True}
    compute.gallery_image_versions.begin_create_or_update(rg, gal, image, "1.0.0", body).result()
    with pytest.raises(ResourceExistsError) as info:
        compute.gallery_image_versions.begin_delete(rg, gal, image, "1.0.0")
    assert info.value.error.code == "DeleteGalleryImageVersionBlockedBeforeEndOfLife"
    compute.gallery_image_versions.begin_update(
        rg,
        gal,
        image,
        "1.0.0",
        {"properties": {"safetyProfile": {"blockDeletionBeforeEndOfLife": False}}},
    ).result()
    compute.gallery_image_versions.begin_delete(rg, gal, image, "1.0.0").result()


def test_source_and_storage_type_cannot_change(
    compute: Any, shared: dict[str, Any], image: str
) -> None:
    rg, gal, disk = shared["rg"], shared["gallery"], shared["disk"].id
    compute.gallery_image_versions.begin_create_or_update(
        rg, gal, image, "1.0.0", from_disk(disk)
    ).result()
    other = disk.replace("src-disk", "other-disk")
    got = _put_error(compute, rg, gal, image, "1.0.0", from_disk(other))
    assert got[:2] == (400, "PropertyChangeNotAllowed")
    assert "storageProfile.osDiskImage.source.id' is not allowed" in got[2]
    got = _put_error(
        compute, rg, gal, image, "1.0.0", from_disk(disk, storageAccountType="Premium_LRS")
    )
    assert got[:2] == (400, "PropertyChangeNotAllowed")
    # adding a region to an existing version replicates it there
    compute.gallery_image_versions.begin_create_or_update(
        rg, gal, image, "1.0.0", from_disk(disk, "eastus", "westus")
    ).result()
    got = wait_replicated(compute, rg, gal, image, "1.0.0")
    assert [s.region for s in got.replication_status.summary] == ["eastus", "westus"]
    assert got.replication_status.aggregated_state == "Completed"


# --- failures and crashes (private servers) ---------------------------------------------------


def _private_setup(server: PlatformServer, vhd: Path) -> tuple[Any, str, Any]:
    compute = server.compute_client()
    server.resource_client().resource_groups.create_or_update("rg", {"location": "eastus"})
    disk = upload_disk(compute, "rg", "src", vhd)
    compute.galleries.begin_create_or_update("rg", "gal", {"location": "eastus"}).result()
    compute.gallery_images.begin_create_or_update("rg", "gal", "img", definition()).result()
    return compute, "rg", disk


def test_replication_fails_per_region_when_its_storage_is_broken(
    make_server: Callable[[], PlatformServer], vhd: Path
) -> None:
    server = make_server()
    compute, rg, disk = _private_setup(server, vhd)
    broken = server.data_dir / "blobs" / "westeurope"
    for child in broken.iterdir():
        child.unlink()
    broken.rmdir()
    broken.write_bytes(b"")  # the region's blob root is no longer a directory
    poller = compute.gallery_image_versions.begin_create_or_update(
        rg, "gal", "img", "1.0.0", from_disk(disk.id, "eastus", "westus", "westeurope")
    )
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    assert "ReplicationFailed" in str(info.value)
    got = compute.gallery_image_versions.get(rg, "gal", "img", "1.0.0", expand="ReplicationStatus")
    assert got.provisioning_state == "Failed"
    assert got.replication_status.aggregated_state == "Failed"
    states = {s.region: s for s in got.replication_status.summary}
    assert (states["eastus"].state, states["westus"].state) == ("Completed", "Completed")
    assert states["westeurope"].state == "Failed"
    assert states["westeurope"].details.startswith("Replication failed in this region due to")
    # the failed version is not "latest"
    with pytest.raises(HttpResponseError):
        compute.gallery_image_versions.get(rg, "gal", "img", "latest")
    # once the storage is back, PUT again retries the failed region (as Azure advises)
    broken.unlink()
    broken.mkdir()
    compute.gallery_image_versions.begin_create_or_update(
        rg, "gal", "img", "1.0.0", from_disk(disk.id, "eastus", "westus", "westeurope")
    ).result()
    got = wait_replicated(compute, rg, "gal", "img", "1.0.0")
    assert got.replication_status.aggregated_state == "Completed"
    assert compute.gallery_image_versions.get(rg, "gal", "img", "latest").name == "1.0.0"


@pytest.mark.slow
def test_kill_9_mid_replication_resumes_to_completed(
    make_server: Callable[[], PlatformServer], vhd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZIMG_REPLICATION_RATE", str(2 * MIB))  # ~5 s per replica
    server = make_server()
    compute, rg, disk = _private_setup(server, vhd)
    compute.gallery_image_versions.begin_create_or_update(
        rg, "gal", "img", "1.0.0", from_disk(disk.id, "eastus", "westus", "westeurope")
    )
    deadline = time.monotonic() + 60
    while True:
        got = compute.gallery_image_versions.get(
            rg, "gal", "img", "1.0.0", expand="ReplicationStatus"
        )
        progress = [s.progress for s in got.replication_status.summary]
        if any(0 < p < 100 for p in progress):
            break
        assert time.monotonic() < deadline, got.replication_status.as_dict()
        time.sleep(0.1)
    assert got.provisioning_state == "Creating"
    server.kill()
    monkeypatch.delenv("AZIMG_REPLICATION_RATE")
    server.start()
    compute = server.compute_client()
    got = wait_replicated(compute, rg, "gal", "img", "1.0.0")
    assert got.replication_status.aggregated_state == "Completed"
    assert got.provisioning_state == "Succeeded"
    expected = sha256(vhd)
    for region in ("eastus", "westus", "westeurope"):
        (file,) = replica_files(server, got.id, region)
        assert sha256(file) == expected, region


def test_kill_9_with_the_source_gone_ends_failed_not_creating(
    make_server: Callable[[], PlatformServer], vhd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZIMG_REPLICATION_RATE", str(2 * MIB))
    server = make_server()
    compute, rg, disk = _private_setup(server, vhd)
    compute.gallery_image_versions.begin_create_or_update(
        rg, "gal", "img", "1.0.0", from_disk(disk.id, "eastus", "westus")
    )
    deadline = time.monotonic() + 60
    while True:
        got = compute.gallery_image_versions.get(
            rg, "gal", "img", "1.0.0", expand="ReplicationStatus"
        )
        if any(0 < s.progress < 100 for s in got.replication_status.summary):
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server.kill()
    # while the platform is down the source's bytes vanish (say, a disk restored elsewhere)
    for src in (server.data_dir / "blobs" / "eastus").iterdir():
        if not src.name.startswith("v-"):
            src.unlink()
    monkeypatch.delenv("AZIMG_REPLICATION_RATE")
    server.start()
    compute = server.compute_client()
    got = wait_replicated(compute, rg, "gal", "img", "1.0.0")
    assert got.provisioning_state == "Failed"
    assert got.replication_status.aggregated_state == "Failed"
    assert all(s.state in ("Completed", "Failed") for s in got.replication_status.summary)


def test_expand_must_be_known(platform_server: PlatformServer, shared: dict[str, Any]) -> None:
    path = (
        f"/subscriptions/{platform_server.subscription_id}/resourceGroups/{shared['rg']}"
        "/providers/Microsoft.Compute/galleries/gal/images/x/versions?api-version=2026-03-03"
        "&$expand=Everything"
    )
    resp = platform_server.arm("GET", path)
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, "InvalidParameter")


def _managed_image(compute: Any, rg: str, disk_id: str) -> Any:
    snap = compute.snapshots.begin_create_or_update(
        rg,
        f"snap-{uuid.uuid4().hex[:6]}",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk_id}},
        },
    ).result()
    image = compute.images.begin_create_or_update(
        rg,
        f"mi-{uuid.uuid4().hex[:6]}",
        {
            "location": "eastus",
            "properties": {
                "hyperVGeneration": "V2",
                "storageProfile": {
                    "osDisk": {
                        "osType": "Linux",
                        "osState": "Generalized",
                        "managedDisk": {"id": disk_id},
                    }
                },
            },
        },
    ).result()
    return snap, image


def test_sources_snapshot_managed_image_and_another_version(
    compute: Any, shared: dict[str, Any], image: str, vhd: Path, platform_server: PlatformServer
) -> None:
    rg, gal = shared["rg"], shared["gallery"]
    snap, managed = _managed_image(compute, rg, shared["disk"].id)
    expected = sha256(vhd)
    made = {}
    for name, storage in (
        ("1.0.0", {"osDiskImage": {"source": {"id": snap.id}, "hostCaching": "ReadOnly"}}),
        ("2.0.0", {"source": {"id": managed.id}}),
    ):
        made[name] = compute.gallery_image_versions.begin_create_or_update(
            rg,
            gal,
            image,
            name,
            {
                "location": "eastus",
                "properties": {
                    "publishingProfile": {
                        "targetRegions": [{"name": "eastus"}, {"name": "westus"}]
                    },
                    "storageProfile": storage,
                },
            },
        ).result()
    assert made["1.0.0"].storage_profile.os_disk_image.host_caching == "ReadOnly"
    assert made["2.0.0"].storage_profile.source.id == managed.id
    # a version of another version, in its westus replica's region
    other = f"img-{uuid.uuid4().hex[:8]}"
    compute.gallery_images.begin_create_or_update(rg, gal, other, definition()).result()
    copy = compute.gallery_image_versions.begin_create_or_update(
        rg,
        gal,
        other,
        "3.0.0",
        {
            "location": "westus",
            "properties": {"storageProfile": {"source": {"id": made["2.0.0"].id}}},
        },
    ).result()
    assert copy.location == "westus"
    for version in (*made.values(), copy):
        wait_replicated(compute, rg, gal, version.id.split("/")[-3], version.name)
        for region in ("westus",):
            (f,) = replica_files(platform_server, version.id, region)
            assert sha256(f) == expected, version.name


def test_os_state_must_match_the_definition(compute: Any, shared: dict[str, Any]) -> None:
    rg, gal = shared["rg"], shared["gallery"]
    _, managed = _managed_image(compute, rg, shared["disk"].id)
    name = f"img-{uuid.uuid4().hex[:8]}"
    compute.gallery_images.begin_create_or_update(rg, gal, name, definition("Specialized")).result()
    got = _put_error(
        compute,
        rg,
        gal,
        name,
        "1.0.0",
        {"location": "eastus", "properties": {"storageProfile": {"source": {"id": managed.id}}}},
    )
    assert got[:2] == (400, "BadRequest")
    assert (
        f"The resource with id '{managed.id}' has a different OS state ['Generalized'] than "
        "the parent gallery image OS state ['Specialized']."
    ) in got[2]


def test_patch_adding_a_region_replicates_there(
    compute: Any, shared: dict[str, Any], image: str, vhd: Path, platform_server: PlatformServer
) -> None:
    rg, gal = shared["rg"], shared["gallery"]
    v = compute.gallery_image_versions.begin_create_or_update(
        rg, gal, image, "1.0.0", from_disk(shared["disk"].id)
    ).result()
    assert [t.name for t in v.publishing_profile.target_regions] == ["eastus"]
    regions = [{"name": "eastus"}, {"name": "westeurope", "regionalReplicaCount": 2}]
    patched = compute.gallery_image_versions.begin_update(
        rg, gal, image, "1.0.0", {"properties": {"publishingProfile": {"targetRegions": regions}}}
    ).result()  # PATCH answers 200 Updating; the SDK polls the resource to Succeeded
    assert patched.provisioning_state == "Succeeded"
    assert [
        (t.name, t.regional_replica_count) for t in patched.publishing_profile.target_regions
    ] == [
        ("eastus", 1),
        ("westeurope", 2),
    ]
    files = replica_files(platform_server, v.id, "westeurope")
    assert len(files) == 2 and all(sha256(f) == sha256(vhd) for f in files)
    # and removing it frees its replicas
    compute.gallery_image_versions.begin_update(
        rg,
        gal,
        image,
        "1.0.0",
        {"properties": {"publishingProfile": {"targetRegions": [{"name": "eastus"}]}}},
    ).result()
    assert replica_files(platform_server, v.id, "westeurope") == []


def test_delete_during_replication_leaves_nothing_behind(
    make_server: Callable[[], PlatformServer], vhd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZIMG_REPLICATION_RATE", str(2 * MIB))
    server = make_server()
    compute, rg, disk = _private_setup(server, vhd)
    version = compute.gallery_image_versions.begin_create_or_update(
        rg, "gal", "img", "1.0.0", from_disk(disk.id, "eastus", "westus")
    )
    deadline = time.monotonic() + 60
    while True:
        got = compute.gallery_image_versions.get(
            rg, "gal", "img", "1.0.0", expand="ReplicationStatus"
        )
        if any(0 < s.progress < 100 for s in got.replication_status.summary):
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    compute.gallery_image_versions.begin_delete(rg, "gal", "img", "1.0.0").result()
    with pytest.raises(HttpResponseError) as err:
        version.result()  # the create's operation ends Failed, not Succeeded
    assert "was deleted before its replication finished" in str(err.value)
    with pytest.raises(ResourceNotFoundError):
        compute.gallery_image_versions.get(rg, "gal", "img", "1.0.0")
    deadline = time.monotonic() + 30
    while any(replica_files(server, got.id, r) for r in ("eastus", "westus")):
        assert time.monotonic() < deadline, "replica blobs left behind"
        time.sleep(0.2)


def test_latest_for_a_deployment_depends_on_its_region(
    compute: Any, shared: dict[str, Any], image: str, tmp_path: Path
) -> None:
    """2.0.0 is excluded from latest in westus only: a disk from the definition id gets 2.0.0
    in eastus and 1.0.0 in westus (told apart by their sizes)."""
    rg, gal = shared["rg"], shared["gallery"]
    bigger = upload_disk(compute, rg, "bigger", make_vhd(tmp_path / "b.vhd", mib=22, seed=3))
    compute.gallery_image_versions.begin_create_or_update(
        rg, gal, image, "1.0.0", from_disk(shared["disk"].id, "eastus", "westus")
    ).result()
    body = from_disk(bigger.id, "eastus", "westus")
    body["properties"]["publishingProfile"]["targetRegions"][1]["excludeFromLatest"] = True
    compute.gallery_image_versions.begin_create_or_update(rg, gal, image, "2.0.0", body).result()
    definition_id = compute.gallery_images.get(rg, gal, image).id
    sizes = {}
    for region in ("eastus", "westus"):
        disk = compute.disks.begin_create_or_update(
            rg,
            f"latest-{region}",
            {
                "location": region,
                "properties": {
                    "creationData": {
                        "createOption": "FromImage",
                        "galleryImageReference": {"id": definition_id},
                    }
                },
            },
        ).result()
        sizes[region] = disk.disk_size_bytes
    assert sizes == {"eastus": 22 * MIB, "westus": shared["disk"].disk_size_bytes}


def test_resource_group_delete_mid_replication_frees_everything(
    make_server: Callable[[], PlatformServer], vhd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZIMG_REPLICATION_RATE", str(2 * MIB))
    server = make_server()
    compute, rg, disk = _private_setup(server, vhd)
    poller = compute.gallery_image_versions.begin_create_or_update(
        rg, "gal", "img", "1.0.0", from_disk(disk.id, "eastus", "westus", "westeurope")
    )
    deadline = time.monotonic() + 60
    while True:
        got = compute.gallery_image_versions.get(
            rg, "gal", "img", "1.0.0", expand="ReplicationStatus"
        )
        if any(0 < s.progress < 100 for s in got.replication_status.summary):
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server.resource_client().resource_groups.begin_delete(rg).result()
    with pytest.raises(HttpResponseError):
        poller.result()
    deadline = time.monotonic() + 30
    while left := [
        p.name
        for r in ("eastus", "westus", "westeurope")
        for p in (server.data_dir / "blobs" / r).iterdir()
    ]:
        assert time.monotonic() < deadline, f"blobs left behind: {left}"
        time.sleep(0.2)
