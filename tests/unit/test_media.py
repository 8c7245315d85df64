"""ovf-env.xml and the UDF provisioning disc: what both agents need (provisioning.md §1)."""

from __future__ import annotations

import io
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

from azimg.errors import CorruptImage, InvalidArgument
from azimg.fabric.media import (
    OVF_NS,
    WA_NS,
    LinuxProvisioning,
    SshPublicKey,
    build_ovf_env,
    disc_label,
    parse_ovf_env,
    read_ovf_env_from_disc,
    write_provisioning_disc,
)

KEY = SshPublicKey("/home/opsadmin/.ssh/authorized_keys", "ssh-ed25519 AAAAC3Nz tail@test")


def make_provisioning(**overrides: object) -> LinuxProvisioning:
    values: dict[str, object] = {"hostname": "vm-alpha", "username": "opsadmin"}
    values.update(overrides)
    return LinuxProvisioning(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cfg",
    [
        make_provisioning(),
        make_provisioning(public_keys=(KEY,), custom_data=b"#cloud-config\nruncmd: [[true]]\n"),
        make_provisioning(password="S3cret!pw", disable_password_authentication=False),
        make_provisioning(provision_guest_agent=False),
    ],
)
def test_ovf_env_round_trips(cfg: LinuxProvisioning) -> None:
    assert parse_ovf_env(build_ovf_env(cfg)) == cfg


def test_ovf_env_has_every_element_waagent_requires() -> None:
    root = ET.fromstring(build_ovf_env(make_provisioning()))
    wa = f"{{{WA_NS}}}"
    assert root.tag == f"{{{OVF_NS}}}Environment"
    for path in (
        f"{wa}ProvisioningSection/{wa}Version",
        f"{wa}ProvisioningSection/{wa}LinuxProvisioningConfigurationSet/{wa}HostName",
        f"{wa}ProvisioningSection/{wa}LinuxProvisioningConfigurationSet/{wa}UserName",
        f"{wa}PlatformSettingsSection/{wa}PlatformSettings/{wa}ProvisionGuestAgent",
    ):
        assert root.find(path) is not None, path


def test_ovf_env_never_repeats_a_property() -> None:
    """cloud-init raises BrokenAzureDataSource on a duplicated property."""
    root = ET.fromstring(build_ovf_env(make_provisioning(public_keys=(KEY, KEY))))
    linux = root.find(
        f"{{{WA_NS}}}ProvisioningSection/{{{WA_NS}}}LinuxProvisioningConfigurationSet"
    )
    assert linux is not None
    tags = [child.tag for child in linux]
    assert len(tags) == len(set(tags))


def test_custom_data_is_base64_in_the_document() -> None:
    raw = build_ovf_env(make_provisioning(custom_data=b"#!/bin/sh\necho hi\n"))
    assert b"<wa:CustomData>IyEvYmluL3NoCmVjaG8gaGkK</wa:CustomData>" in raw


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"not xml", "ovf-env.xml"),
        (b"<Environment/>", "Environment"),
        (f'<e:Environment xmlns:e="{OVF_NS}"/>'.encode(), "Section"),
    ],
)
def test_bad_ovf_env_is_corrupt(raw: bytes, field: str) -> None:
    with pytest.raises(CorruptImage) as err:
        parse_ovf_env(raw)
    assert err.value.field == field


def test_ovf_env_needs_host_and_user() -> None:
    with pytest.raises(InvalidArgument):
        build_ovf_env(make_provisioning(hostname=""))


def test_disc_label_has_azure_shape() -> None:
    assert disc_label(datetime(2016, 12, 12, 12, 9)) == "rd_rdfe_stable.161212-1209"


def test_disc_is_udf_labelled_and_carries_ovf_env(tmp_path: Path) -> None:
    ovf = build_ovf_env(make_provisioning(public_keys=(KEY,)))
    disc = tmp_path / "ovf.iso"
    with disc.open("wb") as out:
        write_provisioning_disc(ovf, out, label="rd_rdfe_stable.261126-1510")
    with disc.open("rb") as fh:
        assert read_ovf_env_from_disc(fh) == ovf
    blkid = shutil.which("blkid") or "/usr/sbin/blkid"
    probe = subprocess.run(
        [blkid, "-p", "-o", "udev", str(disc)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "ID_FS_TYPE=udf" in probe
    assert "ID_FS_LABEL=rd_rdfe_stable.261126-1510" in probe


def test_disc_rejects_a_foreign_label() -> None:
    with pytest.raises(InvalidArgument):
        write_provisioning_disc(b"<x/>", io.BytesIO(), label="CDROM")


def test_reading_a_disc_that_is_not_one_is_corrupt() -> None:
    with pytest.raises(CorruptImage):
        read_ovf_env_from_disc(io.BytesIO(b"\0" * 65536))
