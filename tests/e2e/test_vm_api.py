"""virtualMachines API rules through the real SDK, with tiny disks that never need to boot an OS.

The refusals happen before anything is cloned or booted; the one VM that is created attaches a
20 MiB non-bootable disk (QEMU runs firmware only) to check the ARM shapes around it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.api.conftest import PlatformServer, trusted
from tests.api.helpers import download
from tests.e2e.test_vm import LOCATION, _start_server, publish_version, upload_vhd

MIB = 1024 * 1024
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE6k5NxJpQb3e0qk0Tt4Q2wYt3u5yVb1m9+Lg0b7vG8p t@x"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformServer]:
    srv = _start_server(tmp_path_factory.mktemp("vmapi"), 600)
    with trusted(srv):
        yield srv


@pytest.fixture(scope="module")
def compute(server: PlatformServer) -> Any:
    return server.compute_client()


@pytest.fixture(scope="module")
def group(server: PlatformServer) -> str:
    name = f"rg-vmapi-{uuid.uuid4().hex[:6]}"
    server.resource_client().resource_groups.create_or_update(name, {"location": LOCATION})
    return name


@pytest.fixture(scope="module")
def tiny_vhd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tiny")
    raw = d / "tiny.raw"
    with raw.open("wb") as fh:
        fh.truncate(20 * MIB)
        fh.write(b"not an operating system")
    subprocess.run(
        [sys.executable, "-m", "azimg.cli.main", "convert", str(raw), str(d / "tiny.vhd")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "tiny.vhd"


@pytest.fixture(scope="module")
def version_id(compute: Any, group: str, tiny_vhd: Path) -> str:
    return publish_version(compute, group, tiny_vhd, generation="V1")


def body(**properties: Any) -> dict[str, Any]:
    return {"location": LOCATION, "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"},
                                                 **properties}}  # fmt: skip


def os_profile(**overrides: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "computerName": "c1",
        "adminUsername": "opsadmin",
        "linuxConfiguration": {
            "disablePasswordAuthentication": True,
            "ssh": {
                "publicKeys": [{"path": "/home/opsadmin/.ssh/authorized_keys", "keyData": KEY}]
            },
        },
    }
    profile.update(overrides)
    return profile


def error_of(compute: Any, group: str, name: str, payload: dict[str, Any]) -> tuple[int, str, str]:
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machines.begin_create_or_update(group, name, payload).result()
    return err.value.status_code, err.value.error.code, err.value.error.message


def test_generalized_version_needs_os_profile(compute: Any, group: str, version_id: str) -> None:
    payload = body(storageProfile={"imageReference": {"id": version_id}})
    status, code, message = error_of(compute, group, "vm-noprofile", payload)
    assert (status, code) == (400, "InvalidParameter")
    assert message == "Required parameter 'osProfile' is missing (null)."
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(group, "vm-noprofile")


@pytest.mark.parametrize(
    ("profile", "target"),
    [
        (os_profile(adminUsername="admin"), "osProfile.adminUsername"),
        (os_profile(linuxConfiguration={"disablePasswordAuthentication": True}),
         "linuxConfiguration"),
        (os_profile(adminPassword="weak", linuxConfiguration={
            "disablePasswordAuthentication": False}), "adminPassword"),
    ],
)  # fmt: skip
def test_os_profile_refusals(
    compute: Any, group: str, version_id: str, profile: dict[str, Any], target: str
) -> None:
    payload = body(storageProfile={"imageReference": {"id": version_id}}, osProfile=profile)
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machines.begin_create_or_update(group, "vm-bad", payload).result()
    assert (err.value.status_code, err.value.error.code) == (400, "InvalidParameter")
    assert err.value.error.target == target


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"location": LOCATION, "properties": {"hardwareProfile": {"vmSize": "Standard_X9"}}},
         400, "InvalidParameter"),
        ({"location": LOCATION, "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"},
                                               "availabilitySet": {"id": "x"}}},
         400, "NotSupported"),
        ({"location": LOCATION, "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"},
          "storageProfile": {"imageReference": {"publisher": "Debian", "offer": "debian-12",
                                                "sku": "12", "version": "latest"}}}},
         501, "NotImplemented"),
        ({"location": "mars", "properties": {}}, 400, "LocationNotAvailableForResourceType"),
    ],
)  # fmt: skip
def test_request_refusals(
    compute: Any, group: str, payload: dict[str, Any], status: int, code: str
) -> None:
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machines.begin_create_or_update(group, "vm-bad", payload).result()
    assert (err.value.status_code, err.value.error.code) == (status, code)


def test_attached_disk_lifecycle_and_rules(
    compute: Any, group: str, tiny_vhd: Path, server: PlatformServer, version_id: str
) -> None:
    disk_id = upload_vhd(compute, group, "tiny-os", tiny_vhd, "V1")
    attach = {"osType": "Linux", "createOption": "Attach", "managedDisk": {"id": disk_id}}
    # An attached OS disk and an image, or an attached disk and an osProfile: Azure's refusals.
    status, code, message = error_of(
        compute, group, "vm-x",
        body(storageProfile={"osDisk": attach, "imageReference": {"id": version_id}}),
    )  # fmt: skip
    assert (status, code) == (400, "InvalidParameter")
    assert message.startswith("Cannot attach an existing OS disk")
    status, code, message = error_of(
        compute, group, "vm-x", body(storageProfile={"osDisk": attach}, osProfile=os_profile())
    )
    assert (status, code, message) == (
        400,
        "InvalidParameter",
        "Parameter 'osProfile' is not allowed.",
    )
    # A VM that attaches it: created at once (no provisioning), running, the disk is its own.
    vm = compute.virtual_machines.begin_create_or_update(
        group, "vm-tiny", {**body(storageProfile={"osDisk": attach}), "tags": {"a": "b"}}
    ).result()
    assert vm.provisioning_state == "Succeeded"
    assert vm.tags == {"a": "b"}
    assert vm.hardware_profile.vm_size == "Standard_B1s"
    assert vm.storage_profile.os_disk.create_option == "Attach"
    assert vm.os_profile is None
    got = compute.virtual_machines.get(group, "vm-tiny", expand="instanceView")
    # An attached disk boots as is: the blockers of its check as a generalized image (the tiny
    # disk holds no OS at all) warn of nothing here, in either view.
    assert [s.code for s in got.instance_view.statuses] == [
        "ProvisioningState/succeeded", "PowerState/running",
    ]  # fmt: skip
    view = compute.virtual_machines.instance_view(group, "vm-tiny")
    assert [s.code for s in view.statuses] == [s.code for s in got.instance_view.statuses]
    disk = compute.disks.get(group, "tiny-os")
    assert (disk.managed_by, disk.disk_state) == (vm.id, "Attached")
    # Neither a second VM nor a delete may take the disk while it is attached.
    status, code, _ = error_of(compute, group, "vm-thief", body(storageProfile={"osDisk": attach}))
    assert (status, code) == (409, "OperationNotAllowed")
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_delete(group, "tiny-os").result()
    assert err.value.error.code == "OperationNotAllowed"
    # generalize refuses a running VM; $filter is refused by name.
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machines.generalize(group, "vm-tiny")
    assert err.value.status_code == 409
    with pytest.raises(HttpResponseError) as err:
        list(compute.virtual_machines.list(group, filter="startswith(name,'vm')"))
    assert err.value.status_code == 501
    # Boot diagnostics hand out a read-only SAS URL of the serial console's blob (its bytes
    # are checked in test_vm.py, where a kernel writes to it; firmware alone writes nothing).
    url = compute.virtual_machines.retrieve_boot_diagnostics_data(group, "vm-tiny")
    assert url.serial_console_log_blob_uri.startswith(f"{server.base_url}/blob/")
    assert "&sp=r&" in url.serial_console_log_blob_uri
    compute.virtual_machines.begin_delete(group, "vm-tiny").result()
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(group, "vm-tiny")
    disk = compute.disks.get(group, "tiny-os")
    assert (disk.managed_by, disk.disk_state) == (None, "Unattached")
    assert not (server.data_dir / "fabric" / vm.vm_id).exists()


@pytest.fixture(scope="module")
def specialized_version_id(compute: Any, group: str, tiny_vhd: Path) -> str:
    """A specialized version: FromImage VMs clone it and need no provisioning (firmware only)."""
    return publish_version(compute, group, tiny_vhd, generation="V1", os_state="Specialized")


def from_image(version_id: str, **os_disk: Any) -> dict[str, Any]:
    return body(storageProfile={"imageReference": {"id": version_id},
                                "osDisk": {"createOption": "FromImage", **os_disk}})  # fmt: skip


def vm_path(server: PlatformServer, group: str, name: str) -> str:
    return (f"/subscriptions/{server.subscription_id}/resourceGroups/{group}/providers/"
            f"Microsoft.Compute/virtualMachines/{name}?api-version=2024-11-01")  # fmt: skip


def test_from_image_vm_echoes_its_storage_account_type(
    compute: Any, group: str, server: PlatformServer, specialized_version_id: str
) -> None:
    """The PUT response (and every later read) say which SKU the new OS disk has: the one
    given, or Standard_LRS when none is (an explicit null included, as templates send it)."""
    for name, given, expected in (
        ("vm-sku", "Premium_LRS", "Premium_LRS"),
        ("vm-sku-null", None, "Standard_LRS"),
    ):
        payload = from_image(specialized_version_id, managedDisk={"storageAccountType": given})
        put = server.arm("PUT", vm_path(server, group, name), json=payload)
        assert put.status_code == 201, put.text
        managed = put.json()["properties"]["storageProfile"]["osDisk"]["managedDisk"]
        assert managed["storageAccountType"] == expected
        got = compute.virtual_machines.get(group, name)
        assert got.storage_profile.os_disk.managed_disk.storage_account_type == expected
    vm = compute.virtual_machines.begin_create_or_update(
        group, "vm-sku-default", from_image(specialized_version_id, deleteOption="Delete")
    ).result()
    assert vm.storage_profile.os_disk.managed_disk.storage_account_type == "Standard_LRS"
    got = compute.virtual_machines.get(group, "vm-sku")
    disk = compute.disks.get(group, got.storage_profile.os_disk.name)
    assert (disk.sku.name, disk.managed_by) == ("Premium_LRS", got.id)
    for name in ("vm-sku", "vm-sku-null", "vm-sku-default"):
        compute.virtual_machines.begin_delete(group, name).result()


def by_page_ranges(sas_url: str) -> bytes:
    """The blob as a range-reading client (azcopy) rebuilds it: zeros outside Get Page Ranges."""
    from azure.storage.blob import BlobClient

    blob = BlobClient.from_blob_url(sas_url)
    out = bytearray(blob.get_blob_properties().size)
    for r in blob.list_page_ranges():
        if not r.cleared:
            out[r.start : r.end + 1] = blob.download_blob(
                offset=r.start, length=r.end + 1 - r.start
            ).readall()
    return bytes(out)


def test_a_vm_os_disk_exports_vhd_bytes_running_or_deallocated(
    compute: Any, group: str, server: PlatformServer, specialized_version_id: str,
    tiny_vhd: Path,
) -> None:  # fmt: skip
    """A running FromImage VM boots a qcow2 clone; nothing outside the VM ever sees it: a
    snapshot of the running VM's OS disk is a fixed VHD; power-off of a guest that never booted
    a kernel is a hard stop at once (firmware does not listen for the power button); after
    deallocate the disk is Reserved and a Read SAS downloads the VHD (as on Azure)."""
    expected = tiny_vhd.read_bytes()
    vm = compute.virtual_machines.begin_create_or_update(
        group, "vm-export", from_image(specialized_version_id, deleteOption="Delete")
    ).result()
    disk_name = vm.storage_profile.os_disk.name
    runtime = server.data_dir / "blobs" / LOCATION / f"osdisk-{vm.vm_id}.qcow2"
    assert runtime.read_bytes()[:4] == b"QFI\xfb"  # what QEMU boots
    copy = {"createOption": "Copy", "sourceResourceId": vm.storage_profile.os_disk.managed_disk.id}
    snap = compute.snapshots.begin_create_or_update(
        group, "snap-running", {"location": LOCATION, "properties": {"creationData": copy}}
    ).result()
    sas = compute.snapshots.begin_grant_access(
        group, "snap-running", {"access": "Read", "durationInSeconds": 600}
    ).result()
    data = download(sas.access_sas)
    assert data[-512:][:8] == b"conectix"
    assert data[:-512] == expected[:-512]
    assert by_page_ranges(sas.access_sas) == data  # as azcopy reads a page blob
    assert snap.disk_size_bytes == len(expected) - 512
    compute.snapshots.begin_revoke_access(group, "snap-running").result()
    # Attached while allocated: no SAS.
    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_grant_access(
            group, disk_name, {"access": "Read", "durationInSeconds": 600}
        ).result()
    assert err.value.error.code == "OperationNotAllowed"
    # Graceful power-off of firmware: the SDK's poll returns once QEMU is gone.
    compute.virtual_machines.begin_power_off(group, "vm-export").result()
    assert compute.virtual_machines.instance_view(group, "vm-export").statuses[1].code == (
        "PowerState/stopped"
    )
    compute.virtual_machines.begin_deallocate(group, "vm-export").result()
    disk = compute.disks.get(group, disk_name)
    assert (disk.disk_state, disk.managed_by) == ("Reserved", vm.id)
    sas = compute.disks.begin_grant_access(
        group, disk_name, {"access": "Read", "durationInSeconds": 600}
    ).result()
    data = download(sas.access_sas)
    assert data[-512:][:8] == b"conectix"
    assert data[:-512] == expected[:-512]
    assert by_page_ranges(sas.access_sas) == data  # the flattened VHD lists its pages
    assert not runtime.exists()  # the clone is gone with the VM's allocation
    compute.disks.begin_revoke_access(group, disk_name).result()
    assert compute.disks.get(group, disk_name).disk_state == "Reserved"
    # Started again, from the VHD; then deleted with its disk.
    compute.virtual_machines.begin_start(group, "vm-export").result()
    assert compute.disks.get(group, disk_name).disk_state == "Attached"
    compute.virtual_machines.begin_delete(group, "vm-export").result()
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(group, disk_name)
    compute.snapshots.begin_delete(group, "snap-running").result()
    assert not [p for p in (server.data_dir / "blobs" / LOCATION).glob(f"osdisk-{vm.vm_id}*")]


def test_a_managed_image_of_a_vm_holds_vhd_bytes(
    compute: Any, group: str, specialized_version_id: str, tiny_vhd: Path
) -> None:
    """Stopped (not deallocated), generalized, captured: the image's bytes are the disk's, as
    a fixed VHD (a disk made from the image downloads them), never the VM's qcow2 clone."""
    vm = compute.virtual_machines.begin_create_or_update(
        group, "vm-capture", from_image(specialized_version_id, deleteOption="Delete")
    ).result()
    compute.virtual_machines.begin_power_off(group, "vm-capture").result()
    compute.virtual_machines.generalize(group, "vm-capture")
    image = compute.images.begin_create_or_update(group, "img-capture", {
        "location": LOCATION, "properties": {"sourceVirtualMachine": {"id": vm.id}},
    }).result()  # fmt: skip
    assert image.storage_profile.os_disk.os_state == "Generalized"
    compute.disks.begin_create_or_update(group, "from-capture", {
        "location": LOCATION,
        "properties": {"creationData": {"createOption": "FromImage",
                                        "imageReference": {"id": image.id}}},
    }).result()  # fmt: skip
    sas = compute.disks.begin_grant_access(
        group, "from-capture", {"access": "Read", "durationInSeconds": 600}
    ).result()
    data = download(sas.access_sas)
    assert data[-512:][:8] == b"conectix"
    assert data[:-512] == tiny_vhd.read_bytes()[:-512]
    compute.disks.begin_revoke_access(group, "from-capture").result()
    compute.disks.begin_delete(group, "from-capture").result()
    compute.images.begin_delete(group, "img-capture").result()
    compute.virtual_machines.begin_delete(group, "vm-capture").result()


def _operation(server: PlatformServer, url: str) -> dict[str, Any]:
    return server.arm("GET", url.removeprefix(server.base_url)).json()


def test_kill_during_vm_create_and_delete_leaves_nothing_stuck(
    server: PlatformServer, tmp_path_factory: pytest.TempPathFactory, tiny_vhd: Path
) -> None:
    """kill -9 at the transaction points of a FromImage create: after the VM and its create
    operation are written (one transaction), while the boot job clones, writes the OS disk and
    launches QEMU. Whichever point the kill hits, the restarted platform shows no VM Creating,
    no operation InProgress, no OS disk owned by nobody; deleting the VM (a resumable job, also
    killed midway) leaves no document and no bytes behind."""
    private = _start_server(tmp_path_factory.mktemp("vmkill"), 600,
                            tls_from=server.data_dir / "tls")  # fmt: skip
    try:
        compute = private.compute_client()
        group = "rg-kill"
        private.resource_client().resource_groups.create_or_update(group, {"location": LOCATION})
        version = publish_version(compute, group, tiny_vhd, generation="V1",
                                  os_state="Specialized")  # fmt: skip
        names = ("vm-k0", "vm-k1", "vm-k2")
        monitors = {}
        for name in names:  # no waiting: the kill lands while these boot jobs run or queue
            put = private.arm("PUT", vm_path(private, group, name),
                              json=from_image(version, deleteOption="Delete"))  # fmt: skip
            assert put.status_code == 201, put.text
            monitors[name] = put.headers["Azure-AsyncOperation"]
        private.kill()
        private.start()
        compute = private.compute_client()
        for name in names:
            vm = compute.virtual_machines.get(group, name)
            assert vm.provisioning_state in ("Succeeded", "Failed"), name
            print(f"{name}: {vm.provisioning_state} after the kill")  # which point it hit
            assert _operation(private, monitors[name])["status"] in ("Succeeded", "Failed")
            power = compute.virtual_machines.instance_view(group, name).statuses[1].code
            assert power == "PowerState/stopped"  # no VM outlives its platform
            disks = [d for d in compute.disks.list_by_resource_group(group)
                     if d.name == vm.storage_profile.os_disk.name]  # fmt: skip
            assert all(d.managed_by == vm.id for d in disks)
        # Deletes killed midway resume after the restart and finish.
        for name in names:
            compute.virtual_machines.begin_delete(group, name)
        private.kill()
        private.start()
        compute = private.compute_client()
        deadline = time.monotonic() + 120
        while list(compute.virtual_machines.list(group)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert list(compute.virtual_machines.list(group)) == []
        assert [d.name for d in compute.disks.list_by_resource_group(group)
                if d.managed_by] == []  # fmt: skip
        left = sorted(p.name for p in (private.data_dir / "blobs" / LOCATION).glob("osdisk-*"))
        assert left == []
    finally:
        private.stop()
