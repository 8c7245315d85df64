"""`azimg publish` against `azimg serve`: the definition's rules before any byte, a version
replicated to two regions, and a VM captured with --from-vm."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tests.api.conftest import PlatformServer
from tests.api.test_upload_cli import AZIMG, sparse_raw


def run_publish(server: PlatformServer, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [*AZIMG, "publish", *args, "--output", "json"]
    cmd += ["--data-dir", str(server.data_dir), "--port", str(server.port)]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_publish_to_two_regions_gives_completed_replicas_in_both(
    platform_server: PlatformServer, compute: Any, resource_group: str, tmp_path: Path
) -> None:
    raw = sparse_raw(tmp_path / "img.raw", mib=24)
    sku = uuid.uuid4().hex[:8]
    proc = run_publish(
        platform_server, str(raw), "-g", resource_group, "--gallery", "gal", "--definition",
        "def1", "--version", "1.0.0", "--target-regions", "eastus", "westus=2",
        "--create-definition", "--publisher", "azimg", "--offer", "t", "--sku", sku, "--force",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["regions"] == {"eastus": "Completed", "westus": "Completed"}
    got = compute.gallery_image_versions.get(
        resource_group, "gal", "def1", "1.0.0", expand="ReplicationStatus"
    )
    assert got.id == doc["id"]
    assert {(s.region, s.state) for s in got.replication_status.summary} == {
        ("eastus", "Completed"),
        ("westus", "Completed"),
    }
    replicas = {r.name: r.regional_replica_count for r in got.publishing_profile.target_regions}
    assert replicas == {"eastus": 1, "westus": 2}


def test_definition_rules_refuse_before_a_byte_is_sent(
    platform_server: PlatformServer, compute: Any, resource_group: str, tmp_path: Path
) -> None:
    compute.galleries.begin_create_or_update(
        resource_group, "gal2", {"location": "eastus"}
    ).result()
    compute.gallery_images.begin_create_or_update(
        resource_group,
        "gal2",
        "def2",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "osState": "Generalized",
                "hyperVGeneration": "V2",
                "identifier": {"publisher": "azimg", "offer": "t", "sku": uuid.uuid4().hex[:8]},
            },
        },
    ).result()
    raw = sparse_raw(tmp_path / "img.raw", mib=24)
    proc = run_publish(
        platform_server, str(raw), "-g", resource_group, "--gallery", "gal2",
        "--definition", "def2", "--version", "1.0.0",
    )  # fmt: skip
    assert proc.returncode == 1
    assert "nothing uploaded" in proc.stderr and "V2" in proc.stderr
    assert [d.name for d in compute.disks.list_by_resource_group(resource_group)] == []
