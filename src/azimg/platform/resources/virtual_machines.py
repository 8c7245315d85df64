"""Virtual machines (``Microsoft.Compute/virtualMachines``): rules, documents, power, and the
platform's side of the fabric.

Decisions (reference/arm-api.md §8, provisioning.md §7):
- Sources: ``imageReference.id`` naming a gallery version, ``latest`` or a definition (latest);
  or ``osDisk.createOption: Attach`` of an Unattached managed disk. A generalized source needs
  ``osProfile``; a specialized one or an attached disk forbids it (Azure's messages).
- The OS disk of an image-based VM is a new managed disk whose bytes are a qcow2 overlay over
  the version's replica (``disk/clone.py``): constant time, and the version is never written.
  Its document is a ``Microsoft.Compute/disks`` like any other (``managedBy`` = the VM); when it
  outlives its VM (``deleteOption: Detach``) it is first flattened into a fixed VHD so every
  disk operation sees the bytes it expects. An attached disk is booted in place.
- Creation is an operation the fabric finishes: ``OSProvisioningInprogress`` until the guest's
  first Ready health report, then ``OSProvisioningComplete`` until the VM agent reports (or a
  short grace period passes: extensions would install here), then Succeeded. No Ready before
  the platform's provisioning timeout gives ``OSProvisioningTimedOut``; a ProvisioningFailed
  report gives ``OSProvisioningClientError``. The VM keeps running in both cases, as on Azure.
  Specialized VMs skip all of that: the operation ends when QEMU is launched.
- The create operation is not run on the job pool (a boot takes a minute and would starve the
  pool); the fabric's events finish it. After a platform crash the job system fails it
  (``on_fail`` marks the VM Failed), and ``VmHost`` reconciles: a VM whose process did not
  survive is marked stopped. VMs never outlive the platform (see fabric/supervisor.py).
- The serial console is written straight into a blob of the VM's region, so boot diagnostics
  are served by the SAS blob endpoint like any other bytes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from azimg.disk.clone import create_clone
from azimg.errors import AzimgError
from azimg.fabric import provisioning as prov
from azimg.fabric.imds import InstanceMetadata
from azimg.fabric.media import LinuxProvisioning, SshPublicKey
from azimg.fabric.supervisor import Supervisor, VmSpec, mac_for
from azimg.fabric.wireserver import AgentStatus
from azimg.platform import sas
from azimg.platform.errors import (
    InvalidParameter,
    NotImplementedFeature,
    OperationNotAllowed,
    PropertyChangeNotAllowed,
)
from azimg.platform.jobs import JobSpec
from azimg.platform.resources import disks
from azimg.platform.resources.common import (
    check_location,
    check_name,
    check_tags,
    enum_value,
    parse_id,
    require_document,
    require_resource_group,
    resource_id,
    system_data,
    type_of,
    utc_now,
)
from azimg.platform.store import BlobRef, Document, Operation, Store

log = logging.getLogger(__name__)

VM_TYPE = "Microsoft.Compute/virtualMachines"
JOB_CREATE = "virtualMachines.create"
JOB_POWER = "virtualMachines.power"
JOB_DELETE = "virtualMachines.delete"
DEFAULT_PROVISIONING_TIMEOUT = 1200.0  # Azure: about 20 minutes
COMPLETE_GRACE_S = 10.0  # OSProvisioningComplete → Succeeded when no agent reports sooner


@dataclass(frozen=True)
class VmSize:
    vcpus: int
    memory_mib: int


# A small table of real sizes (vCPUs, memory). Memory is what the guest sees; QEMU allocates
# it lazily, so large sizes cost little until the guest uses the memory.
VM_SIZES: Mapping[str, VmSize] = {
    "Standard_B1s": VmSize(1, 1024),
    "Standard_B1ms": VmSize(1, 2048),
    "Standard_B2s": VmSize(2, 4096),
    "Standard_B2ms": VmSize(2, 8192),
    "Standard_DS1_v2": VmSize(1, 3584),
    "Standard_DS2_v2": VmSize(2, 7168),
    "Standard_D2s_v3": VmSize(2, 8192),
    "Standard_D2s_v5": VmSize(2, 8192),
    "Standard_D4s_v5": VmSize(4, 16384),
    "Standard_D2as_v5": VmSize(2, 8192),
    "Standard_E2s_v5": VmSize(2, 16384),
    "Standard_F2s_v2": VmSize(2, 4096),
}

# OSProfile.adminUsername docstring (azure-mgmt-compute 39).
DISALLOWED_USERNAMES = frozenset(
    [
        "administrator",
        "admin",
        "user",
        "user1",
        "test",
        "user2",
        "test1",
        "user3",
        "admin1",
        "1",
        "123",
        "a",
        "actuser",
        "adm",
        "admin2",
        "aspnet",
        "backup",
        "console",
        "david",
        "guest",
        "john",
        "owner",
        "root",
        "server",
        "sql",
        "support",
        "support_388945a0",
        "sys",
        "test2",
        "test3",
        "user4",
        "user5",
    ]
)
DISALLOWED_PASSWORDS = frozenset(
    [
        "abc@123",
        "P@$$w0rd",
        "P@ssw0rd",
        "P@ssword123",
        "Pa$$word",
        "pass@word1",
        "Password!",
        "Password1",
        "Password22",
        "iloveyou!",
    ]
)
_LINUX_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,63}$", re.IGNORECASE)
_COMPUTER_NAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,64}(?<!-)$")
MAX_CUSTOM_DATA = 65535
OS_DISK_DELETE_OPTIONS = ("Delete", "Detach")


# --- the resource -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OsDiskFile:
    """The bytes QEMU boots: a qcow2 clone or an attached disk's fixed VHD."""

    blob: BlobRef
    format: str  # qcow2 | vhd
    size: int  # guest-visible bytes


@dataclass(frozen=True)
class VirtualMachine:
    id: str
    name: str
    location: str
    vm_id: str
    vm_size: str
    storage_profile: Mapping[str, Any]  # the ARM shape returned to clients
    os_profile: Mapping[str, Any] | None  # without the write-only adminPassword / customData
    time_created: str
    system_data: Mapping[str, Any]
    generation: int
    os_state: str  # of the source: Generalized | Specialized
    os_disk: OsDiskFile
    provisioning_state: str = "Creating"  # Creating | Updating | Succeeded | Failed | Deleting
    power_state: str = "starting"  # starting running stopping stopped deallocating deallocated
    os_provisioning: str | None = None  # InProgress | Complete | TimedOut | ClientError
    os_provisioning_message: str | None = None
    provisioned: bool = False  # the guest consumed its provisioning data
    generalized: bool = False
    agent: Mapping[str, Any] | None = None
    create_operation: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    echoed: Mapping[str, Any] = field(default_factory=dict)  # networkProfile, securityProfile…
    user_data: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)  # adminPassword, customData

    @property
    def resource_group(self) -> str:
        return parse_id(self.id)["resource_group"]

    @property
    def subscription_id(self) -> str:
        return parse_id(self.id)["subscription"]

    @property
    def os_disk_id(self) -> str:
        return str(self.storage_profile["osDisk"]["managedDisk"]["id"])


@dataclass(frozen=True)
class Status:
    code: str
    level: str
    display_status: str
    message: str | None = None
    time: str | None = None


def _to_doc(vm: VirtualMachine) -> Document:
    body = asdict(vm)
    body["os_disk"]["blob"] = vm.os_disk.blob.to_json()
    return Document(id=vm.id, type=VM_TYPE, body=body, location=vm.location)


def from_doc(doc: Document) -> VirtualMachine:
    b = dict(doc.body)
    disk = dict(b["os_disk"])
    disk["blob"] = BlobRef.from_json(disk["blob"])
    b["os_disk"] = OsDiskFile(**disk)
    return VirtualMachine(**b)


def _save(store: Store, vm: VirtualMachine) -> VirtualMachine:
    store.meta.put(_to_doc(vm))
    return vm


def vm_resource_id(subscription_id: str, resource_group: str, name: str) -> str:
    return resource_id(subscription_id, resource_group, VM_TYPE, name)


def get_by_id(store: Store, rid: str) -> VirtualMachine:
    return from_doc(require_document(store, rid, VM_TYPE))


def get(store: Store, *, subscription_id: str, resource_group: str, name: str) -> VirtualMachine:
    return get_by_id(store, vm_resource_id(subscription_id, resource_group, name))


def list_by_resource_group(
    store: Store, *, subscription_id: str, resource_group: str
) -> list[VirtualMachine]:
    rg = require_resource_group(store, subscription_id, resource_group)
    return [from_doc(d) for d in store.meta.list(type=VM_TYPE, prefix=rg.id + "/")]


def list_by_subscription(store: Store, *, subscription_id: str) -> list[VirtualMachine]:
    return [
        from_doc(d)
        for d in store.meta.list(type=VM_TYPE, prefix=f"/subscriptions/{subscription_id}/")
    ]


# --- pure rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFacts:
    """What the VM's source says about the OS it carries."""

    os_state: str  # Generalized | Specialized
    generation: int
    attach: bool


def check_vm_size(value: Any) -> str:
    if value is None:
        raise InvalidParameter(
            "Required parameter 'hardwareProfile.vmSize' is missing (null).",
            target="hardwareProfile.vmSize",
        )
    return enum_value(value, tuple(VM_SIZES), target="hardwareProfile.vmSize")


def check_os_profile(
    os_profile: Mapping[str, Any] | None, source: SourceFacts
) -> Mapping[str, Any] | None:
    """Azure's osProfile rules for Linux; returns the profile with defaults filled in."""
    if source.attach or source.os_state == "Specialized":
        if os_profile:
            raise InvalidParameter("Parameter 'osProfile' is not allowed.", target="osProfile")
        return None
    if not os_profile:
        raise InvalidParameter(
            "Required parameter 'osProfile' is missing (null).", target="osProfile"
        )
    computer = os_profile.get("computerName")
    if not isinstance(computer, str) or not _COMPUTER_NAME.match(computer):
        raise InvalidParameter(
            f"Computer name '{computer}' is invalid. It must be 1-64 letters, digits or '-', "
            "and cannot start or end with '-'.",
            target="osProfile.computerName",
        )
    user = os_profile.get("adminUsername")
    if not isinstance(user, str) or not user:
        raise InvalidParameter(
            "Required parameter 'adminUsername' is missing (null).",
            target="osProfile.adminUsername",
        )
    if user.lower() in DISALLOWED_USERNAMES or not _LINUX_USER.match(user):
        raise InvalidParameter(
            f"The Admin Username specified is not allowed: '{user}'.",
            target="osProfile.adminUsername",
        )
    linux = dict(os_profile.get("linuxConfiguration") or {})
    password = os_profile.get("adminPassword")
    keys = list(((linux.get("ssh") or {}).get("publicKeys")) or [])
    disable_pw = linux.get("disablePasswordAuthentication")
    if disable_pw is None:
        disable_pw = password is None
    if password is not None:
        check_password(password)
    if disable_pw and password is not None:
        raise InvalidParameter(
            "Admin password cannot be specified when password authentication is disabled.",
            target="osProfile.adminPassword",
        )
    if not disable_pw and password is None:
        raise InvalidParameter(
            "Required parameter 'adminPassword' is missing (null).",
            target="osProfile.adminPassword",
        )
    if disable_pw and not keys:
        raise InvalidParameter(
            "Authentication using either SSH or by user name and password must be enabled in "
            "Linux profile.",
            target="linuxConfiguration",
        )
    expected_path = f"/home/{user}/.ssh/authorized_keys"
    for key in keys:
        if key.get("path", expected_path) != expected_path:
            raise InvalidParameter(
                "Destination path for SSH public keys is currently limited to its default value "
                f"{expected_path} due to a known issue in Linux provisioning agent.",
                target="linuxConfiguration.ssh.publicKeys.path",
            )
        if not isinstance(key.get("keyData"), str) or not key["keyData"].startswith(
            ("ssh-", "ecdsa-")
        ):
            raise InvalidParameter(
                "The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.",
                target="linuxConfiguration.ssh.publicKeys.keyData",
            )
    custom = os_profile.get("customData")
    if custom is not None:
        try:
            decoded = base64.b64decode(custom, validate=True)
        except (ValueError, TypeError):
            raise InvalidParameter(
                "Custom data is not valid base64.", target="osProfile.customData"
            ) from None
        if len(decoded) > MAX_CUSTOM_DATA:
            raise InvalidParameter(
                f"Custom data in OSProfile must be at most {MAX_CUSTOM_DATA} bytes.",
                target="osProfile.customData",
            )
    linux["disablePasswordAuthentication"] = bool(disable_pw)
    linux["ssh"] = {"publicKeys": [{"path": expected_path, "keyData": k["keyData"]} for k in keys]}
    linux.setdefault("provisionVMAgent", True)
    profile = {
        "computerName": computer,
        "adminUsername": user,
        "linuxConfiguration": linux,
        "secrets": list(os_profile.get("secrets") or []),
        "allowExtensionOperations": os_profile.get("allowExtensionOperations", True),
        "requireGuestProvisionSignal": True,
    }
    if profile["secrets"]:
        raise NotImplementedFeature(
            "Key Vault secrets in osProfile are not implemented by azimg.",
            target="osProfile.secrets",
        )
    return profile


def check_password(password: Any) -> None:
    if not isinstance(password, str) or not 6 <= len(password) <= 72:
        raise InvalidParameter(
            "The supplied password must be between 6-72 characters long and must satisfy at "
            "least 3 of password complexity requirements from the following:\n1) Contains an "
            "uppercase character\n2) Contains a lowercase character\n3) Contains a numeric "
            "digit\n4) Contains a special character\n5) Control characters are not allowed",
            target="adminPassword",
        )
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[\W_]"))
    if classes < 3 or password in DISALLOWED_PASSWORDS:
        raise InvalidParameter(
            "The supplied password must be between 6-72 characters long and must satisfy at "
            "least 3 of password complexity requirements from the following:\n1) Contains an "
            "uppercase character\n2) Contains a lowercase character\n3) Contains a numeric "
            "digit\n4) Contains a special character\n5) Control characters are not allowed",
            target="adminPassword",
        )


def generation_of(hyper_v_generation: str | None) -> int:
    return 2 if (hyper_v_generation or "V1").upper() == "V2" else 1


def statuses(vm: VirtualMachine) -> list[Status]:
    """The instance view's ``statuses`` (reference §8.5)."""
    out: list[Status] = []
    state = vm.provisioning_state
    if state == "Creating" and vm.os_provisioning == "InProgress":
        out.append(
            Status("ProvisioningState/creating/OSProvisioningInprogress", "Info",
                   "OS Provisioning In progress")
        )  # fmt: skip
    elif state == "Creating" and vm.os_provisioning == "Complete":
        out.append(
            Status("ProvisioningState/creating/OSProvisioningComplete", "Info",
                   "OS Provisioning Complete")
        )  # fmt: skip
    elif state == "Failed" and vm.os_provisioning == "TimedOut":
        out.append(
            Status("ProvisioningState/failed/OSProvisioningTimedOut", "Error",
                   "Provisioning failed", vm.os_provisioning_message)
        )  # fmt: skip
    elif state == "Failed" and vm.os_provisioning == "ClientError":
        out.append(
            Status("ProvisioningState/failed/OSProvisioningClientError", "Error",
                   "Provisioning failed", vm.os_provisioning_message)
        )  # fmt: skip
    elif state == "Failed":
        out.append(
            Status("ProvisioningState/failed/InternalError", "Error", "Provisioning failed",
                   vm.os_provisioning_message)
        )  # fmt: skip
    else:
        out.append(
            Status(f"ProvisioningState/{state.lower()}", "Info", f"Provisioning {state.lower()}")
        )
    out.append(Status(f"PowerState/{vm.power_state}", "Info", f"VM {vm.power_state}"))
    if vm.generalized:
        out.append(Status("OSState/generalized", "Info", "VM generalized"))
    return out


# --- create ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    facts: SourceFacts
    blob: BlobRef  # the bytes to clone (image) or to boot in place (attach)
    size: int  # guest-visible bytes
    reference: Mapping[str, Any] | None  # imageReference as returned
    disk: disks.Disk | None = None  # the attached disk


def _resolve_source(store: Store, storage: Mapping[str, Any], region: str) -> _Source:
    from azimg.platform.resources import gallery_versions

    image_ref = storage.get("imageReference") or {}
    os_disk = storage.get("osDisk") or {}
    create_option = os_disk.get("createOption")
    if create_option is not None:
        create_option = enum_value(
            create_option, ("FromImage", "Attach"), target="storageProfile.osDisk.createOption"
        )
    if create_option == "Attach":
        if image_ref:
            raise InvalidParameter(
                "Cannot attach an existing OS disk if the VM is created from a platform, user "
                "or a shared gallery image.",
                target="osDisk",
            )
        disk_id = (os_disk.get("managedDisk") or {}).get("id")
        if not disk_id:
            raise InvalidParameter(
                "Required parameter 'osDisk.managedDisk.id' is missing (null).",
                target="osDisk.managedDisk.id",
            )
        d = disks.get_by_id(store, disk_id)
        if d.managed_by or d.disk_state not in ("Unattached",):
            owner = f"VM '{d.managed_by}'" if d.managed_by else f"state {d.disk_state}"
            raise OperationNotAllowed(
                f"Disk '{d.name}' cannot be attached: it is already attached to {owner}.",
                target="osDisk.managedDisk.id",
            )
        if d.location != region:
            raise InvalidParameter(
                f"Disk '{d.name}' is in region '{d.location}'; the VM is in '{region}'. "
                "An attached disk must be in the VM's region.",
                target="osDisk.managedDisk.id",
            )
        os_type = os_disk.get("osType") or d.os_type
        if (os_type or "").lower() != "linux":
            raise InvalidParameter(
                "The osDisk.osType of an attached OS disk must be 'Linux' in azimg.",
                target="osDisk.osType",
            )
        return _Source(
            facts=SourceFacts("Specialized", generation_of(d.hyper_v_generation), attach=True),
            blob=d.blob,
            size=d.disk_size_bytes,
            reference=None,
            disk=d,
        )
    ref_id = image_ref.get("id")
    if not ref_id:
        if image_ref:
            raise NotImplementedFeature(
                "Only imageReference.id (a gallery image, version or managed image) is "
                "implemented by azimg; marketplace, shared and community references are not.",
                target="imageReference",
            )
        raise InvalidParameter(
            "Required parameter 'storageProfile.imageReference' is missing (null).",
            target="imageReference",
        )
    kind = type_of(ref_id)
    if kind in (
        "microsoft.compute/galleries/images",
        "microsoft.compute/galleries/images/versions",
    ):
        dep = gallery_versions.resolve_for_deployment(store, ref_id, region)
        if dep.data_disks:
            raise NotImplementedFeature(
                "Gallery versions with data disks are not implemented by azimg for VMs.",
                target="imageReference",
            )
        reference = {"id": ref_id, "exactVersion": dep.version_id.rsplit("/", 1)[1]}
        return _Source(
            facts=SourceFacts(dep.os_state, generation_of(dep.hyper_v_generation), attach=False),
            blob=dep.os_disk,
            size=dep.os_disk_size,
            reference=reference,
        )
    if kind == "microsoft.compute/images":
        return _managed_image_source(store, ref_id, region)
    raise InvalidParameter(
        f"The value '{ref_id}' of parameter 'imageReference.id' is not a gallery image, a "
        "gallery image version or a managed image id.",
        target="imageReference.id",
    )


def _managed_image_source(store: Store, ref_id: str, region: str) -> _Source:
    from azimg.platform.resources import images

    img = images.get_by_id(store, ref_id)
    if img.location != region:
        raise InvalidParameter(
            f"The managed image '{img.id}' is in region '{img.location}'; a VM can only be "
            f"created from an image in its own region ('{region}').",
            target="imageReference.id",
        )
    if img.provisioning_state != "Succeeded":
        raise OperationNotAllowed(
            f"The managed image '{img.name}' is {img.provisioning_state}; it cannot be used yet.",
            target="imageReference.id",
        )
    return _Source(
        facts=SourceFacts(img.os_state, generation_of(img.hyper_v_generation), attach=False),
        blob=img.os_disk_blob,
        size=img.os_disk_size_bytes,
        reference={"id": ref_id},
    )


def create(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    location: Any,
    properties: Mapping[str, Any],
    tags: Any = None,
    app_id: str = "",
) -> VirtualMachine:
    """Validate and record a new VM (Creating) and its OS disk; the fabric boots it."""
    check_name(name, kind="virtual machine", max_len=64)
    require_resource_group(store, subscription_id, resource_group)
    region = check_location(store, location, rtype=VM_TYPE)
    tags = check_tags(tags)
    vm_size = check_vm_size((properties.get("hardwareProfile") or {}).get("vmSize"))
    storage = dict(properties.get("storageProfile") or {})
    if storage.get("dataDisks"):
        raise NotImplementedFeature(
            "Data disks are not implemented by azimg for VMs.", target="storageProfile.dataDisks"
        )
    source = _resolve_source(store, storage, region)
    os_profile_in = properties.get("osProfile")
    os_profile = check_os_profile(os_profile_in, source.facts)
    os_disk_in = dict(storage.get("osDisk") or {})
    delete_option = enum_value(
        os_disk_in.get("deleteOption", "Detach"), OS_DISK_DELETE_OPTIONS,
        target="storageProfile.osDisk.deleteOption",
    )  # fmt: skip
    rid = vm_resource_id(subscription_id, resource_group, name)
    vm_uuid = str(uuid.uuid4())
    now = utc_now()
    if source.disk is not None:
        disk = disks.set_attachment(store, disk_id=source.disk.id, vm_id=rid, state="Attached")
        os_file = OsDiskFile(blob=disk.blob, format="vhd", size=disk.disk_size_bytes)
        disk_name, disk_id, create_option = disk.name, disk.id, "Attach"
    else:
        disk_name = os_disk_in.get("name") or f"{name}_OsDisk_1_{uuid.uuid4().hex}"
        check_name(disk_name, kind="disk")
        disk_id = resource_id(subscription_id, resource_group, disks.DISK.type, disk_name)
        if store.meta.get(disk_id) is not None:
            raise InvalidParameter(
                f"A disk named '{disk_name}' already exists in resource group '{resource_group}'.",
                target="osDisk.name",
            )
        blob = BlobRef(region, f"osdisk-{vm_uuid}.qcow2")
        _clone(store, source.blob, blob)
        os_file = OsDiskFile(blob=blob, format="qcow2", size=source.size)
        sku = (os_disk_in.get("managedDisk") or {}).get("storageAccountType")
        _save_clone_disk(store, disk_id=disk_id, name=disk_name, region=region, blob=blob,
                         size=source.size, source=source, vm_rid=rid, app_id=app_id, now=now,
                         sku=sku)  # fmt: skip
        create_option = "FromImage"
    storage_profile: dict[str, Any] = {
        "osDisk": {
            "osType": "Linux",
            "name": disk_name,
            "createOption": create_option,
            "caching": os_disk_in.get("caching", "ReadWrite"),
            "managedDisk": {
                "id": disk_id,
                "storageAccountType": (os_disk_in.get("managedDisk") or {}).get(
                    "storageAccountType", "Standard_LRS"
                ),
            },
            "deleteOption": delete_option,
            "diskSizeGB": -(-source.size // 2**30),
        },
        "dataDisks": [],
    }
    if source.reference is not None:
        storage_profile["imageReference"] = dict(source.reference)
    secrets: dict[str, str] = {}
    if os_profile_in:
        for key in ("adminPassword", "customData"):
            if os_profile_in.get(key) is not None:
                secrets[key] = str(os_profile_in[key])
    echoed = {
        k: properties[k]
        for k in ("networkProfile", "diagnosticsProfile", "securityProfile", "licenseType")
        if properties.get(k) is not None
    }
    vm = VirtualMachine(
        id=rid,
        name=name,
        location=region,
        vm_id=vm_uuid,
        vm_size=vm_size,
        storage_profile=storage_profile,
        os_profile=os_profile,
        time_created=now,
        system_data=system_data(app_id, now=now),
        generation=source.facts.generation,
        os_state=source.facts.os_state,
        os_disk=os_file,
        os_provisioning="InProgress" if os_profile is not None else None,
        tags=tags,
        echoed=echoed,
        user_data=properties.get("userData"),
        secrets=secrets,
    )
    return _save(store, vm)


def _clone(store: Store, source: BlobRef, target: BlobRef) -> None:
    src, dst = store.blobs.local_path(source), store.blobs.local_path(target)
    if src is None or dst is None:
        raise NotImplementedFeature(
            "VMs need a blob store with local files (the filesystem backend).",
            target="imageReference",
        )
    try:
        create_clone(src, dst)
    except AzimgError as err:
        raise InvalidParameter(
            f"The image's disk cannot be cloned: {err}", target="imageReference"
        ) from None


def _save_clone_disk(
    store: Store,
    *,
    disk_id: str,
    name: str,
    region: str,
    blob: BlobRef,
    size: int,
    source: _Source,
    vm_rid: str,
    app_id: str,
    now: str,
    sku: str | None,
) -> None:
    ref = dict(source.reference or {})
    image = disks.ImageRef(id=ref.get("id"))
    if "galleries" in str(ref.get("id", "")).lower():
        creation = disks.CreationData(create_option="FromImage", gallery_image_reference=image)
    else:
        creation = disks.CreationData(create_option="FromImage", image_reference=image)
    d = disks.Disk(
        id=disk_id,
        name=name,
        type=disks.DISK.type,
        location=region,
        sku=sku or "Standard_LRS",
        creation_data=creation,
        disk_size_bytes=size,
        disk_state="Attached",
        provisioning_state="Succeeded",
        unique_id=str(uuid.uuid4()),
        time_created=now,
        blob=blob,
        system_data=system_data(app_id, now=now),
        os_type="Linux",
        hyper_v_generation=f"V{source.facts.generation}",
        managed_by=vm_rid,
    )
    disks.save(store, d)


def mark_deleting(store: Store, vm: VirtualMachine) -> VirtualMachine:
    return _save(store, replace(vm, provisioning_state="Deleting"))


def update_tags(store: Store, vm: VirtualMachine, *, tags: Any) -> VirtualMachine:
    return _save(store, replace(vm, tags=check_tags(tags)))


def check_put_on_existing(vm: VirtualMachine, properties: Mapping[str, Any]) -> None:
    """A PUT on an existing VM may only restate what it is (tags change separately)."""
    size = (properties.get("hardwareProfile") or {}).get("vmSize")
    if size is not None and size.lower() != vm.vm_size.lower():
        raise PropertyChangeNotAllowed(
            "Changing the VM size is not implemented by azimg.", target="hardwareProfile.vmSize"
        )
    profile = properties.get("osProfile") or {}
    if vm.os_profile and profile.get("computerName") not in (None, vm.os_profile["computerName"]):
        raise PropertyChangeNotAllowed(
            "Changing property 'osProfile.computerName' is not allowed.",
            target="osProfile.computerName",
        )


# --- actions --------------------------------------------------------------------------------


def check_action(vm: VirtualMachine, action: str) -> None:
    """Azure's refusals for power actions (reference §8.6)."""
    if vm.provisioning_state == "Deleting":
        raise OperationNotAllowed(
            f"Operation '{action}' is not allowed on VM '{vm.name}' since the VM is being deleted."
        )
    if action == "start" and vm.generalized:
        raise OperationNotAllowed(
            f"Operation 'start' is not allowed on VM '{vm.name}' since the VM is generalized."
        )
    if action == "restart" and vm.power_state != "running":
        raise OperationNotAllowed(
            f"Operation 'restart' is not allowed on VM '{vm.name}' since the VM is "
            f"{vm.power_state}."
        )
    if action in ("powerOff", "restart") and vm.generalized:
        raise OperationNotAllowed(
            f"Operation '{action}' is not allowed on VM '{vm.name}' since the VM is generalized."
        )


def generalize(store: Store, *, subscription_id: str, resource_group: str, name: str) -> None:
    """Mark the VM generalized (irreversible); only a stopped or deallocated VM."""
    vm = get(store, subscription_id=subscription_id, resource_group=resource_group, name=name)
    if vm.power_state not in ("stopped", "deallocated"):
        raise OperationNotAllowed(
            f"Operation 'generalize' is not allowed on VM '{vm.name}' since the VM is "
            f"{vm.power_state}."
        )
    if vm.os_disk.format == "qcow2":
        # It will never boot again, and images are captured from it: give its OS disk the
        # fixed-VHD bytes every disk consumer expects.
        vm = replace(vm, os_disk=_flatten_clone(store, vm))
    _save(store, replace(vm, generalized=True))


def image_source(store: Store, *, vm_id: str, region: str) -> Any:
    """For managed images captured from a VM (``images._from_vm``): its OS disk's bytes."""
    from azimg.platform.resources.images import ImageSource

    vm = get_by_id(store, vm_id)
    if vm.location != region:
        raise InvalidParameter(
            f"The virtual machine '{vm.name}' is in region '{vm.location}'; the image must be "
            "in the same region.",
            target="properties.sourceVirtualMachine.id",
        )
    disk = disks.get_by_id(store, vm.os_disk_id)
    return ImageSource(
        resource_id=vm.id,
        blob=disk.blob,
        disk_size_bytes=disk.disk_size_bytes,
        location=vm.location,
        os_type="Linux",
        hyper_v_generation=f"V{vm.generation}",
        generalized=vm.generalized and vm.os_disk.format == "vhd",
    )


def boot_diagnostics_blob(vm: VirtualMachine) -> BlobRef:
    """Where the serial console of ``vm`` is written (a blob in its region)."""
    return BlobRef(vm.location, f"bootdiag-{vm.vm_id}.serialconsole.log")


def boot_diagnostics_url(
    store: Store, vm: VirtualMachine, *, blob_base_url: str, minutes: int
) -> str:
    blob = boot_diagnostics_blob(vm)
    if not store.blobs.exists(blob):
        raise OperationNotAllowed(
            f"Boot diagnostics of VM '{vm.name}' are not available: the VM has not booted yet."
        )
    grant = sas.create_grant(
        store, resource_id=vm.id, blob=blob, permissions="r", duration_seconds=minutes * 60
    )
    return sas.url(store, grant, blob_base_url=blob_base_url)


# --- the platform's side of the fabric -------------------------------------------------------


class VmHost:
    """Runs the VMs of one platform: boots them through the fabric and turns the fabric's
    events into VM documents and finished operations. One per platform process."""

    def __init__(
        self,
        store: Store,
        runtime_root: Path,
        *,
        provisioning_timeout_s: float = DEFAULT_PROVISIONING_TIMEOUT,
        accel: str = "tcg",
    ) -> None:
        self.store = store
        self.timeout = provisioning_timeout_s
        self.accel = accel
        self.root = runtime_root
        self._lock = threading.RLock()
        self._ids: dict[str, str] = {}  # vm uuid → resource id
        self._expected_stop: set[str] = set()
        self._deleted: set[str] = set()
        self._timers: dict[str, threading.Timer] = {}
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="vm-boot")
        self.supervisor = Supervisor(runtime_root, self)
        self._reconcile()

    def close(self) -> None:
        for timer in list(self._timers.values()):
            timer.cancel()
        self._pool.shutdown(wait=True)
        with self._lock:
            for uid in list(self._ids):
                self._expected_stop.add(uid)
        self.supervisor.close()

    def _reconcile(self) -> None:
        """After a restart no VM runs: say so in every document that claims otherwise."""
        for doc in self.store.meta.list(type=VM_TYPE):
            vm = from_doc(doc)
            if vm.power_state in ("starting", "running", "stopping"):
                _save(self.store, replace(vm, power_state="stopped"))

    # -- document updates (serialised: events and API calls both write VMs) ------------------

    def _update(self, rid: str, **changes: Any) -> VirtualMachine | None:
        with self._lock:
            doc = self.store.meta.get(rid)
            if doc is None:
                return None
            return _save(self.store, replace(from_doc(doc), **changes))

    # -- create ------------------------------------------------------------------------------

    def begin_create(self, vm: VirtualMachine) -> Operation:
        op = Operation(
            id=str(uuid.uuid4()),
            kind=JOB_CREATE,
            status="InProgress",
            action="put",
            resource_id=vm.id,
            location=vm.location,
            start_time=utc_now(),
        )
        self.store.meta.add_operation(op)
        self._update(vm.id, create_operation=op.id)
        self._pool.submit(self._first_boot, vm.id)
        return op

    def _first_boot(self, rid: str) -> None:
        try:
            vm = get_by_id(self.store, rid)
            self._launch(vm, first_boot=True)
            if vm.os_provisioning is None:  # specialized: no provisioning to wait for
                self._finish_create(rid, None)
        except Exception as err:  # the operation must end, whatever went wrong
            log.exception("booting %s failed", rid)
            message = str(err) if isinstance(err, AzimgError) else "The VM could not be started."
            self._update(rid, provisioning_state="Failed", power_state="stopped",
                         os_provisioning_message=message)  # fmt: skip
            self._finish_create(rid, {"code": "VMStartFailed", "message": message})

    def _finish_create(self, rid: str, error: Mapping[str, Any] | None) -> None:
        if error is None:
            vm = self._update(rid, provisioning_state="Succeeded")
        else:
            doc = self.store.meta.get(rid)
            vm = from_doc(doc) if doc is not None else None
        if vm is None or vm.create_operation is None:
            return
        with contextlib.suppress(Exception):
            op = self.store.meta.get_operation(vm.create_operation)
            if op is not None and not op.done:
                self.store.meta.finish_operation(
                    op.id, status="Failed" if error else "Succeeded", error=error
                )

    # -- boot and stop -------------------------------------------------------------------

    def _spec(self, vm: VirtualMachine, *, first_boot: bool) -> VmSpec:
        size = VM_SIZES[vm.vm_size]
        disk_path = self.store.blobs.local_path(vm.os_disk.blob)
        serial = self.store.blobs.local_path(boot_diagnostics_blob(vm))
        assert disk_path is not None and serial is not None
        profile = vm.os_profile or {}
        linux = profile.get("linuxConfiguration") or {}
        user = str(profile.get("adminUsername", ""))
        keys = tuple(
            SshPublicKey(k["path"], k["keyData"])
            for k in (linux.get("ssh") or {}).get("publicKeys", [])
        )
        meta = InstanceMetadata(
            vm_id=vm.vm_id,
            name=vm.name,
            computer_name=str(profile.get("computerName", vm.name)),
            admin_username=user,
            location=vm.location,
            resource_group=vm.resource_group,
            subscription_id=vm.subscription_id,
            vm_size=vm.vm_size,
            mac_address=mac_for(vm.vm_id).replace(":", ""),
            disable_password_authentication=bool(linux.get("disablePasswordAuthentication", True)),
            public_keys=keys,
            user_data_b64=vm.user_data or "",
            tags=";".join(f"{k}:{v}" for k, v in vm.tags.items()),
        )
        provisioning = None
        if first_boot and vm.os_profile is not None and not vm.provisioned:
            custom = vm.secrets.get("customData")
            provisioning = LinuxProvisioning(
                hostname=meta.computer_name,
                username=user,
                password=vm.secrets.get("adminPassword"),
                disable_password_authentication=meta.disable_password_authentication,
                public_keys=keys,
                custom_data=base64.b64decode(custom) if custom else None,
                provision_guest_agent=bool(linux.get("provisionVMAgent", True)),
            )
        raw = vm.os_disk.format == "vhd"
        return VmSpec(
            name=vm.vm_id,
            os_disk=disk_path,
            generation=vm.generation,
            vm_id=vm.vm_id,
            vcpus=size.vcpus,
            memory_mib=size.memory_mib,
            metadata=meta,
            provisioning=provisioning,
            provisioning_timeout_s=self.timeout,
            os_disk_format="raw" if raw else "qcow2",
            os_disk_size=vm.os_disk.size if raw else None,
            accel=self.accel,
            serial_log=serial,
        )

    def _launch(self, vm: VirtualMachine, *, first_boot: bool) -> None:
        spec = self._spec(vm, first_boot=first_boot)
        self._update(vm.id, power_state="starting")
        with self._lock:  # a delete racing this boot waits, then finds the VM running
            if vm.vm_id in self._deleted:
                return
            self._ids[vm.vm_id] = vm.id
            self._expected_stop.discard(vm.vm_id)
            self.supervisor.start(spec)
        self._update(vm.id, power_state="running")
        (self.supervisor.rundir(vm.vm_id) / "connection.json").write_text(
            json.dumps(
                {
                    "id": vm.id,
                    "name": vm.name,
                    "resourceGroup": vm.resource_group,
                    "sshPort": self.supervisor.ssh_port(vm.vm_id),
                    "adminUsername": (vm.os_profile or {}).get("adminUsername"),
                    "serialLog": str(spec.serial_log),
                },
                indent=1,
            )
        )

    def power(self, rid: str, action: str, *, skip_shutdown: bool = False) -> None:
        """start | powerOff | restart | deallocate, run on the job pool."""
        vm = get_by_id(self.store, rid)
        check_action(vm, action)
        running = self.supervisor.running(vm.vm_id)
        if action == "start":
            if not running:
                self._launch(vm, first_boot=False)
            elif vm.power_state != "running":
                self._update(rid, power_state="running")
            return
        if action == "restart":
            self.supervisor.restart(vm.vm_id)
            return
        final = "stopped" if action == "powerOff" else "deallocated"
        self._update(rid, power_state="stopping" if action == "powerOff" else "deallocating")
        if running:
            with self._lock:
                self._expected_stop.add(vm.vm_id)
            self.supervisor.stop(vm.vm_id, graceful=not skip_shutdown, timeout_s=60)
        self._update(rid, power_state=final)
        if action == "deallocate" and vm.storage_profile["osDisk"]["createOption"] == "Attach":
            disks.set_attachment(self.store, disk_id=vm.os_disk_id, vm_id=rid, state="Reserved")

    def power_off_for_delete(self, vm: VirtualMachine) -> None:
        with self._lock:
            self._deleted.add(vm.vm_id)
            self._expected_stop.add(vm.vm_id)
            running = self.supervisor.running(vm.vm_id)
        if running:
            self.supervisor.stop(vm.vm_id, graceful=False)
        timer = self._timers.pop(vm.vm_id, None)
        if timer is not None:
            timer.cancel()

    # -- FabricEvents ------------------------------------------------------------------------

    def provisioning(self, vm: str, state: prov.Provisioning) -> None:
        rid = self._ids.get(vm)
        if rid is None or (state.reports == 0 and state.outcome is not prov.Outcome.TIMED_OUT):
            return  # the supervisor's initial announcement
        if state.outcome is prov.Outcome.COMPLETE:
            updated = self._update(rid, os_provisioning="Complete", provisioned=True,
                                   secrets={})  # fmt: skip
            if updated is not None and updated.agent and updated.agent.get("status") == "Ready":
                self._finish_create(rid, None)
            else:
                timer = threading.Timer(COMPLETE_GRACE_S, self._finish_create, [rid, None])
                timer.daemon = True
                self._timers[vm] = timer
                timer.start()
        elif state.outcome is prov.Outcome.TIMED_OUT:
            message = state.description or "OS provisioning timed out."
            self._update(rid, provisioning_state="Failed", os_provisioning="TimedOut",
                         os_provisioning_message=message)  # fmt: skip
            self._finish_create(rid, {"code": "OSProvisioningTimedOut", "message": message})
        elif state.outcome is prov.Outcome.CLIENT_ERROR:
            message = (
                "OS Provisioning failed for VM due to an error reported by the guest: "
                f"{state.description}"
            )
            self._update(rid, provisioning_state="Failed", os_provisioning="ClientError",
                         os_provisioning_message=message)  # fmt: skip
            self._finish_create(rid, {"code": "OSProvisioningClientError", "message": message})

    def agent_status(self, vm: str, status: AgentStatus) -> None:
        rid = self._ids.get(vm)
        if rid is None:
            return
        updated = self._update(rid, agent=asdict(status))
        if (
            updated is not None
            and updated.provisioning_state == "Creating"
            and updated.os_provisioning == "Complete"
            and status.status == "Ready"
        ):
            timer = self._timers.pop(vm, None)
            if timer is not None:
                timer.cancel()
            self._finish_create(rid, None)

    def stopped(self, vm: str, exit_code: int) -> None:
        rid = self._ids.get(vm)
        with self._lock:
            expected = vm in self._expected_stop
            self._expected_stop.discard(vm)
        if rid is None or expected:
            return
        # The guest powered itself off (or QEMU died): the VM is stopped, still allocated.
        current = self._update(rid, power_state="stopped")
        if current is not None and current.provisioning_state == "Creating":
            message = f"The VM stopped during provisioning (exit code {exit_code})."
            self._update(rid, provisioning_state="Failed", os_provisioning_message=message)
            self._finish_create(rid, {"code": "VMStoppedDuringProvisioning", "message": message})


# Platform processes own one VmHost per store; the registry lets job functions (which only get
# the store) reach it. ``start_services`` / ``stop_services`` are called by the app's lifespan.
_HOSTS: dict[int, VmHost] = {}


def start_services(settings: Any, store: Store) -> None:
    timeout = float(getattr(settings, "vm_provisioning_timeout", DEFAULT_PROVISIONING_TIMEOUT))
    _HOSTS[id(store)] = VmHost(
        store,
        Path(settings.data_dir) / "fabric",
        provisioning_timeout_s=timeout,
        accel=str(getattr(settings, "vm_accel", "auto")),
    )


def stop_services(store: Store) -> None:
    host = _HOSTS.pop(id(store), None)
    if host is not None:
        host.close()


def host_for(store: Store) -> VmHost:
    host = _HOSTS.get(id(store))
    if host is None:
        raise NotImplementedFeature("This platform process runs no VMs (no fabric started).")
    return host


# --- jobs ------------------------------------------------------------------------------------


def _run_power(store: Store, op: Operation) -> None:
    host_for(store).power(
        op.resource_id, op.params["action"], skip_shutdown=bool(op.params.get("skipShutdown"))
    )


def _run_delete(store: Store, op: Operation) -> None:
    vm = get_by_id(store, op.resource_id)
    host = _HOSTS.get(id(store))
    if host is not None:
        host.power_off_for_delete(vm)
    if vm.create_operation:  # deleted while still being created: that operation ends here
        create_op = store.meta.get_operation(vm.create_operation)
        if create_op is not None and not create_op.done:
            store.meta.finish_operation(
                create_op.id,
                status="Canceled",
                error={"code": "OperationPreempted",
                       "message": "The VM was deleted before its creation finished."},
            )  # fmt: skip
    os_disk = vm.storage_profile["osDisk"]
    doc = store.meta.get(vm.os_disk_id)
    if doc is not None:
        if os_disk.get("deleteOption") == "Delete":
            store.meta.delete(doc.id)
            for blob in doc.blobs:
                store.blobs.delete(blob)
        else:
            if vm.os_disk.format == "qcow2":
                _flatten_clone(store, vm)
            disks.set_attachment(store, disk_id=doc.id, vm_id=None, state="Unattached")
    store.blobs.delete(boot_diagnostics_blob(vm))
    store.meta.delete(vm.id)
    if host is not None:
        shutil.rmtree(host.supervisor.rundir(vm.vm_id), ignore_errors=True)


def _flatten_clone(store: Store, vm: VirtualMachine) -> OsDiskFile:
    """The VM's qcow2 clone flattened into a fixed VHD, which becomes its OS disk's blob."""
    d = disks.get_by_id(store, vm.os_disk_id)
    src = store.blobs.local_path(vm.os_disk.blob)
    vhd_ref = BlobRef(d.location, f"osdisk-{vm.vm_id}.vhd")
    dst = store.blobs.local_path(vhd_ref)
    assert src is not None and dst is not None
    tmp = dst.with_name(dst.name + ".partial")
    subprocess.run(
        ["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "vpc", "-o",
         "subformat=fixed,force_size=on", str(src), str(tmp)],
        check=True,
    )  # fmt: skip
    tmp.replace(dst)
    disks.save(store, replace(d, blob=vhd_ref))
    store.blobs.delete(vm.os_disk.blob)
    return OsDiskFile(blob=vhd_ref, format="vhd", size=vm.os_disk.size)


def _fail_create(store: Store, op: Operation, error: Mapping[str, Any]) -> None:
    doc = store.meta.get(op.resource_id)
    if doc is not None:
        vm = from_doc(doc)
        _save(store, replace(vm, provisioning_state="Failed",
                             os_provisioning_message=str(error.get("message"))))  # fmt: skip


def _never_scheduled(store: Store, op: Operation) -> None:
    raise AssertionError("VM creation is finished by fabric events, not the job pool")


def _fail_delete(store: Store, op: Operation, error: Mapping[str, Any]) -> None:
    doc = store.meta.get(op.resource_id)
    if doc is not None:
        _save(store, replace(from_doc(doc), provisioning_state="Failed"))


def job_specs() -> dict[str, JobSpec]:
    return {
        JOB_CREATE: JobSpec(run=_never_scheduled, on_fail=_fail_create),
        JOB_POWER: JobSpec(run=_run_power),
        JOB_DELETE: JobSpec(run=_run_delete, on_fail=_fail_delete, resumable=True),
    }


def release(store: Store, doc: Document) -> None:
    """Resource-group deletion: the VM's process goes before its documents."""
    host = _HOSTS.get(id(store))
    if host is not None:
        host.power_off_for_delete(from_doc(doc))
    store.blobs.delete(boot_diagnostics_blob(from_doc(doc)))


RELEASERS = {VM_TYPE: release}
