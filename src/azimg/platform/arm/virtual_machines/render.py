"""A VM in ARM's wire shape (reference/arm-api.md §8.2, §8.5); the domain never sees this."""

from __future__ import annotations

from typing import Any

from azimg.platform.resources import image_checks
from azimg.platform.resources import virtual_machines as vms
from azimg.platform.resources.common import utc_now
from azimg.platform.resources.virtual_machines import InstanceView, Status, VirtualMachine
from azimg.platform.store import Store


def _status(s: Status) -> dict[str, Any]:
    body: dict[str, Any] = {"code": s.code, "level": s.level, "displayStatus": s.display_status}
    if s.message:
        body["message"] = s.message
    if s.time:
        body["time"] = s.time
    return body


def instance_view(store: Store, vm: VirtualMachine) -> dict[str, Any]:
    """The instance view, with what the platform found in the VM's image (one view for the
    ``/instanceView`` action and ``$expand=instanceView``)."""
    view: InstanceView = vms.instance_view(vm, now=utc_now())
    body: dict[str, Any] = {
        "hyperVGeneration": view.hyper_v_generation,
        "statuses": [_status(s) for s in view.statuses] + image_check_statuses(store, vm),
        "disks": [{"name": view.disk_name, "statuses": [_status(s) for s in view.disk_statuses]}],
        "computerName": view.computer_name,
        "osName": view.os_name,
        "osVersion": view.os_version,
    }
    if view.vm_agent is not None:
        agent: dict[str, Any] = {
            "vmAgentVersion": view.vm_agent.version,
            "statuses": [_status(s) for s in view.vm_agent.statuses],
        }
        if view.vm_agent.extension_handlers:
            agent["extensionHandlers"] = []
        body["vmAgent"] = agent
    return {k: v for k, v in body.items() if v is not None}


def image_check_statuses(store: Store, vm: VirtualMachine) -> list[dict[str, Any]]:
    """A VM made from a source the platform found blockers in says so in its instance view,
    at create time — not after the 20-minute OSProvisioningTimedOut (image_checks.py)."""
    ref = vm.image_reference
    rid = ref.id if ref is not None else vm.os_disk.id
    if ref is not None and ref.exact_version and "/versions/" not in rid.lower():
        rid = f"{rid}/versions/{ref.exact_version}"
    found = image_checks.get(store, rid)
    if found is None or not found.blockers:
        return []
    if ref is None and found.generalized:
        # An attached disk boots as is (nothing is provisioned, nothing waits): the blockers
        # of its check as a generalized image ("no provisioning agent") do not apply to it.
        return []
    message = "; ".join(f"{f['rule']}: {f['title']}" for f in found.blockers)
    return [
        _status(
            Status(
                "Azimg.ImageCheck/Blockers",
                "Warning",
                f"The image this VM was made from has {len(found.blockers)} blocker(s)",
                f"{message} (azimg check --resource {rid})",
                found.checked_at,
            )
        )
    ]


def storage_profile(vm: VirtualMachine) -> dict[str, Any]:
    disk = vm.os_disk
    profile: dict[str, Any] = {
        "osDisk": {
            "osType": "Linux",
            "name": disk.name,
            "createOption": disk.create_option,
            "caching": disk.caching,
            "managedDisk": {"id": disk.id, "storageAccountType": disk.storage_account_type},
            "deleteOption": disk.delete_option,
            "diskSizeGB": vms.size_gb(vm),
        },
        "dataDisks": [],
    }
    if vm.image_reference is not None:
        ref: dict[str, Any] = {"id": vm.image_reference.id}
        if vm.image_reference.exact_version:
            ref["exactVersion"] = vm.image_reference.exact_version
        profile["imageReference"] = ref
    return profile


def os_profile(vm: VirtualMachine) -> dict[str, Any] | None:
    p = vm.os_profile
    if p is None:
        return None
    return {
        "computerName": p.computer_name,
        "adminUsername": p.admin_username,
        "linuxConfiguration": {
            "disablePasswordAuthentication": p.disable_password_authentication,
            "ssh": {"publicKeys": [{"path": k.path, "keyData": k.key_data} for k in p.public_keys]},
            "provisionVMAgent": p.provision_vm_agent,
        },
        "secrets": [],
        "allowExtensionOperations": p.allow_extension_operations,
        "requireGuestProvisionSignal": True,
    }


def _optional_profiles(vm: VirtualMachine) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if vm.network_interfaces:
        nics = []
        for n in vm.network_interfaces:
            nic: dict[str, Any] = {"id": n.id}
            props = {k: v for k, v in (("primary", n.primary), ("deleteOption", n.delete_option))
                     if v is not None}  # fmt: skip
            if props:
                nic["properties"] = props
            nics.append(nic)
        out["networkProfile"] = {"networkInterfaces": nics}
    if vm.security is not None:
        s = vm.security
        sec: dict[str, Any] = {}
        if s.security_type is not None:
            sec["securityType"] = s.security_type
        uefi = {k: v for k, v in (("secureBootEnabled", s.secure_boot_enabled),
                                  ("vTpmEnabled", s.vtpm_enabled)) if v is not None}  # fmt: skip
        if uefi:
            sec["uefiSettings"] = uefi
        if s.encryption_at_host is not None:
            sec["encryptionAtHost"] = s.encryption_at_host
        out["securityProfile"] = sec
    if vm.boot_diagnostics is not None:
        diag: dict[str, Any] = {"enabled": vm.boot_diagnostics.enabled}
        if vm.boot_diagnostics.storage_uri:
            diag["storageUri"] = vm.boot_diagnostics.storage_uri
        out["diagnosticsProfile"] = {"bootDiagnostics": diag}
    if vm.license_type:
        out["licenseType"] = vm.license_type
    return out


def public(store: Store, vm: VirtualMachine, *, expand: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {
        **_optional_profiles(vm),
        "vmId": vm.vm_id,
        "hardwareProfile": {"vmSize": vm.vm_size},
        "storageProfile": storage_profile(vm),
        "provisioningState": vm.provisioning_state,
        "timeCreated": vm.time_created,
    }
    profile = os_profile(vm)
    if profile is not None:
        props["osProfile"] = profile
    wanted = {e.strip().lower() for e in (expand or "").split(",") if e.strip()}
    if "instanceview" in wanted:
        props["instanceView"] = instance_view(store, vm)
    if "userdata" in wanted and vm.user_data:
        props["userData"] = vm.user_data
    body: dict[str, Any] = {
        "id": vm.id,
        "name": vm.name,
        "type": vms.VM_TYPE,
        "location": vm.location,
        "properties": props,
    }
    if vm.tags:
        body["tags"] = dict(vm.tags)
    return body


def render(store: Store, rid: str) -> dict[str, Any]:
    """The LRO result of a finished PUT: the VM as it is now."""
    return public(store, vms.get_by_id(store, rid))
