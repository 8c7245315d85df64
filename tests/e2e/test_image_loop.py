"""The image-maker's loop end to end, in two guest boots (issue 11's first "done when").

A built cloud-init image is published (``azimg publish``) and booted once as a VM, so a real
first boot's state is in its bytes: machine-id, SSH host keys, cloud-init's instance, the admin
user. The VM is deleted with its OS disk detached (the platform flattens it to a fixed VHD),
the disk is exported through a Read SAS, and then, with nothing but the CLI:
``azimg generalize`` → ``azimg check --generalized`` reports none of the deprovision findings
(the export did) → ``azimg publish`` version 2.0.0 → a VM from it provisions with the new
computerName, the new admin user, and a machine-id different from the first boot's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import PlatformServer, trusted
from tests.e2e.test_vm import (
    LOCATION,
    MAIN_TIMEOUT_S,
    _start_server,
    connection,
    ssh,
    vm_body,
)

pytestmark = pytest.mark.slow

AZIMG = [sys.executable, "-m", "azimg.cli.main"]
DEPROVISION = {"AGT-05", "AGT-06", "AGT-11", "NET-08", "NET-09", "SEC-02", "SEC-04", "SEC-05"}
DEPROVISION |= {"SEC-09", "SEC-11"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformServer]:
    s = _start_server(tmp_path_factory.mktemp("loopplatform"), MAIN_TIMEOUT_S)
    with trusted(s):
        yield s


def cli(server: PlatformServer, *args: str) -> dict[str, Any]:
    argv = [*AZIMG, *args, "--output", "json"]
    argv += ["--data-dir", str(server.data_dir), "--port", str(server.port)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def failed(image: Path) -> set[str]:
    argv = [*AZIMG, "check", str(image), "--generalized", "--output", "json"]
    doc = json.loads(subprocess.run(argv, capture_output=True, text=True).stdout)
    return {f["rule"] for f in doc["findings"] if f["status"] == "fail"}


def export_disk(compute: Any, group: str, disk: str, out: Path) -> None:
    """Read the whole disk through a Read SAS in 4 MiB pieces; all-zero pieces stay holes."""
    from azure.storage.blob import BlobClient

    sas = compute.disks.begin_grant_access(
        group, disk, {"access": "Read", "durationInSeconds": 3600}
    ).result()
    blob = BlobClient.from_blob_url(sas.access_sas)
    size = blob.get_blob_properties().size
    piece = 4 * 1024 * 1024
    with open(out, "wb") as fh:
        fh.truncate(size)
        for off in range(0, size, piece):
            data = blob.download_blob(offset=off, length=min(piece, size - off)).readall()
            if any(data):
                os.pwrite(fh.fileno(), data, off)
    compute.disks.begin_revoke_access(group, disk).result()


def boot(
    compute: Any,
    group: str,
    name: str,
    image_id: str,
    computer: str,
    user: str,
    key: Path,
    server: PlatformServer,
    *,
    detach: bool = False,
) -> tuple[Any, int]:
    body = vm_body(image_id, computer, user, key)
    if detach:
        body["properties"]["storageProfile"]["osDisk"]["deleteOption"] = "Detach"
    vm = compute.virtual_machines.begin_create_or_update(group, name, body).result()
    assert vm.provisioning_state == "Succeeded"
    return vm, connection(server, vm.vm_id)["sshPort"]


def test_booted_image_generalized_published_and_reprovisioned(
    server: PlatformServer, built_image: Callable[..., Path], tmp_path: Path
) -> None:
    compute = server.compute_client()
    group = f"rg-loop-{uuid.uuid4().hex[:6]}"
    server.resource_client().resource_groups.create_or_update(group, {"location": LOCATION})
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    compute.galleries.begin_create_or_update(group, "gal", {"location": LOCATION}).result()
    compute.gallery_images.begin_create_or_update(
        group,
        "gal",
        "debian",
        {
            "location": LOCATION,
            "properties": {
                "osType": "Linux",
                "osState": "Generalized",
                "hyperVGeneration": "V1",
                "identifier": {"publisher": "azimg", "offer": "loop", "sku": uuid.uuid4().hex[:8]},
            },
        },
    ).result()
    common = ["-g", group, "--gallery", "gal", "--definition", "debian"]

    # Boot 1: the built image, published by azimg, provisions a VM.
    first = cli(server, "publish", str(built_image(generation="1")), *common, "--version", "1.0.0")
    vm1, port1 = boot(compute, group, "vm-one", first["id"], "host-one", "opsadmin", key, server,
                      detach=True)  # fmt: skip
    out = ssh(port1, "opsadmin", key, "cloud-init status --wait >/dev/null; hostname; "
              "cat /etc/machine-id; sudo sync")  # fmt: skip
    host1, machine_id1 = out.split()
    assert host1 == "host-one" and len(machine_id1) == 32
    os_disk = vm1.storage_profile.os_disk.name
    compute.virtual_machines.begin_delete(group, "vm-one").result()

    booted = tmp_path / "booted.vhd"
    export_disk(compute, group, os_disk, booted)
    assert failed(booted) & DEPROVISION  # the first boot's state really is in the bytes

    gen = tmp_path / "generalized.vhd"
    result = json.loads(
        subprocess.run(
            [*AZIMG, "generalize", str(booted), "-o", str(gen), "--remove-users", "--output",
             "json"], capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    assert "opsadmin" in result["usersRemoved"]
    assert failed(gen) & DEPROVISION == set()

    # Boot 2: the generalized image, published by azimg, provisions as a new machine.
    second = cli(server, "publish", str(gen), *common, "--version", "2.0.0")
    assert second["regions"] == {LOCATION: "Completed"}
    _vm2, port2 = boot(compute, group, "vm-two", second["id"], "host-two", "second", key, server)
    out = ssh(port2, "second", key, "hostname; cat /etc/machine-id; id -u opsadmin || echo gone")
    host2, machine_id2, opsadmin = out.split()
    assert host2 == "host-two"
    assert len(machine_id2) == 32 and machine_id2 != machine_id1
    assert opsadmin == "gone"


def test_publish_from_vm_deallocates_generalizes_and_captures_it(
    server: PlatformServer, tmp_path: Path
) -> None:
    """``--from-vm``: no guest needs to come up (an attached disk is not provisioned), so the
    VM runs only as long as the capture takes."""
    from tests.api.test_upload_cli import sparse_raw

    compute = server.compute_client()
    group = f"rg-cap-{uuid.uuid4().hex[:6]}"
    server.resource_client().resource_groups.create_or_update(group, {"location": LOCATION})
    raw = sparse_raw(tmp_path / "os.raw", mib=24)
    disk = cli(server, "upload", str(raw), "-g", group, "-n", "os", "--force",
               "--hyper-v-generation", "V1")["id"]  # fmt: skip
    body = {
        "location": LOCATION,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "storageProfile": {
                "osDisk": {"osType": "Linux", "createOption": "Attach",
                           "managedDisk": {"id": disk}, "deleteOption": "Detach"},
            },
        },
    }  # fmt: skip
    vm = compute.virtual_machines.begin_create_or_update(group, "cap", body).result()
    gal = f"cap{uuid.uuid4().hex[:6]}"  # gallery names are unique per subscription
    compute.galleries.begin_create_or_update(group, gal, {"location": LOCATION}).result()
    ident = {"publisher": "azimg", "offer": "cap", "sku": uuid.uuid4().hex[:8]}
    compute.gallery_images.begin_create_or_update(
        group, gal, "cap",
        {"location": LOCATION, "properties": {"osType": "Linux", "osState": "Generalized",
                                              "hyperVGeneration": "V1", "identifier": ident}},
    ).result()  # fmt: skip
    doc = cli(server, "publish", "--from-vm", "cap", "-g", group, "--gallery", gal,
              "--definition", "cap", "--version", "1.0.0",
              "--target-regions", "eastus westus")  # fmt: skip
    assert doc["source"] == vm.id
    assert doc["regions"] == {"eastus": "Completed", "westus": "Completed"}
    view = compute.virtual_machines.instance_view(group, "cap")
    codes = [s.code for s in view.statuses]
    assert "PowerState/deallocated" in codes and "OSState/generalized" in codes
    compute.virtual_machines.begin_delete(group, "cap").result()


def test_a_vm_from_an_image_without_agent_says_so_before_the_timeout(
    server: PlatformServer, tmp_path: Path
) -> None:
    """The platform checked the version's bytes when it was made; a VM from it carries an
    azimg Warning status naming the blocker while it is still provisioning (no 20-minute
    OSProvisioningTimedOut needed to learn it)."""
    from tests.unit.test_generalize import make_disk

    compute = server.compute_client()
    group = f"rg-noagent-{uuid.uuid4().hex[:6]}"
    server.resource_client().resource_groups.create_or_update(group, {"location": LOCATION})
    image = make_disk(tmp_path, agent=False)
    version = cli(server, "publish", str(image), "-g", group, "--gallery", f"na{group[-6:]}",
                  "--definition", "noagent", "--version", "1.0.0", "--create-definition",
                  "--publisher", "azimg", "--offer", "noagent", "--sku", uuid.uuid4().hex[:8],
                  "--force")["id"]  # fmt: skip
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    poller = compute.virtual_machines.begin_create_or_update(
        group, "silent", vm_body(version, "silent", "opsadmin", key)
    )
    view = compute.virtual_machines.instance_view(group, "silent")
    warning = [s for s in view.statuses if s.code == "Azimg.ImageCheck/Blockers"]
    assert not poller.done()  # still provisioning: the finding is there before any timeout
    assert warning and warning[0].level == "Warning" and "AGT-01" in warning[0].message
    expanded = compute.virtual_machines.get(group, "silent", expand="instanceView").instance_view
    assert [s.code for s in expanded.statuses if s.code == warning[0].code]  # one view, both ways
    compute.virtual_machines.begin_delete(group, "silent").result()
