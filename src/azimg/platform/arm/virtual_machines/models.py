"""The VM request bodies as ARM sends them (camelCase), and their typed commands.

Every level forbids unknown properties (``parse`` answers 400 ``NotSupported`` naming the
property: house rule 9) and types every field, so a wrong type anywhere is a 400 with its
path as ``target``, never a 500. Read-only properties a client may send back from a GET are
accepted and ignored. ``to_create`` / ``to_update`` are the only places the wire shape meets
the domain's commands.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr

from azimg.platform.resources.virtual_machines import (
    BootDiagnostics,
    CreateVm,
    ImageReferenceInput,
    NetworkInterfaceRef,
    OsDiskInput,
    OsProfileInput,
    SecurityProfile,
    SshKeyInput,
    UpdateVm,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HardwareProfileBody(_Strict):
    vmSize: StrictStr | None = None


class ImageReferenceBody(_Strict):
    id: StrictStr | None = None
    publisher: StrictStr | None = None
    offer: StrictStr | None = None
    sku: StrictStr | None = None
    version: StrictStr | None = None
    exactVersion: StrictStr | None = None  # read-only
    sharedGalleryImageId: StrictStr | None = None
    communityGalleryImageId: StrictStr | None = None


class ManagedDiskBody(_Strict):
    id: StrictStr | None = None
    storageAccountType: StrictStr | None = None


class OsDiskBody(_Strict):
    osType: StrictStr | None = None
    name: StrictStr | None = None
    caching: StrictStr | None = None
    createOption: StrictStr | None = None
    diskSizeGB: StrictInt | None = None
    managedDisk: ManagedDiskBody | None = None
    deleteOption: StrictStr | None = None


class StorageProfileBody(_Strict):
    imageReference: ImageReferenceBody | None = None
    osDisk: OsDiskBody | None = None
    dataDisks: list[dict[str, Any]] | None = None


class SshPublicKeyBody(_Strict):
    path: StrictStr | None = None
    keyData: StrictStr | None = None


class SshConfigurationBody(_Strict):
    publicKeys: list[SshPublicKeyBody] | None = None


class LinuxConfigurationBody(_Strict):
    disablePasswordAuthentication: StrictBool | None = None
    ssh: SshConfigurationBody | None = None
    provisionVMAgent: StrictBool | None = None


class OsProfileBody(_Strict):
    computerName: StrictStr | None = None
    adminUsername: StrictStr | None = None
    adminPassword: StrictStr | None = None
    customData: StrictStr | None = None
    linuxConfiguration: LinuxConfigurationBody | None = None
    windowsConfiguration: dict[str, Any] | None = None
    secrets: list[dict[str, Any]] | None = None
    allowExtensionOperations: StrictBool | None = None
    requireGuestProvisionSignal: StrictBool | None = None


class NetworkInterfacePropertiesBody(_Strict):
    primary: StrictBool | None = None
    deleteOption: StrictStr | None = None


class NetworkInterfaceBody(_Strict):
    id: StrictStr
    properties: NetworkInterfacePropertiesBody | None = None


class NetworkProfileBody(_Strict):
    networkInterfaces: list[NetworkInterfaceBody] | None = None


class BootDiagnosticsBody(_Strict):
    enabled: StrictBool | None = None
    storageUri: StrictStr | None = None


class DiagnosticsProfileBody(_Strict):
    bootDiagnostics: BootDiagnosticsBody | None = None


class UefiSettingsBody(_Strict):
    secureBootEnabled: StrictBool | None = None
    vTpmEnabled: StrictBool | None = None


class SecurityProfileBody(_Strict):
    securityType: StrictStr | None = None
    uefiSettings: UefiSettingsBody | None = None
    encryptionAtHost: StrictBool | None = None


class VmPropertiesBody(_Strict):
    hardwareProfile: HardwareProfileBody | None = None
    storageProfile: StorageProfileBody | None = None
    osProfile: OsProfileBody | None = None
    networkProfile: NetworkProfileBody | None = None
    diagnosticsProfile: DiagnosticsProfileBody | None = None
    securityProfile: SecurityProfileBody | None = None
    licenseType: StrictStr | None = None
    userData: StrictStr | None = None
    # read-only properties clients may send back from a GET; ignored
    vmId: StrictStr | None = None
    provisioningState: StrictStr | None = None
    timeCreated: StrictStr | None = None
    instanceView: dict[str, Any] | None = None


class VmBody(_Strict):
    location: StrictStr | None = None
    tags: dict[str, StrictStr] | None = None
    properties: VmPropertiesBody | None = None
    # read-only, sent back from a GET
    id: StrictStr | None = None
    name: StrictStr | None = None
    type: StrictStr | None = None
    etag: StrictStr | None = None
    resources: list[Any] | None = None


class VmPatchBody(_Strict):
    tags: dict[str, StrictStr] | None = None
    properties: VmPropertiesBody | None = None


def _os_profile(body: OsProfileBody | None) -> OsProfileInput | None:
    if body is None:
        return None
    linux = body.linuxConfiguration or LinuxConfigurationBody()
    keys = (linux.ssh.publicKeys or []) if linux.ssh else []
    return OsProfileInput(
        computer_name=body.computerName,
        admin_username=body.adminUsername,
        admin_password=body.adminPassword,
        custom_data=body.customData,
        disable_password_authentication=linux.disablePasswordAuthentication,
        public_keys=tuple(SshKeyInput(key_data=k.keyData, path=k.path) for k in keys),
        provision_vm_agent=linux.provisionVMAgent,
        allow_extension_operations=body.allowExtensionOperations,
        has_secrets=bool(body.secrets),
        windows=body.windowsConfiguration is not None,
    )


def _image_reference(body: ImageReferenceBody | None) -> ImageReferenceInput:
    if body is None:
        return ImageReferenceInput()
    return ImageReferenceInput(
        id=body.id,
        marketplace=any((body.publisher, body.offer, body.sku, body.version)),
        shared_gallery_image_id=body.sharedGalleryImageId,
        community_gallery_image_id=body.communityGalleryImageId,
    )


def _os_disk(body: OsDiskBody | None) -> OsDiskInput:
    if body is None:
        return OsDiskInput()
    managed = body.managedDisk or ManagedDiskBody()
    return OsDiskInput(
        os_type=body.osType,
        name=body.name,
        caching=body.caching,
        create_option=body.createOption,
        disk_size_gb=body.diskSizeGB,
        managed_disk_id=managed.id,
        storage_account_type=managed.storageAccountType,
        delete_option=body.deleteOption,
    )


def _security(body: SecurityProfileBody | None) -> SecurityProfile | None:
    if body is None:
        return None
    uefi = body.uefiSettings or UefiSettingsBody()
    return SecurityProfile(
        security_type=body.securityType,
        secure_boot_enabled=uefi.secureBootEnabled,
        vtpm_enabled=uefi.vTpmEnabled,
        encryption_at_host=body.encryptionAtHost,
    )


def _nics(body: NetworkProfileBody | None) -> tuple[NetworkInterfaceRef, ...]:
    if body is None or not body.networkInterfaces:
        return ()
    return tuple(
        NetworkInterfaceRef(
            id=n.id,
            primary=n.properties.primary if n.properties else None,
            delete_option=n.properties.deleteOption if n.properties else None,
        )
        for n in body.networkInterfaces
    )


def to_create(
    body: VmBody, *, subscription_id: str, resource_group: str, name: str, app_id: str
) -> CreateVm:
    props = body.properties or VmPropertiesBody()
    storage = props.storageProfile or StorageProfileBody()
    diag = props.diagnosticsProfile.bootDiagnostics if props.diagnosticsProfile else None
    return CreateVm(
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        location=body.location,
        app_id=app_id,
        tags=body.tags,
        vm_size=props.hardwareProfile.vmSize if props.hardwareProfile else None,
        image_reference=_image_reference(storage.imageReference),
        os_disk=_os_disk(storage.osDisk),
        data_disks=len(storage.dataDisks or ()),
        os_profile=_os_profile(props.osProfile),
        network_interfaces=_nics(props.networkProfile),
        security=_security(props.securityProfile),
        boot_diagnostics=BootDiagnostics(bool(diag.enabled), diag.storageUri) if diag else None,
        license_type=props.licenseType,
        user_data=props.userData,
    )


def to_update(
    props: VmPropertiesBody | None,
    tags: dict[str, str] | None,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    if_match: str | None = None,
) -> UpdateVm:
    props = props or VmPropertiesBody()
    return UpdateVm(
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        tags=tags,
        vm_size=props.hardwareProfile.vmSize if props.hardwareProfile else None,
        computer_name=props.osProfile.computerName if props.osProfile else None,
        if_match=if_match,
    )
