"""Instance Metadata Service documents for one VM (provisioning.md §3), as pure functions.

cloud-init asks ``/metadata/instance?api-version=2021-08-01&extended=true`` and falls back to
2019-06-01 only on a 400; waagent asks 2018-02-01 for ``/metadata/instance/compute``. We answer
404/410/429/500 never: cloud-init would retry those for ~30 s. Keys travel in
``compute.publicKeys`` (cloud-init prefers them to the OVF route, which needs a Certificates
document). The ``network`` section carries the guest's real MAC so cloud-init's rendered config
still matches the NIC after first boot.

vmId and the SMBIOS UUID: on Azure Gen1 (SMBIOS 2.3) the guest's product_uuid is the vmId with
its first three fields byte-swapped; cloud-init's ``identity.byte_swap_system_uuid`` undoes that
when no EFI is present. QEMU's tables are SMBIOS ≥ 2.6, which Linux prints as given, so for a
Gen1 VM we hand QEMU the swapped form (``smbios_uuid``) and the guest sees exactly what Azure
shows it; Gen2 gets the vmId as is. ``vm_id_from_system_uuid`` is the guest-side rule.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from azimg.fabric.media import SshPublicKey
from azimg.fabric.wireserver import GuestRequest, GuestResponse

IMDS_IP = "169.254.169.254"
# Versions the real service lists; requests for others get 400 with this list.
API_VERSIONS = (
    "2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01", "2018-02-01",
    "2018-04-02", "2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01",
    "2019-06-04", "2019-08-01", "2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15",
    "2020-09-01", "2020-10-01", "2020-12-01", "2021-01-01", "2021-02-01", "2021-03-01",
    "2021-05-01", "2021-08-01", "2021-10-01", "2021-11-01", "2021-11-15", "2021-12-13",
    "2022-02-01", "2022-03-01", "2022-07-01", "2022-08-01", "2023-07-01", "2023-11-15",
    "2024-03-15", "2025-04-07",
)  # fmt: skip
USER_DATA_SINCE = "2021-01-01"
EXTENDED_SINCE = "2021-03-01"


@dataclass(frozen=True)
class InstanceMetadata:
    """Everything IMDS says about one VM; built by the platform from the VM resource."""

    vm_id: str
    name: str
    computer_name: str
    admin_username: str
    location: str
    resource_group: str
    subscription_id: str
    vm_size: str
    mac_address: str  # 12 hex digits, the guest NIC's MAC
    private_ip: str = "168.0.0.15"
    public_ip: str = ""  # the NIC's public IP address, when it has one
    subnet_address: str = "168.0.0.0"
    subnet_prefix: str = "7"
    disable_password_authentication: bool = True
    public_keys: tuple[SshPublicKey, ...] = ()
    user_data_b64: str = ""
    os_type: str = "Linux"
    tags: str = ""
    publisher: str = ""
    offer: str = ""
    sku: str = ""
    version: str = ""


def smbios_uuid(vm_id: str, generation: int) -> str:
    """The UUID QEMU must present (``-uuid``) so the guest sees what Azure would show it."""
    vid = uuid.UUID(vm_id)
    return str(uuid.UUID(bytes=vid.bytes_le)) if generation == 1 else str(vid)


def vm_id_from_system_uuid(system_uuid: str, *, has_efi: bool) -> str:
    """cloud-init's rule (identity.query_vm_id): byte-swap the first three fields on Gen1."""
    sid = uuid.UUID(system_uuid)
    return str(sid) if has_efi else str(uuid.UUID(bytes_le=sid.bytes))


def _version_at_least(version: str, floor: str) -> bool:
    return version >= floor  # ISO dates compare as strings


def instance_document(meta: InstanceMetadata, *, api_version: str, extended: bool) -> dict:
    """``/metadata/instance`` for one api-version; every primitive is a string, as on Azure."""
    compute: dict[str, object] = {
        "azEnvironment": "AzurePublicCloud",
        "location": meta.location,
        "name": meta.name,
        "offer": meta.offer,
        "osType": meta.os_type,
        "placementGroupId": "",
        "platformFaultDomain": "0",
        "platformUpdateDomain": "0",
        "provider": "Microsoft.Compute",
        "publisher": meta.publisher,
        "resourceGroupName": meta.resource_group,
        "resourceId": (
            f"/subscriptions/{meta.subscription_id}/resourceGroups/{meta.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{meta.name}"
        ),
        "sku": meta.sku,
        "subscriptionId": meta.subscription_id,
        "tags": meta.tags,
        "version": meta.version,
        "vmId": meta.vm_id,
        "vmScaleSetName": "",
        "vmSize": meta.vm_size,
        "zone": "",
        "osProfile": {
            "adminUsername": meta.admin_username,
            "computerName": meta.computer_name,
            "disablePasswordAuthentication": "true"
            if meta.disable_password_authentication
            else "false",
        },
        "publicKeys": [{"keyData": k.key_data, "path": k.path} for k in meta.public_keys],
    }
    if _version_at_least(api_version, USER_DATA_SINCE):
        compute["userData"] = meta.user_data_b64
    doc: dict[str, object] = {
        "compute": compute,
        "network": {
            "interface": [
                {
                    "macAddress": meta.mac_address.replace(":", "").upper(),
                    "ipv4": {
                        "ipAddress": [
                            {"privateIpAddress": meta.private_ip, "publicIpAddress": meta.public_ip}
                        ],
                        "subnet": [{"address": meta.subnet_address, "prefix": meta.subnet_prefix}],
                    },
                    "ipv6": {"ipAddress": []},
                }
            ]
        },
    }
    if extended and _version_at_least(api_version, EXTENDED_SINCE):
        doc["extended"] = {"compute": {"ppsType": "None"}}
    return doc


def _error(status: int, message: str, **extra: object) -> GuestResponse:
    body = json.dumps({"error": message, **extra}).encode()
    return GuestResponse(status, body, "application/json; charset=utf-8")


def route_imds(req: GuestRequest, meta: InstanceMetadata) -> GuestResponse:
    """169.254.169.254:80 — ``/metadata/instance[/<path>]`` with the real service's checks."""
    if "x-forwarded-for" in req.headers:
        return _error(400, "Bad request. Request is forwarded.")
    if req.headers.get("metadata", "").lower() != "true":
        return _error(400, "Bad request. Required metadata header not specified")
    parts = [p for p in req.path.split("/") if p]
    if req.method != "GET":
        return _error(405, "Method not allowed")
    if parts[:2] != ["metadata", "instance"]:
        return _error(404, "Not found")
    api_version = req.query.get("api-version")
    if api_version not in API_VERSIONS:
        return _error(
            400, "Bad request. api-version is invalid or was not specified in the request.",
            newest_versions=list(reversed(API_VERSIONS[-3:])),
        )  # fmt: skip
    extended = req.query.get("extended", "").lower() == "true"
    node: object = instance_document(meta, api_version=api_version, extended=extended)
    for part in parts[2:]:
        node = _child(node, part)
        if node is None:
            return _error(404, "Not found")
    if req.query.get("format") == "text":
        if isinstance(node, dict | list):
            return _error(400, "Bad request. format=text is for leaf values")
        return GuestResponse(200, str(node).encode(), "text/plain; charset=utf-8")
    return GuestResponse(200, json.dumps(node).encode(), "application/json; charset=utf-8")


def _child(node: object, part: str) -> object | None:
    if isinstance(node, Mapping):
        return node.get(part)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return None
