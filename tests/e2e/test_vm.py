"""VMs end to end: real images from `azimg build`, the real Azure SDK against a real
`azimg serve`, real QEMU (TCG), and the unmodified cloud-init / waagent inside the guests.

Boots are expensive (about a minute each under TCG on two cores), so each boot checks every
honest assertion it can, and at most two VMs run at once:
- two Gen1 VMs from one cloud-init gallery version, at once: OSProvisioningComplete, SSH as
  adminUsername, ``hostname`` = computerName, BIOS firmware (SeaBIOS), a file written in one is
  absent in the other and in every byte the platform stores except that VM's own clone;
- a Gen2 VM from a waagent-only version: OSProvisioningComplete through OVMF, provisioned by
  waagent itself from our UDF disc, SSH as adminUsername and ``hostname`` = computerName, its
  status and the host name it reports, boot diagnostics;
- a specialized disk attached: running without a provisioning wait, its own host name on the
  serial console and over SSH as its baked account, power lifecycle, one owner at a time;
- an image without an agent: OSProvisioningTimedOut after the configured timeout.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from azimg.fabric.imds import smbios_uuid, vm_id_from_system_uuid
from tests.api.conftest import PlatformServer, free_port, trusted
from tests.images import SPECIALIZED_HOSTNAME, SPECIALIZED_USER, ImageFactory

pytestmark = pytest.mark.slow

MAIN_TIMEOUT_S = 900  # generous: boots under TCG on a loaded 2-core machine vary a lot
SHORT_TIMEOUT_S = 45  # the no-agent test waits for exactly this
LOCATION = "eastus"
CHUNK = 4 * 1024 * 1024


# --- servers and clients ------------------------------------------------------------------


def _start_server(root: Path, timeout_s: float, *, tls_from: Path | None = None) -> PlatformServer:
    server = PlatformServer(data_dir=root / "data", port=free_port(), regions="eastus,westus")
    server.data_dir.mkdir(parents=True)
    if tls_from is not None:  # one CA for both servers: MSAL reads REQUESTS_CA_BUNDLE globally
        shutil.copytree(tls_from, server.data_dir / "tls")
    with pytest.MonkeyPatch.context() as env:  # the server reads it once, at start
        env.setenv("AZIMG_VM_PROVISIONING_TIMEOUT", str(timeout_s))
        server.start()
    return server


@pytest.fixture(scope="module")
def vm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformServer]:
    server = _start_server(tmp_path_factory.mktemp("vmplatform"), MAIN_TIMEOUT_S)
    with trusted(server):
        yield server


@pytest.fixture(scope="module")
def compute(vm_server: PlatformServer) -> Any:
    return vm_server.compute_client()


@pytest.fixture(scope="module")
def group(vm_server: PlatformServer) -> str:
    name = f"rg-vm-{uuid.uuid4().hex[:8]}"
    vm_server.resource_client().resource_groups.create_or_update(name, {"location": LOCATION})
    return name


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("sshkey") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


# --- helpers --------------------------------------------------------------------------------


def data_extents(path: Path) -> Iterator[tuple[int, int]]:
    """(offset, length) of the data regions of a sparse file (SEEK_DATA / SEEK_HOLE)."""
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        offset = 0
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:
                return
            end = os.lseek(fd, start, os.SEEK_HOLE)
            yield start, end - start
            offset = end
    finally:
        os.close(fd)


def upload_vhd(compute: Any, group: str, name: str, vhd: Path, generation: str) -> str:
    """The direct-upload flow through the SDK; only data extents travel (as azcopy skips)."""
    from azure.storage.blob import BlobClient

    size = vhd.stat().st_size
    compute.disks.begin_create_or_update(
        group,
        name,
        {
            "location": LOCATION,
            "properties": {
                "osType": "Linux",
                "hyperVGeneration": generation,
                "creationData": {"createOption": "Upload", "uploadSizeBytes": size},
            },
        },
    ).result()
    sas = compute.disks.begin_grant_access(
        group, name, {"access": "Write", "durationInSeconds": 3600}
    ).result()
    blob = BlobClient.from_blob_url(sas.access_sas)
    zero = bytes(CHUNK)
    with vhd.open("rb") as fh:
        for start, length in data_extents(vhd):
            first = start - start % 512
            end = min(size, -(-(start + length) // 512) * 512)
            for off in range(first, end, CHUNK):
                fh.seek(off)
                chunk = fh.read(min(CHUNK, end - off))
                if chunk != zero[: len(chunk)]:
                    blob.upload_page(chunk, offset=off, length=len(chunk))
    compute.disks.begin_revoke_access(group, name).result()
    return str(compute.disks.get(group, name).id)


def publish_version(
    compute: Any, group: str, vhd: Path, *, generation: str, os_state: str = "Generalized"
) -> str:
    """VHD → managed disk → gallery image definition → version 1.0.0; returns its id."""
    tag = uuid.uuid4().hex[:8]
    disk_id = upload_vhd(compute, group, f"src-{tag}", vhd, generation)
    gallery = f"g{tag}"
    compute.galleries.begin_create_or_update(group, gallery, {"location": LOCATION}).result()
    compute.gallery_images.begin_create_or_update(
        group,
        gallery,
        "debian",
        {
            "location": LOCATION,
            "properties": {
                "osType": "Linux",
                "osState": os_state,
                "hyperVGeneration": generation,
                "identifier": {"publisher": "azimg", "offer": f"debian-{tag}", "sku": "12"},
            },
        },
    ).result()
    version = compute.gallery_image_versions.begin_create_or_update(
        group,
        gallery,
        "debian",
        "1.0.0",
        {
            "location": LOCATION,
            "properties": {"storageProfile": {"osDiskImage": {"source": {"id": disk_id}}}},
        },
    ).result()
    return str(version.id)


def vm_body(
    image_id: str, computer: str, user: str, key: Path, *, custom_data: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": LOCATION,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "storageProfile": {
                "imageReference": {"id": image_id},
                "osDisk": {"createOption": "FromImage", "deleteOption": "Delete"},
            },
            "osProfile": {
                "computerName": computer,
                "adminUsername": user,
                "linuxConfiguration": {
                    "disablePasswordAuthentication": True,
                    "ssh": {
                        "publicKeys": [
                            {
                                "path": f"/home/{user}/.ssh/authorized_keys",
                                "keyData": Path(f"{key}.pub").read_text().strip(),
                            }
                        ]
                    },
                },
            },
        },
    }
    if custom_data is not None:
        body["properties"]["osProfile"]["customData"] = base64.b64encode(
            custom_data.encode()
        ).decode()
    return body


def codes(compute: Any, group: str, name: str) -> list[str]:
    view = compute.virtual_machines.instance_view(group, name)
    return [s.code for s in view.statuses or []]


def watch_codes(compute: Any, group: str, name: str, poller: Any) -> list[str]:
    """Every instance-view status code seen while the create operation runs (0.5 s polls)."""
    seen: list[str] = []
    while not poller.done():
        for code in codes(compute, group, name):
            if code not in seen:
                seen.append(code)
        poller.wait(0.5)
    for code in codes(compute, group, name):
        if code not in seen:
            seen.append(code)
    return seen


def connection(server: PlatformServer, vm_uuid: str) -> dict[str, Any]:
    import json

    return json.loads((server.data_dir / "fabric" / vm_uuid / "connection.json").read_text())


def ssh(port: int, user: str, key: Path, command: str, *, deadline_s: float = 240) -> str:
    """Run ``command`` over SSH through the VM's 127.0.0.1 port, retrying until sshd answers."""
    argv = [
        "ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
        "-o", "LogLevel=ERROR", f"{user}@127.0.0.1", command,
    ]  # fmt: skip
    deadline = time.monotonic() + deadline_s
    while True:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if proc.returncode == 0:
            return proc.stdout
        if time.monotonic() > deadline:
            pytest.fail(f"ssh {command!r} failed: {proc.stderr.strip()}")
        time.sleep(3)


def wait_for_console(
    compute: Any, group: str, name: str, needle: bytes, *, deadline_s: float = 600
) -> bytes:
    """Poll the VM's serial console through boot diagnostics until ``needle`` shows."""
    import requests

    deadline = time.monotonic() + deadline_s
    url = compute.virtual_machines.retrieve_boot_diagnostics_data(
        group, name
    ).serial_console_log_blob_uri
    while True:
        log = requests.get(url, timeout=30).content
        if needle in log:
            return log
        if time.monotonic() > deadline:
            pytest.fail(f"{needle!r} never appeared on {name}'s console:\n{log[-2000:]!r}")
        time.sleep(3)


def bytes_contain(path: Path, needle: bytes) -> bool:
    """Whether ``needle`` occurs in the data extents of ``path`` (holes read as zeros)."""
    with path.open("rb") as fh:
        for start, length in data_extents(path):
            fh.seek(start)
            carry = b""
            remaining = length
            while remaining > 0:
                block = fh.read(min(CHUNK, remaining))
                if not block:
                    break
                remaining -= len(block)
                if needle in carry + block:
                    return True
                carry = block[-len(needle) :]
    return False


# --- the tests ------------------------------------------------------------------------------


def test_two_gen1_cloud_init_vms_from_one_version(
    compute: Any, group: str, vm_server: PlatformServer, built_image: Callable[..., Path],
    ssh_key: Path,
) -> None:  # fmt: skip
    version_id = publish_version(
        compute, group, built_image(generation="1", agent="cloud-init"), generation="V1"
    )
    custom = "#cloud-config\nwrite_files:\n- path: /var/tmp/azimg-custom-data\n  content: hello\n"
    pollers = {
        name: compute.virtual_machines.begin_create_or_update(
            group,
            name,
            vm_body(version_id, f"host-{name}", "opsadmin", ssh_key, custom_data=custom),
        )
        for name in ("vm-a", "vm-b")
    }
    seen = watch_codes(compute, group, "vm-a", pollers["vm-a"])
    vms = {name: poller.result() for name, poller in pollers.items()}
    assert "ProvisioningState/creating/OSProvisioningInprogress" in seen
    assert "ProvisioningState/creating/OSProvisioningComplete" in seen
    for name, vm in vms.items():
        assert vm.provisioning_state == "Succeeded"
        assert codes(compute, group, name)[:2] == [
            "ProvisioningState/succeeded", "PowerState/running",
        ]  # fmt: skip
        assert vm.storage_profile.image_reference.exact_version == "1.0.0"
    ports = {name: connection(vm_server, vm.vm_id)["sshPort"] for name, vm in vms.items()}
    for name, port in ports.items():
        out = ssh(port, "opsadmin", ssh_key, "hostname; whoami; test -d /sys/firmware/efi && "
                  "echo uefi || echo bios")  # fmt: skip
        assert out.split() == [f"host-{name}", "opsadmin", "bios"]
    # customData reached cloud-init through ovf-env.xml and ran.
    done = ssh(ports["vm-a"], "opsadmin", ssh_key,
               "cloud-init status --wait >/dev/null; cat /var/tmp/azimg-custom-data")  # fmt: skip
    assert done == "hello"  # write_files writes the YAML scalar as is (no newline)
    # IMDS from inside the guest (through the guestfwd relay) agrees with the API on vmId, and
    # the SMBIOS UUID is what a Gen1 guest on Azure sees: vmId with its first fields swapped.
    imds = (
        'python3 -c "import urllib.request as u; print(u.urlopen(u.Request('
        "'http://169.254.169.254/metadata/instance/compute/vmId?api-version=2021-08-01"
        "&format=text', headers={'Metadata': 'true'})).read().decode())\""
    )
    uuid_out = ssh(ports["vm-a"], "opsadmin", ssh_key,
                   f"sudo cat /sys/class/dmi/id/product_uuid; {imds}").split()  # fmt: skip
    assert uuid_out[1] == vms["vm-a"].vm_id
    assert uuid_out[0] == smbios_uuid(vms["vm-a"].vm_id, 1)
    assert vm_id_from_system_uuid(uuid_out[0], has_efi=False) == vms["vm-a"].vm_id
    # The same VM through `azimg vm ssh` and `azimg vm console` (local data directory).
    cli = [sys.executable, "-m", "azimg.cli.main", "vm"]
    data = ["--data-dir", str(vm_server.data_dir)]
    via_cli = subprocess.run(
        [*cli, "ssh", "vm-b", "-g", group, "-i", str(ssh_key), *data,
         "cloud-init status --wait >/dev/null; hostname"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert (via_cli.returncode, via_cli.stdout) == (0, "host-vm-b\n"), via_cli.stderr
    console = subprocess.run([*cli, "console", "vm-b", *data], capture_output=True, timeout=60)
    assert b"Linux version" in console.stdout
    # cloud-init has finished (status --wait above), so its closing line is on the console.
    assert b"Datasource DataSourceAzure [seed=/dev/sr0]" in console.stdout  # read our UDF disc
    # Copy-on-write: a file written in vm-a exists nowhere else.
    token = f"azimg-cow-{uuid.uuid4().hex}"
    ssh(ports["vm-a"], "opsadmin", ssh_key, f"echo {token} > marker && sync && cat marker")
    assert ssh(ports["vm-b"], "opsadmin", ssh_key, "cat marker 2>/dev/null || echo absent") == (
        "absent\n"
    )
    a_disk = Path(vm_server.data_dir / "blobs" / LOCATION / f"osdisk-{vms['vm-a'].vm_id}.qcow2")
    assert bytes_contain(a_disk, token.encode())
    others = [p for p in (vm_server.data_dir / "blobs").rglob("*") if p.is_file() and p != a_disk]
    assert len(others) >= 3  # the source disk, the version's replica, vm-b's clone, ...
    assert not [p for p in others if bytes_contain(p, token.encode())]
    for name in vms:
        compute.virtual_machines.begin_delete(group, name).result()
    assert not a_disk.exists()  # deleteOption Delete took the clone with it


def test_gen2_waagent_vm_through_ovmf(
    compute: Any, group: str, vm_server: PlatformServer, built_image: Callable[..., Path],
    ssh_key: Path,
) -> None:  # fmt: skip
    version_id = publish_version(
        compute, group, built_image(generation="2", agent="waagent"), generation="V2"
    )
    poller = compute.virtual_machines.begin_create_or_update(
        group, "vm-wa", vm_body(version_id, "host-wa", "waadmin", ssh_key)
    )
    seen = watch_codes(compute, group, "vm-wa", poller)
    vm = poller.result()
    assert "ProvisioningState/creating/OSProvisioningInprogress" in seen
    assert "ProvisioningState/creating/OSProvisioningComplete" in seen
    assert vm.provisioning_state == "Succeeded"
    deadline = time.monotonic() + 180
    view = compute.virtual_machines.instance_view(group, "vm-wa")
    while view.vm_agent is None or view.vm_agent.statuses[0].display_status != "Ready":
        assert time.monotonic() < deadline, "waagent never reported its status"
        time.sleep(3)
        view = compute.virtual_machines.instance_view(group, "vm-wa")
    # SSH as the provisioned admin, with the key from osProfile; the guest's own host name.
    port = connection(vm_server, vm.vm_id)["sshPort"]
    assert ssh(port, "waadmin", ssh_key, "hostname; whoami").split() == ["host-wa", "waadmin"]
    assert view.vm_agent.vm_agent_version.startswith("2.")
    assert view.hyper_v_generation == "V2"
    # waagent reports the guest's own host name (socket.gethostname()) in its status.
    assert view.computer_name == "host-wa"
    # Boot diagnostics through the API: the serial console shows this boot.
    import requests

    diag = compute.virtual_machines.retrieve_boot_diagnostics_data(group, "vm-wa")
    log = requests.get(diag.serial_console_log_blob_uri, timeout=30)
    assert log.status_code == 200
    assert b"Linux version" in log.content
    assert b"efi: EFI v" in log.content  # the kernel booted through OVMF's UEFI
    assert b"Daemon Provisioning complete" in log.content  # waagent itself provisioned
    # Capture: deallocate (ACPI shutdown), generalize, a managed image from the VM.
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machines.generalize(group, "vm-wa")
    assert "since the VM is running" in err.value.message
    compute.virtual_machines.begin_deallocate(group, "vm-wa").result()
    compute.virtual_machines.generalize(group, "vm-wa")
    assert codes(compute, group, "vm-wa")[1:] == ["PowerState/deallocated", "OSState/generalized"]
    image = compute.images.begin_create_or_update(
        group,
        "img-wa",
        {"location": LOCATION, "properties": {"sourceVirtualMachine": {"id": vm.id}}},
    ).result()
    assert image.storage_profile.os_disk.os_state == "Generalized"
    assert image.hyper_v_generation == "V2"
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machines.begin_start(group, "vm-wa").result()
    assert "generalized" in err.value.message
    compute.virtual_machines.begin_delete(group, "vm-wa").result()


def test_specialized_disk_boots_without_provisioning(
    compute: Any, group: str, vm_server: PlatformServer, built_image: ImageFactory,
) -> None:  # fmt: skip
    vhd = built_image(specialized=True)
    disk_id = upload_vhd(compute, group, "special-os", vhd, "V1")
    body = {
        "location": LOCATION,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "storageProfile": {
                "osDisk": {
                    "osType": "Linux",
                    "createOption": "Attach",
                    "managedDisk": {"id": disk_id},
                    "deleteOption": "Detach",
                }
            },
        },
    }
    vm = compute.virtual_machines.begin_create_or_update(group, "vm-special", body).result()
    # Nothing waited for the guest: the create is over before it reaches its login prompt.
    import requests

    try:
        diag = compute.virtual_machines.retrieve_boot_diagnostics_data(group, "vm-special")
        early = requests.get(diag.serial_console_log_blob_uri, timeout=30).content
    except HttpResponseError as err:  # no console log yet: the guest has not even started
        assert "has not booted yet" in err.message
        early = b""
    assert f"{SPECIALIZED_HOSTNAME} login:".encode() not in early
    assert vm.provisioning_state == "Succeeded"
    assert codes(compute, group, "vm-special") == [
        "ProvisioningState/succeeded",
        "PowerState/running",
    ]
    assert compute.disks.get(group, "special-os").managed_by == vm.id
    # The disk belongs to one VM at a time.
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machines.begin_create_or_update(group, "vm-thief", body).result()
    assert err.value.error.code == "OperationNotAllowed"
    # It really boots as is: its serial console (boot diagnostics) reaches the login prompt
    # of the host name baked into the image, not one a platform would provision.
    wait_for_console(compute, group, "vm-special", f"{SPECIALIZED_HOSTNAME} login:".encode())
    # ... and answers SSH as the account baked into it, with the key baked into it.
    port = connection(vm_server, vm.vm_id)["sshPort"]
    who = ssh(port, SPECIALIZED_USER, built_image.ssh_private_key, "hostname; whoami")
    assert who.split() == [SPECIALIZED_HOSTNAME, SPECIALIZED_USER]
    # Power lifecycle.
    compute.virtual_machines.begin_power_off(group, "vm-special", skip_shutdown=True).result()
    assert codes(compute, group, "vm-special")[1] == "PowerState/stopped"
    compute.virtual_machines.begin_deallocate(group, "vm-special").result()
    assert codes(compute, group, "vm-special")[1] == "PowerState/deallocated"
    compute.virtual_machines.begin_start(group, "vm-special").result()
    assert codes(compute, group, "vm-special")[1] == "PowerState/running"
    compute.virtual_machines.begin_restart(group, "vm-special").result()
    assert codes(compute, group, "vm-special")[1] == "PowerState/running"
    listed = {v.name: v for v in compute.virtual_machines.list(group, expand="instanceView")}
    assert listed["vm-special"].vm_id == vm.vm_id
    compute.virtual_machines.begin_delete(group, "vm-special").result()
    disk = compute.disks.get(group, "special-os")
    assert disk.disk_state == "Unattached"
    assert disk.managed_by is None


def test_no_agent_times_out(
    tmp_path_factory: pytest.TempPathFactory,
    vm_server: PlatformServer,
    built_image: Callable[..., Path],
    ssh_key: Path,
) -> None:
    server = _start_server(
        tmp_path_factory.mktemp("vmshort"), SHORT_TIMEOUT_S, tls_from=vm_server.data_dir / "tls"
    )
    try:
        client = server.compute_client()
        group = f"rg-noagent-{uuid.uuid4().hex[:6]}"
        server.resource_client().resource_groups.create_or_update(group, {"location": LOCATION})
        version_id = publish_version(client, group, built_image(agent="none"), generation="V1")
        started = time.monotonic()
        poller = client.virtual_machines.begin_create_or_update(
            group, "vm-silent", vm_body(version_id, "silent", "opsadmin", ssh_key)
        )
        with pytest.raises(HttpResponseError) as err:
            poller.result()
        elapsed = time.monotonic() - started
        assert err.value.error.code == "OSProvisioningTimedOut"
        assert elapsed >= SHORT_TIMEOUT_S
        status = codes(client, group, "vm-silent")
        # ... and the platform had said why from the start: its check of the version's bytes.
        assert status == [
            "ProvisioningState/failed/OSProvisioningTimedOut", "PowerState/running",
            "Azimg.ImageCheck/Blockers",
        ]  # fmt: skip
        vm = client.virtual_machines.get(group, "vm-silent")
        assert vm.provisioning_state == "Failed"
        client.virtual_machines.begin_delete(group, "vm-silent").result()
    finally:
        server.stop()


def test_serve_crash_reaps_its_vms(
    tmp_path_factory: pytest.TempPathFactory,
    vm_server: PlatformServer,
    built_image: ImageFactory,
) -> None:
    """kill -9 of `azimg serve`: its QEMU dies with it, and the restarted platform says so.
    The VM is a clone of a specialized gallery version, and that version is deleted before the
    VM starts again: the clone holds its own link of the version's bytes, so it still boots."""
    server = _start_server(
        tmp_path_factory.mktemp("vmcrash"), MAIN_TIMEOUT_S, tls_from=vm_server.data_dir / "tls"
    )
    try:
        client = server.compute_client()
        group = f"rg-crash-{uuid.uuid4().hex[:6]}"
        server.resource_client().resource_groups.create_or_update(group, {"location": LOCATION})
        version_id = publish_version(client, group, built_image(specialized=True),
                                     generation="V1", os_state="Specialized")  # fmt: skip
        body = {
            "location": LOCATION,
            "properties": {
                "hardwareProfile": {"vmSize": "Standard_B1ms"},
                "storageProfile": {"imageReference": {"id": version_id},
                                   "osDisk": {"createOption": "FromImage"}},
            },
        }  # fmt: skip
        vm = client.virtual_machines.begin_create_or_update(group, "vm-crash", body).result()
        rundir = server.data_dir / "fabric" / vm.vm_id
        qemu_pid = int((rundir / "qemu.pid").read_text())
        assert Path(f"/proc/{qemu_pid}").exists()
        server.kill()
        deadline = time.monotonic() + 30
        while Path(f"/proc/{qemu_pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{qemu_pid}").exists(), "QEMU outlived azimg serve"
        console = server.data_dir / "blobs" / LOCATION / f"bootdiag-{vm.vm_id}.serialconsole.log"
        prompt = f"{SPECIALIZED_HOSTNAME} login:".encode()
        prompts_before = console.read_bytes().count(prompt) if console.exists() else 0
        server.start()
        client = server.compute_client()
        assert codes(client, group, "vm-crash") == [
            "ProvisioningState/succeeded", "PowerState/stopped",
        ]  # fmt: skip
        base = server.data_dir / "blobs" / LOCATION / f"osdisk-{vm.vm_id}.base"
        assert base.stat().st_nlink == 2  # the version's replica and the clone's own link
        gallery, image, version = version_id.split("/")[-5::2]
        client.gallery_image_versions.begin_delete(group, gallery, image, version).result()
        assert base.stat().st_nlink == 1  # the version's name for those bytes is gone
        client.virtual_machines.begin_start(group, "vm-crash").result()
        assert codes(client, group, "vm-crash")[1] == "PowerState/running"
        deadline = time.monotonic() + 600
        while console.read_bytes().count(prompt) <= prompts_before:
            assert time.monotonic() < deadline, "the restarted clone never reached its login"
            time.sleep(3)
        client.virtual_machines.begin_delete(group, "vm-crash").result()
        disk = client.disks.get(group, vm.storage_profile.os_disk.name)
        assert (disk.disk_state, disk.managed_by) == ("Unattached", None)
    finally:
        server.stop()
