"""`azimg upload` as a user runs it (a subprocess) against `azimg serve`: the disk's bytes equal
the input, only allocated ranges travel, a killed upload resumes, and a second platform is
reached with nothing but the AZURE_* variables and its endpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.api.conftest import PlatformServer
from tests.api.helpers import MIB, download

AZIMG = [sys.executable, "-m", "azimg.cli.main"]


def sparse_raw(path: Path, *, mib: int, every: int = 4, seed: int = 7) -> Path:
    """A raw image (not Azure-ready: no footer) with 1 MiB of random data every ``every`` MiB."""
    with open(path, "wb") as fh:
        fh.truncate(mib * MIB)
        for i in range(0, mib, every):
            fh.seek(i * MIB)
            fh.write(os.urandom(MIB))
    return path


def run_upload(
    server: PlatformServer | None, image: Path, rg: str, name: str, *extra: str, **kw: Any
) -> subprocess.CompletedProcess[str]:
    cmd = [*AZIMG, "upload", str(image), "-g", rg, "-n", name, "--output", "json", *extra]
    if server is not None:
        cmd += ["--data-dir", str(server.data_dir), "--port", str(server.port)]
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def disk_bytes(compute: Any, rg: str, name: str) -> bytes:
    sas = compute.disks.begin_grant_access(
        rg, name, {"access": "Read", "durationInSeconds": 600}
    ).result()
    try:
        return download(sas.access_sas)
    finally:
        compute.disks.begin_revoke_access(rg, name).result()


def expected_vhd(raw: Path, tmp_path: Path) -> bytes:
    """What Azure should hold: the raw bytes, padded to a whole MiB, plus a fixed footer."""
    from azimg.disk.convert import convert

    out = tmp_path / "expected.vhd"
    convert(raw, out)
    return out.read_bytes()


def test_upload_sends_only_data_and_the_disk_equals_the_input(
    platform_server: PlatformServer, compute: Any, resource_group: str, tmp_path: Path
) -> None:
    raw = sparse_raw(tmp_path / "img.raw", mib=40)
    proc = run_upload(platform_server, raw, resource_group, "d1", "--force")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    disk = compute.disks.get(resource_group, "d1")
    assert doc["id"] == disk.id and disk.disk_state == "Unattached"
    assert doc["bytesSent"] == 10 * MIB + 512  # ten 1 MiB data runs and the footer
    assert doc["converted"] and "footer" in doc["converted"]
    got = disk_bytes(compute, resource_group, "d1")
    want = expected_vhd(raw, tmp_path)
    assert got[:-512] == want[:-512]
    assert got[-512:-504] == b"conectix"


def test_blockers_refuse_the_upload_unless_forced(
    platform_server: PlatformServer, compute: Any, resource_group: str, tmp_path: Path
) -> None:
    raw = sparse_raw(tmp_path / "img.raw", mib=24)
    proc = run_upload(platform_server, raw, resource_group, "d2")
    assert proc.returncode == 1
    assert "blocker" in proc.stderr and "--force" in proc.stderr
    assert [d.name for d in compute.disks.list_by_resource_group(resource_group)] == []


def _blob_allocated(data_dir: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in (data_dir / "blobs").rglob("*") if p.is_file())


def test_a_killed_upload_resumes_by_running_it_again(
    platform_server: PlatformServer, compute: Any, resource_group: str, tmp_path: Path
) -> None:
    raw = sparse_raw(tmp_path / "big.raw", mib=256, every=1)
    base = _blob_allocated(platform_server.data_dir)
    cmd = [*AZIMG, "upload", str(raw), "-g", resource_group, "-n", "d3", "--force"]
    cmd += ["--threads", "1", "--data-dir", str(platform_server.data_dir)]
    cmd += ["--port", str(platform_server.port), "--output", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _blob_allocated(platform_server.data_dir) - base < 64 * MIB:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert compute.disks.get(resource_group, "d3").disk_state == "ActiveUpload"

    again = run_upload(platform_server, raw, resource_group, "d3", "--force")
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["resumed"] is True
    assert 0 < doc["bytesSent"] <= 256 * MIB + 512 - 64 * MIB
    assert disk_bytes(compute, resource_group, "d3")[:-512] == expected_vhd(raw, tmp_path)[:-512]


def test_a_second_platform_is_reached_with_only_the_azure_environment(
    make_server: Any, tmp_path: Path
) -> None:
    other = make_server()
    info = other.info
    rg = "rg-env"
    other.resource_client().resource_groups.create_or_update(rg, {"location": "westus"})
    raw = sparse_raw(tmp_path / "img.raw", mib=24)
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {
        k: info[k]
        for k in (
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "AZURE_SUBSCRIPTION_ID",
            "AZURE_AUTHORITY_HOST",
            "AZIMG_ARM_ENDPOINT",
            "REQUESTS_CA_BUNDLE",
        )
    }
    env["AZIMG_DATA_DIR"] = str(tmp_path / "not-a-platform")  # the local default is not used
    proc = run_upload(None, raw, rg, "env1", "--force", env=env)
    assert proc.returncode == 0, proc.stderr
    disk = other.compute_client().disks.get(rg, "env1")
    assert json.loads(proc.stdout)["id"] == disk.id
    assert disk.location == "westus" and disk.disk_state == "Unattached"
    assert not (tmp_path / "not-a-platform").exists()


def test_location_creates_a_missing_resource_group(
    platform_server: PlatformServer, compute: Any, resources: Any, tmp_path: Path
) -> None:
    raw = sparse_raw(tmp_path / "img.raw", mib=24)
    rg = f"rg-new-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    missing = run_upload(platform_server, raw, rg, "d4", "--force")
    assert missing.returncode == 2 and "could not be found" in missing.stderr
    made = run_upload(platform_server, raw, rg, "d4", "--force", "--location", "westus")
    assert made.returncode == 0, made.stderr
    assert resources.resource_groups.get(rg).location == "westus"
    assert compute.disks.get(rg, "d4").location == "westus"
    resources.resource_groups.begin_delete(rg).result()


def test_a_qcow2_is_converted_on_the_way(
    platform_server: PlatformServer, compute: Any, resource_group: str, tmp_path: Path
) -> None:
    raw = sparse_raw(tmp_path / "img.raw", mib=24)
    qcow2 = tmp_path / "img.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)],
                   check=True)  # fmt: skip
    proc = run_upload(platform_server, qcow2, resource_group, "q1", "--force")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert "qcow2" in doc["converted"] and doc["bytesSent"] == 6 * MIB + 512
    got = disk_bytes(compute, resource_group, "q1")
    assert got[:-512] == expected_vhd(raw, tmp_path)[:-512]
