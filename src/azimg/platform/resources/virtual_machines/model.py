"""The VM resource as the domain keeps it: frozen dataclasses, stored as one JSON document.

Everything here is snake_case and typed; the router renders ARM's camelCase shape. What the
fabric needs to boot the VM (its runtime disk file, provisioning secrets until the guest has
consumed them) lives in the same document, because it changes with the VM's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from azimg.fabric.wireserver import AgentStatus
from azimg.platform.resources.common import parse_id, resource_id
from azimg.platform.store import BlobRef, Document

VM_TYPE = "Microsoft.Compute/virtualMachines"
JOB_CREATE = "virtualMachines.create"
JOB_POWER = "virtualMachines.power"
JOB_DELETE = "virtualMachines.delete"
POWER_ACTIONS = ("start", "powerOff", "restart", "deallocate")
#: The power states in which the fabric may have a process for the VM.
ALLOCATED_STATES = ("starting", "running", "stopping")


@dataclass(frozen=True)
class SshKey:
    path: str
    key_data: str


@dataclass(frozen=True)
class OsProfile:
    """osProfile as stored (the write-only adminPassword / customData live in ``secrets``)."""

    computer_name: str
    admin_username: str
    disable_password_authentication: bool
    public_keys: tuple[SshKey, ...]
    provision_vm_agent: bool
    allow_extension_operations: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OsProfile:
        keys = tuple(SshKey(**k) for k in data["public_keys"])
        return cls(**{**data, "public_keys": keys})


@dataclass(frozen=True)
class OsDisk:
    """storageProfile.osDisk: the managed disk the VM boots."""

    id: str
    name: str
    create_option: str  # FromImage | Attach
    caching: str
    storage_account_type: str
    delete_option: str  # Delete | Detach
    size_bytes: int


@dataclass(frozen=True)
class ImageReference:
    id: str
    exact_version: str | None = None


@dataclass(frozen=True)
class NetworkInterfaceRef:
    id: str
    primary: bool | None = None
    delete_option: str | None = None


@dataclass(frozen=True)
class SecurityProfile:
    security_type: str | None = None
    secure_boot_enabled: bool | None = None
    vtpm_enabled: bool | None = None
    encryption_at_host: bool | None = None


@dataclass(frozen=True)
class BootDiagnostics:
    enabled: bool
    storage_uri: str | None = None


@dataclass(frozen=True)
class RuntimeDisk:
    """The bytes QEMU boots: a qcow2 clone (over ``base``, its own link of the image's bytes)
    or a fixed VHD (an attached disk, or a clone flattened on deallocate)."""

    blob: BlobRef
    format: str  # qcow2 | vhd
    size: int  # guest-visible bytes
    base: BlobRef | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "blob": self.blob.to_json(),
            "format": self.format,
            "size": self.size,
            "base": self.base.to_json() if self.base else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuntimeDisk:
        base = data.get("base")
        return cls(
            blob=BlobRef.from_json(data["blob"]),
            format=data["format"],
            size=int(data["size"]),
            base=BlobRef.from_json(base) if base else None,
        )


@dataclass(frozen=True)
class VirtualMachine:
    id: str
    name: str
    location: str
    vm_id: str
    vm_size: str
    os_disk: OsDisk
    time_created: str
    system_data: Mapping[str, Any]
    generation: int
    os_state: str  # of the source: Generalized | Specialized
    runtime_disk: RuntimeDisk
    image_reference: ImageReference | None = None
    os_profile: OsProfile | None = None
    provisioning_state: str = "Creating"  # Creating | Updating | Succeeded | Failed | Deleting
    power_state: str = "starting"  # starting running stopping stopped deallocating deallocated
    os_provisioning: str | None = None  # InProgress | Complete | TimedOut | ClientError
    os_provisioning_message: str | None = None
    provisioned: bool = False  # the guest consumed its provisioning data
    generalized: bool = False
    agent: AgentStatus | None = None  # the guest agent's last status (WireServer)
    create_operation: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    network_interfaces: tuple[NetworkInterfaceRef, ...] = ()
    security: SecurityProfile | None = None
    boot_diagnostics: BootDiagnostics | None = None
    license_type: str | None = None
    user_data: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)  # adminPassword, customData

    @property
    def resource_group(self) -> str:
        return parse_id(self.id)["resource_group"]

    @property
    def subscription_id(self) -> str:
        return parse_id(self.id)["subscription"]

    @property
    def attached(self) -> bool:
        """Booted from an attached disk (specialized, no provisioning)."""
        return self.os_disk.create_option == "Attach"


def to_doc(vm: VirtualMachine, *, etag: str = "") -> Document:
    body = asdict(vm)
    body["runtime_disk"] = vm.runtime_disk.to_json()
    return Document(id=vm.id, type=VM_TYPE, body=body, location=vm.location, etag=etag)


def from_doc(doc: Document) -> VirtualMachine:
    b = dict(doc.body)

    def opt(key: str, build: Any) -> Any:
        return build(b[key]) if b.get(key) is not None else None

    return VirtualMachine(
        **{
            **b,
            "os_disk": OsDisk(**b["os_disk"]),
            "runtime_disk": RuntimeDisk.from_json(b["runtime_disk"]),
            "image_reference": opt("image_reference", lambda d: ImageReference(**d)),
            "os_profile": opt("os_profile", OsProfile.from_json),
            "agent": opt("agent", lambda d: AgentStatus(**d)),
            "network_interfaces": tuple(
                NetworkInterfaceRef(**n) for n in b.get("network_interfaces") or ()
            ),
            "security": opt("security", lambda d: SecurityProfile(**d)),
            "boot_diagnostics": opt("boot_diagnostics", lambda d: BootDiagnostics(**d)),
        }
    )


def vm_resource_id(subscription_id: str, resource_group: str, name: str) -> str:
    return resource_id(subscription_id, resource_group, VM_TYPE, name)


def boot_diagnostics_blob(vm: VirtualMachine) -> BlobRef:
    """Where the serial console of ``vm`` is written (a blob in its region)."""
    return BlobRef(vm.location, f"bootdiag-{vm.vm_id}.serialconsole.log")
