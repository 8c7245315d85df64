"""The platform checks every image it is given: an upload at endGetAccess, a managed image and
a gallery version when created; `azimg check --resource` prints what it found."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tests.api.conftest import PlatformServer
from tests.api.test_upload_cli import AZIMG, run_upload
from tests.unit.test_generalize import make_disk


def resource_check(server: PlatformServer, rid: str) -> subprocess.CompletedProcess[str]:
    argv = [*AZIMG, "check", "--resource", rid, "--output", "json"]
    argv += ["--data-dir", str(server.data_dir), "--port", str(server.port)]
    return subprocess.run(argv, capture_output=True, text=True)


def failed(doc: dict[str, Any]) -> set[str]:
    return {f["rule"] for f in doc["findings"] if f["status"] == "fail"}


def test_an_upload_without_agent_is_flagged_at_end_of_upload_and_in_what_is_made_of_it(
    platform_server: PlatformServer, compute: Any, resource_group: str, tmp_path: Path
) -> None:
    image = make_disk(tmp_path, agent=False)
    up = run_upload(platform_server, image, resource_group, "noagent", "--force",
                    "--hyper-v-generation", "V2")  # fmt: skip
    assert up.returncode == 0, up.stderr
    disk_id = json.loads(up.stdout)["id"]
    got = resource_check(platform_server, disk_id)
    assert got.returncode == 1, got.stderr  # blockers
    doc = json.loads(got.stdout)
    assert doc["resourceId"].lower() == disk_id.lower() and doc["error"] is None
    assert "AGT-01" in failed(doc)

    img = compute.images.begin_create_or_update(
        resource_group,
        "img",
        {"location": "eastus", "properties": {"hyperVGeneration": "V2", "storageProfile": {
            "osDisk": {"osType": "Linux", "osState": "Generalized",
                       "managedDisk": {"id": disk_id}}}}},
    ).result()  # fmt: skip
    assert "AGT-01" in failed(json.loads(resource_check(platform_server, img.id).stdout))

    gallery = f"g{uuid.uuid4().hex[:6]}"
    compute.galleries.begin_create_or_update(
        resource_group, gallery, {"location": "eastus"}
    ).result()
    compute.gallery_images.begin_create_or_update(
        resource_group, gallery, "d",
        {"location": "eastus", "properties": {"osType": "Linux", "osState": "Generalized",
         "hyperVGeneration": "V2",
         "identifier": {"publisher": "p", "offer": "o", "sku": uuid.uuid4().hex[:8]}}},
    ).result()  # fmt: skip
    version = compute.gallery_image_versions.begin_create_or_update(
        resource_group, gallery, "d", "1.0.0",
        {"location": "eastus", "properties": {
            "storageProfile": {"osDiskImage": {"source": {"id": disk_id}}}}},
    ).result()  # fmt: skip
    assert "AGT-01" in failed(json.loads(resource_check(platform_server, version.id).stdout))


def test_a_resource_never_checked_is_a_clear_error(platform_server: PlatformServer) -> None:
    rid = "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/disks/nothing"
    got = resource_check(platform_server, rid)
    assert got.returncode == 2 and "no check recorded" in got.stderr
