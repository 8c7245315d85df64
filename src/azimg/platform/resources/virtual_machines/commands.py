"""What a client asks of a VM, as typed commands the router builds from the request body.

A field is None when the client did not send it (the rules decide defaults). Values keep the
client's spelling (enum casing is the rules' job), but never the wire's camelCase shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from azimg.platform.resources.virtual_machines.model import (
    BootDiagnostics,
    NetworkInterfaceRef,
    SecurityProfile,
)


@dataclass(frozen=True)
class SshKeyInput:
    key_data: str | None
    path: str | None = None


@dataclass(frozen=True)
class OsProfileInput:
    computer_name: str | None = None
    admin_username: str | None = None
    admin_password: str | None = None
    custom_data: str | None = None
    disable_password_authentication: bool | None = None
    public_keys: tuple[SshKeyInput, ...] = ()
    provision_vm_agent: bool | None = None
    allow_extension_operations: bool | None = None
    has_secrets: bool = False  # osProfile.secrets (Key Vault) was sent non-empty
    windows: bool = False  # windowsConfiguration was sent


@dataclass(frozen=True)
class ImageReferenceInput:
    id: str | None = None
    marketplace: bool = False  # publisher / offer / sku / version
    shared_gallery_image_id: str | None = None
    community_gallery_image_id: str | None = None

    @property
    def given(self) -> bool:
        return bool(
            self.id
            or self.marketplace
            or self.shared_gallery_image_id
            or self.community_gallery_image_id
        )


@dataclass(frozen=True)
class OsDiskInput:
    os_type: str | None = None
    name: str | None = None
    caching: str | None = None
    create_option: str | None = None
    disk_size_gb: int | None = None
    managed_disk_id: str | None = None
    storage_account_type: str | None = None
    delete_option: str | None = None


@dataclass(frozen=True)
class CreateVm:
    subscription_id: str
    resource_group: str
    name: str
    location: str | None
    app_id: str
    tags: Mapping[str, str] | None = None
    vm_size: str | None = None
    image_reference: ImageReferenceInput = field(default_factory=ImageReferenceInput)
    os_disk: OsDiskInput = field(default_factory=OsDiskInput)
    data_disks: int = 0  # how many were sent (refused: not implemented)
    os_profile: OsProfileInput | None = None
    network_interfaces: tuple[NetworkInterfaceRef, ...] = ()
    security: SecurityProfile | None = None
    boot_diagnostics: BootDiagnostics | None = None
    license_type: str | None = None
    user_data: str | None = None


@dataclass(frozen=True)
class UpdateVm:
    """PATCH, or a PUT on an existing VM: tags change; the rest may only restate the VM."""

    subscription_id: str
    resource_group: str
    name: str
    tags: Mapping[str, str] | None = None
    vm_size: str | None = None
    computer_name: str | None = None
    if_match: str | None = None
