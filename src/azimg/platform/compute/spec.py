"""What the fabric is told about a VM: a ``VmSpec`` built from the VM resource (pure).

The guest's network is the fabric's business (``fabric/supervisor.py`` and ``fabric/vmhost.py``
set it up in one place); the platform only passes identity, disks, sizes and provisioning.
"""

from __future__ import annotations

import base64
from pathlib import Path

from azimg.fabric.imds import InstanceMetadata
from azimg.fabric.media import LinuxProvisioning, SshPublicKey
from azimg.fabric.supervisor import VmSpec, mac_for
from azimg.platform.resources.virtual_machines import VM_SIZES, VirtualMachine


def vm_spec(
    vm: VirtualMachine,
    *,
    os_disk: Path,
    serial_log: Path,
    first_boot: bool,
    provisioning_timeout_s: float,
    accel: str,
) -> VmSpec:
    """The fabric's spec of ``vm``; provisioning media only on a generalized VM's first boot."""
    size = VM_SIZES[vm.vm_size]
    profile = vm.os_profile
    keys = tuple(SshPublicKey(k.path, k.key_data) for k in profile.public_keys) if profile else ()
    meta = InstanceMetadata(
        vm_id=vm.vm_id,
        name=vm.name,
        computer_name=profile.computer_name if profile else vm.name,
        admin_username=profile.admin_username if profile else "",
        location=vm.location,
        resource_group=vm.resource_group,
        subscription_id=vm.subscription_id,
        vm_size=vm.vm_size,
        mac_address=mac_for(vm.vm_id).replace(":", ""),
        disable_password_authentication=profile.disable_password_authentication
        if profile
        else True,
        public_keys=keys,
        user_data_b64=vm.user_data or "",
        tags=";".join(f"{k}:{v}" for k, v in vm.tags.items()),
    )
    provisioning = None
    if first_boot and profile is not None and not vm.provisioned:
        custom = vm.secrets.get("customData")
        provisioning = LinuxProvisioning(
            hostname=profile.computer_name,
            username=profile.admin_username,
            password=vm.secrets.get("adminPassword"),
            disable_password_authentication=profile.disable_password_authentication,
            public_keys=keys,
            custom_data=base64.b64decode(custom) if custom else None,
            provision_guest_agent=profile.provision_vm_agent,
        )
    raw = vm.runtime_disk.format == "vhd"
    return VmSpec(
        name=vm.vm_id,
        os_disk=os_disk,
        generation=vm.generation,
        vm_id=vm.vm_id,
        vcpus=size.vcpus,
        memory_mib=size.memory_mib,
        metadata=meta,
        provisioning=provisioning,
        provisioning_timeout_s=provisioning_timeout_s,
        os_disk_format="raw" if raw else "qcow2",
        os_disk_size=vm.runtime_disk.size if raw else None,
        accel=accel,
        serial_log=serial_log,
    )
