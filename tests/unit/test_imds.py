"""IMDS documents and routes; vmId agreement with the SMBIOS UUID (provisioning.md §3)."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qsl, urlsplit

import pytest

from azimg.fabric.imds import (
    InstanceMetadata,
    route_imds,
    smbios_uuid,
    vm_id_from_system_uuid,
)
from azimg.fabric.media import SshPublicKey
from azimg.fabric.wireserver import GuestRequest

KEY = SshPublicKey("/home/opsadmin/.ssh/authorized_keys", "ssh-ed25519 AAAAC3Nz tail@test")


def make_metadata(**overrides: object) -> InstanceMetadata:
    values: dict[str, object] = {
        "vm_id": "3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff",
        "name": "vm-alpha",
        "computer_name": "alpha",
        "admin_username": "opsadmin",
        "location": "westeurope",
        "resource_group": "rg-emu",
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "vm_size": "Standard_B2s",
        "mac_address": "00:0d:3a:12:34:56",
        "public_keys": (KEY,),
        "user_data_b64": "dXNlcg==",
    }
    values.update(overrides)
    return InstanceMetadata(**values)  # type: ignore[arg-type]


def get(url: str, meta: InstanceMetadata | None = None, **headers: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    hdrs = {"metadata": "true", **{k.lower(): v for k, v in headers.items()}}
    req = GuestRequest("GET", parts.path, dict(parse_qsl(parts.query)), hdrs)
    resp = route_imds(req, meta or make_metadata())
    return resp.status, resp.body


def test_cloud_init_first_call_gets_what_it_reads() -> None:
    status, body = get("/metadata/instance?api-version=2021-08-01&extended=true")
    doc = json.loads(body)
    assert status == 200
    compute = doc["compute"]
    assert compute["osProfile"] == {
        "adminUsername": "opsadmin",
        "computerName": "alpha",
        "disablePasswordAuthentication": "true",
    }
    assert compute["publicKeys"] == [{"keyData": KEY.key_data, "path": KEY.path}]
    assert compute["vmId"] == "3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff"
    assert compute["userData"] == "dXNlcg=="
    assert doc["network"]["interface"][0]["macAddress"] == "000D3A123456"
    assert doc["extended"] == {"compute": {"ppsType": "None"}}


@pytest.mark.parametrize(
    ("url", "has_extended", "has_user_data"),
    [
        ("/metadata/instance?api-version=2021-08-01&extended=true", True, True),
        ("/metadata/instance?api-version=2021-08-01", False, True),
        ("/metadata/instance?api-version=2019-06-01", False, False),
        ("/metadata/instance?api-version=2019-06-01&extended=true", False, False),
    ],
)
def test_sections_follow_the_api_version(url: str, has_extended: bool, has_user_data: bool) -> None:
    status, body = get(url)
    doc = json.loads(body)
    assert status == 200
    assert ("extended" in doc) is has_extended
    assert ("userData" in doc["compute"]) is has_user_data


def test_every_primitive_is_a_string() -> None:
    def leaves(node: object) -> list[object]:
        if isinstance(node, dict):
            return [x for v in node.values() for x in leaves(v)]
        if isinstance(node, list):
            return [x for v in node for x in leaves(v)]
        return [node]

    _, body = get("/metadata/instance?api-version=2021-08-01&extended=true")
    assert all(isinstance(leaf, str) for leaf in leaves(json.loads(body)))


@pytest.mark.parametrize(
    ("url", "headers", "status"),
    [
        ("/metadata/instance/compute?api-version=2018-02-01", {"Metadata": "True"}, 200),
        ("/metadata/instance?api-version=2021-08-01", {"Metadata": "false"}, 400),
        ("/metadata/instance?api-version=2021-08-01", {"X-Forwarded-For": "1.2.3.4"}, 400),
        ("/metadata/instance", {}, 400),
        ("/metadata/instance?api-version=1999-01-01", {}, 400),
        ("/metadata/instance/nothing?api-version=2021-08-01", {}, 404),
        ("/metadata/identity?api-version=2021-08-01", {}, 404),
    ],
)
def test_imds_checks(url: str, headers: dict[str, str], status: int) -> None:
    assert get(url, **headers)[0] == status


def test_waagent_compute_call_gets_just_compute() -> None:
    status, body = get("/metadata/instance/compute?api-version=2018-02-01", Metadata="True")
    assert status == 200
    assert json.loads(body)["name"] == "vm-alpha"


def test_text_leaf() -> None:
    url = "/metadata/instance/compute/osProfile/computerName?api-version=2021-08-01&format=text"
    assert get(url) == (200, b"alpha")


def test_missing_api_version_lists_newest_versions() -> None:
    status, body = get("/metadata/instance")
    assert status == 400
    assert json.loads(body)["newest_versions"][0] == "2025-04-07"


@pytest.mark.parametrize(
    ("vm_id", "generation", "product_uuid"),
    [
        # Gen1 (SMBIOS 2.3 on Hyper-V): the guest sees the first three fields byte-swapped.
        ("3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff", 1, "2e5a0c3f-2c1b-3e4d-8f90-aabbccddeeff"),
        ("3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff", 2, "3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff"),
    ],
)
def test_vm_id_agrees_with_what_the_guest_computes(
    vm_id: str, generation: int, product_uuid: str
) -> None:
    assert smbios_uuid(vm_id, generation) == product_uuid
    assert vm_id_from_system_uuid(product_uuid, has_efi=generation == 2) == vm_id


@pytest.mark.parametrize("generation", [1, 2])
def test_vm_id_agreement_holds_for_any_uuid(generation: int) -> None:
    for _ in range(50):
        vm_id = str(uuid.uuid4())
        seen = smbios_uuid(vm_id, generation)
        assert vm_id_from_system_uuid(seen, has_efi=generation == 2) == vm_id
