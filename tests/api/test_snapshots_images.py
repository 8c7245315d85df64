"""Snapshots and managed images through azure-mgmt-compute 39: copies are byte-identical,
and the generalized / same-region / one-source rules answer with Azure's codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.api.helpers import download, make_vhd, upload_disk


@pytest.fixture(scope="module")
def vhd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_vhd(tmp_path_factory.mktemp("vhd-si"), mib=21, seed=7)


def _read(compute: Any, group: Any, rg: str, name: str) -> bytes:
    sas = group.begin_grant_access(rg, name, {"access": "Read", "durationInSeconds": 600}).result()
    data = download(sas.access_sas)
    group.begin_revoke_access(rg, name).result()
    return data


def _image_body(source: dict[str, Any], *, location: str = "eastus", state: str = "Generalized"):
    return {
        "location": location,
        "properties": {
            "storageProfile": {"osDisk": {"osType": "Linux", "osState": state, **source}}
        },
    }


def test_snapshot_image_and_disk_from_image(compute: Any, resource_group: str, vhd: Path) -> None:
    disk = upload_disk(compute, resource_group, "os", vhd)
    snap = compute.snapshots.begin_create_or_update(
        resource_group,
        "os-snap",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk.id}},
        },
    ).result()
    assert snap.provisioning_state == "Succeeded"
    assert snap.os_type == "Linux" and snap.hyper_v_generation == "V2"
    assert snap.creation_data.source_unique_id == disk.unique_id
    assert _read(compute, compute.snapshots, resource_group, "os-snap") == vhd.read_bytes()

    image = compute.images.begin_create_or_update(
        resource_group, "img", _image_body({"snapshot": {"id": snap.id}})
    ).result()
    assert image.provisioning_state == "Succeeded"
    assert image.hyper_v_generation == "V2"
    assert image.storage_profile.os_disk.os_state == "Generalized"

    from_image = compute.disks.begin_create_or_update(
        resource_group,
        "from-image",
        {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "FromImage", "imageReference": {"id": image.id}}
            },
        },
    ).result()
    assert from_image.os_type == "Linux" and from_image.hyper_v_generation == "V2"
    # the image holds its own copy: deleting the snapshot does not change what it gives
    compute.snapshots.begin_delete(resource_group, "os-snap").result()
    assert _read(compute, compute.disks, resource_group, "from-image") == vhd.read_bytes()

    image2 = compute.images.begin_create_or_update(
        resource_group, "img-from-disk", _image_body({"managedDisk": {"id": disk.id}})
    ).result()
    assert image2.storage_profile.os_disk.managed_disk.id == disk.id
    assert {i.name for i in compute.images.list_by_resource_group(resource_group)} == {
        "img",
        "img-from-disk",
    }
    compute.images.begin_delete(resource_group, "img").result()
    with pytest.raises(ResourceNotFoundError):
        compute.images.get(resource_group, "img")


def test_snapshot_of_a_disk_still_uploading_is_refused(compute: Any, resource_group: str) -> None:
    disk = compute.disks.begin_create_or_update(
        resource_group,
        "pending",
        {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "Upload", "uploadSizeBytes": 20 * 1024**2 + 512}
            },
        },
    ).result()
    with pytest.raises(HttpResponseError) as err:
        compute.snapshots.begin_create_or_update(
            resource_group,
            "snap-pending",
            {
                "location": "eastus",
                "properties": {
                    "creationData": {"createOption": "Copy", "sourceResourceId": disk.id}
                },
            },
        ).result()
    assert err.value.error.code == "OperationNotAllowed"


def test_image_rules(compute: Any, resource_group: str, vhd: Path) -> None:
    disk = upload_disk(compute, resource_group, "rules-os", vhd)
    with pytest.raises(HttpResponseError) as err:  # specialized source
        compute.images.begin_create_or_update(
            resource_group,
            "spec",
            _image_body({"managedDisk": {"id": disk.id}}, state="Specialized"),
        ).result()
    assert err.value.error.code == "InvalidParameter"
    assert err.value.error.target == "properties.storageProfile.osDisk.osState"

    with pytest.raises(HttpResponseError) as err:  # another region
        compute.images.begin_create_or_update(
            resource_group,
            "far",
            _image_body({"managedDisk": {"id": disk.id}}, location="westus"),
        ).result()
    assert err.value.error.code == "BadRequest"
    assert "same region" in err.value.error.message

    with pytest.raises(HttpResponseError) as err:  # two sources
        compute.images.begin_create_or_update(
            resource_group,
            "two",
            _image_body({"managedDisk": {"id": disk.id}, "snapshot": {"id": disk.id}}),
        ).result()
    assert err.value.error.code == "InvalidParameter"

    with pytest.raises(HttpResponseError) as err:  # no osState
        compute.images.begin_create_or_update(
            resource_group,
            "nostate",
            {
                "location": "eastus",
                "properties": {
                    "storageProfile": {
                        "osDisk": {"osType": "Linux", "managedDisk": {"id": disk.id}}
                    }
                },
            },
        ).result()
    assert err.value.error.code == "InvalidParameter"

    missing = disk.id[: -len("rules-os")] + "nothing"
    with pytest.raises(ResourceNotFoundError):
        compute.images.begin_create_or_update(
            resource_group, "ghost", _image_body({"managedDisk": {"id": missing}})
        ).result()

    image = compute.images.begin_create_or_update(
        resource_group, "ok", _image_body({"managedDisk": {"id": disk.id}})
    ).result()
    with pytest.raises(HttpResponseError) as err:  # managed images stay in their region
        compute.disks.begin_create_or_update(
            resource_group,
            "far-disk",
            {
                "location": "westus",
                "properties": {
                    "creationData": {
                        "createOption": "FromImage",
                        "imageReference": {"id": image.id},
                    }
                },
            },
        ).result()
    assert err.value.error.code == "BadRequest"


def test_copy_across_regions_is_refused(compute: Any, resource_group: str) -> None:
    disk = compute.disks.begin_create_or_update(
        resource_group,
        "here",
        {
            "location": "eastus",
            "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
        },
    ).result()
    with pytest.raises(HttpResponseError) as err:
        compute.snapshots.begin_create_or_update(
            resource_group,
            "there",
            {
                "location": "westeurope",
                "properties": {
                    "creationData": {"createOption": "Copy", "sourceResourceId": disk.id}
                },
            },
        ).result()
    assert err.value.error.code == "BadRequest"


def test_image_from_a_blob_and_a_disk_from_it(compute: Any, resource_group: str, vhd: Path) -> None:
    upload_disk(compute, resource_group, "blob-src", vhd)
    sas = compute.disks.begin_grant_access(
        resource_group, "blob-src", {"access": "Read", "durationInSeconds": 600}
    ).result()
    image = compute.images.begin_create_or_update(
        resource_group,
        "from-blob",
        {
            "location": "eastus",
            "properties": {
                "hyperVGeneration": "V2",
                "storageProfile": {
                    "osDisk": {
                        "osType": "Linux",
                        "osState": "Generalized",
                        "blobUri": sas.access_sas,
                    }
                },
            },
        },
    ).result()
    assert image.storage_profile.os_disk.blob_uri == sas.access_sas
    assert image.hyper_v_generation == "V2"
    compute.disks.begin_revoke_access(resource_group, "blob-src").result()
    compute.disks.begin_create_or_update(
        resource_group,
        "from-blob-image",
        {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "FromImage", "imageReference": {"id": image.id}}
            },
        },
    ).result()
    assert _read(compute, compute.disks, resource_group, "from-blob-image") == vhd.read_bytes()
