"""The issue's whole flow through the real SDKs, on one server:

`azimg convert` → VHD → disk (Upload, page blobs through azure-storage-blob) → snapshot →
managed image → gallery → definition → version replicated to two more regions → `latest`
with every region Completed → the bytes of each region's copy equal the uploaded VHD (read
from the blob roots and downloaded through a Read SAS of a disk made in the farthest region)
→ deletes in Azure's dependency order.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.api.conftest import PlatformServer
from tests.api.test_gallery_versions import (
    make_vhd,
    replica_files,
    sha256,
    upload_disk,
    wait_replicated,
)

REGIONS = ("eastus", "westus", "westeurope")


def download(sas_url: str) -> str:
    """sha256 of a blob downloaded through a Read SAS with azure-storage-blob."""
    from azure.storage.blob import BlobClient

    h = hashlib.sha256()
    for chunk in BlobClient.from_blob_url(sas_url).download_blob().chunks():
        h.update(chunk)
    return h.hexdigest()


@pytest.mark.slow
def test_upload_to_replicated_gallery_version_and_back(
    compute: Any, resources: Any, platform_server: PlatformServer, tmp_path: Path
) -> None:
    vhd = make_vhd(tmp_path / "debian.vhd", mib=24, seed=7)
    expected = sha256(vhd)
    rg = f"rg-flow-{uuid.uuid4().hex[:8]}"
    gal = f"flow{uuid.uuid4().hex[:8]}"  # gallery names are unique per subscription
    resources.resource_groups.create_or_update(rg, {"location": "eastus"})
    try:
        # disk ← upload
        disk = upload_disk(compute, rg, "os-upload", vhd)
        assert disk.disk_state == "Unattached"
        # snapshot ← disk
        snap = compute.snapshots.begin_create_or_update(
            rg,
            "os-snap",
            {
                "location": "eastus",
                "properties": {
                    "creationData": {"createOption": "Copy", "sourceResourceId": disk.id}
                },
            },
        ).result()
        assert snap.provisioning_state == "Succeeded"
        # managed image ← snapshot
        image = compute.images.begin_create_or_update(
            rg,
            "debian-img",
            {
                "location": "eastus",
                "properties": {
                    "hyperVGeneration": "V2",
                    "storageProfile": {
                        "osDisk": {
                            "osType": "Linux",
                            "osState": "Generalized",
                            "snapshot": {"id": snap.id},
                        }
                    },
                },
            },
        ).result()
        assert image.provisioning_state == "Succeeded"
        # gallery → definition → version from the managed image, to two more regions
        compute.galleries.begin_create_or_update(rg, gal, {"location": "eastus"}).result()
        compute.gallery_images.begin_create_or_update(
            rg,
            gal,
            "debian-12",
            {
                "location": "eastus",
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "hyperVGeneration": "V2",
                    "identifier": {"publisher": "azimg", "offer": "debian", "sku": "12-gen2"},
                },
            },
        ).result()
        version = compute.gallery_image_versions.begin_create_or_update(
            rg,
            gal,
            "debian-12",
            "1.0.0",
            {
                "location": "eastus",
                "properties": {
                    "publishingProfile": {"targetRegions": [{"name": r} for r in REGIONS]},
                    "storageProfile": {"source": {"id": image.id}},
                },
            },
        ).result()
        assert version.provisioning_state == "Succeeded"
        assert version.storage_profile.source.id == image.id

        # latest, with the replication status of every region
        wait_replicated(compute, rg, gal, "debian-12", "1.0.0")
        latest = compute.gallery_image_versions.get(
            rg, gal, "debian-12", "latest", expand="ReplicationStatus"
        )
        assert latest.name == "1.0.0"
        assert latest.replication_status.aggregated_state == "Completed"
        assert sorted(
            (s.region, s.state, s.progress) for s in latest.replication_status.summary
        ) == [(r, "Completed", 100) for r in sorted(REGIONS)]

        # the bytes in each region's copy are the uploaded VHD's
        for region in REGIONS:
            (copy,) = replica_files(platform_server, version.id, region)
            assert sha256(copy) == expected, region
        # …and they come back out through the API: a disk from `latest` in westeurope
        far = compute.disks.begin_create_or_update(
            rg,
            "far-disk",
            {
                "location": "westeurope",
                "properties": {
                    "creationData": {
                        "createOption": "FromImage",
                        "galleryImageReference": {"id": version.id.rsplit("/", 1)[0] + "/latest"},
                    }
                },
            },
        ).result()
        assert (far.location, far.disk_size_bytes) == ("westeurope", vhd.stat().st_size - 512)
        sas = compute.disks.begin_grant_access(
            rg, "far-disk", {"access": "Read", "durationInSeconds": 600}
        ).result()
        assert download(sas.access_sas) == expected
        compute.disks.begin_revoke_access(rg, "far-disk").result()

        # deletes follow Azure's dependency rules
        with pytest.raises(ResourceExistsError) as err:
            compute.galleries.begin_delete(rg, gal)
        assert err.value.error.code == "CannotDeleteResource"
        with pytest.raises(ResourceExistsError) as err:
            compute.gallery_images.begin_delete(rg, gal, "debian-12")
        assert err.value.error.code == "CannotDeleteResource"
        # the version owns its copies: its sources may go first
        compute.images.begin_delete(rg, "debian-img").result()
        compute.snapshots.begin_delete(rg, "os-snap").result()
        compute.disks.begin_delete(rg, "os-upload").result()
        still = compute.gallery_image_versions.get(
            rg, gal, "debian-12", "latest", expand="ReplicationStatus"
        )
        assert still.replication_status.aggregated_state == "Completed"
        for region in REGIONS:
            (copy,) = replica_files(platform_server, version.id, region)
            assert sha256(copy) == expected, region
        # versions, then the definition, then the gallery
        compute.gallery_image_versions.begin_delete(rg, gal, "debian-12", "1.0.0").result()
        for region in REGIONS:
            assert replica_files(platform_server, version.id, region) == []
        with pytest.raises(HttpResponseError) as err:
            compute.gallery_image_versions.get(rg, gal, "debian-12", "latest")
        assert "There is no latest image version exists for" in str(err.value)
        compute.gallery_images.begin_delete(rg, gal, "debian-12").result()
        compute.galleries.begin_delete(rg, gal).result()
        with pytest.raises(ResourceNotFoundError):
            compute.galleries.get(rg, gal)
        # a disk made from the version is a copy: it outlives the version
        assert compute.disks.get(rg, "far-disk").disk_state == "Unattached"
    finally:
        resources.resource_groups.begin_delete(rg).result()
