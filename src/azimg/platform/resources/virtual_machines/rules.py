"""Azure's VM rules that need no store: sizes, osProfile per source, passwords, actions.

Pure functions over the typed commands (reference/arm-api.md §8.2, §8.6); each raises the
platform error Azure answers with, worded as Azure words it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from azimg.platform import errors
from azimg.platform.resources.common import enum_value
from azimg.platform.resources.virtual_machines.commands import OsProfileInput, UpdateVm
from azimg.platform.resources.virtual_machines.model import OsProfile, SshKey, VirtualMachine


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
OS_DISK_CREATE_OPTIONS = ("FromImage", "Attach")
CACHING = ("None", "ReadOnly", "ReadWrite")


@dataclass(frozen=True)
class SourceFacts:
    """What the VM's source says about the OS it carries."""

    os_state: str  # Generalized | Specialized
    generation: int
    attach: bool


def check_vm_size(value: str | None) -> str:
    if value is None:
        raise errors.RequiredVmParameter(
            name="hardwareProfile.vmSize", target="hardwareProfile.vmSize"
        )
    return enum_value(value, tuple(VM_SIZES), target="hardwareProfile.vmSize")


def generation_of(hyper_v_generation: str | None) -> int:
    return 2 if (hyper_v_generation or "V1").upper() == "V2" else 1


def check_os_profile(profile: OsProfileInput | None, source: SourceFacts) -> OsProfile | None:
    """Azure's osProfile rules for Linux; the profile as stored, defaults filled in."""
    if source.attach or source.os_state == "Specialized":
        if profile is not None:
            raise errors.OsProfileNotAllowed(target="osProfile")
        return None
    if profile is None:
        raise errors.OsProfileRequired(target="osProfile")
    if profile.windows:
        raise errors.WindowsConfigurationNotAllowed(target="osProfile.windowsConfiguration")
    computer = profile.computer_name
    if computer is None or not _COMPUTER_NAME.match(computer):
        raise errors.ComputerNameInvalid(name=computer, target="osProfile.computerName")
    user = profile.admin_username
    if not user:
        raise errors.RequiredVmParameter(name="adminUsername", target="osProfile.adminUsername")
    if user.lower() in DISALLOWED_USERNAMES or not _LINUX_USER.match(user):
        raise errors.AdminUsernameNotAllowed(user=user, target="osProfile.adminUsername")
    password = profile.admin_password
    disable_pw = profile.disable_password_authentication
    if disable_pw is None:
        disable_pw = password is None
    if password is not None:
        check_password(password)
    if disable_pw and password is not None:
        raise errors.AdminPasswordWithoutPasswordAuth(target="osProfile.adminPassword")
    if not disable_pw and password is None:
        raise errors.RequiredVmParameter(name="adminPassword", target="osProfile.adminPassword")
    if disable_pw and not profile.public_keys:
        raise errors.LinuxAuthenticationRequired(target="linuxConfiguration")
    expected_path = f"/home/{user}/.ssh/authorized_keys"
    keys = []
    for key in profile.public_keys:
        if key.path not in (None, expected_path):
            raise errors.SshKeyPathNotAllowed(
                path=expected_path, target="linuxConfiguration.ssh.publicKeys.path"
            )
        if key.key_data is None or not key.key_data.startswith(("ssh-", "ecdsa-")):
            raise errors.SshKeyDataInvalid(target="linuxConfiguration.ssh.publicKeys.keyData")
        keys.append(SshKey(path=expected_path, key_data=key.key_data))
    if profile.custom_data is not None:
        check_custom_data(profile.custom_data)
    if profile.has_secrets:
        raise errors.VmKeyVaultSecretsNotImplemented(target="osProfile.secrets")
    return OsProfile(
        computer_name=computer,
        admin_username=user,
        disable_password_authentication=bool(disable_pw),
        public_keys=tuple(keys),
        provision_vm_agent=profile.provision_vm_agent is not False,
        allow_extension_operations=profile.allow_extension_operations is not False,
    )


def check_custom_data(custom: str) -> None:
    try:
        decoded = base64.b64decode(custom, validate=True)
    except (ValueError, binascii.Error):
        raise errors.CustomDataNotBase64(target="osProfile.customData") from None
    if len(decoded) > MAX_CUSTOM_DATA:
        raise errors.CustomDataTooLarge(limit=MAX_CUSTOM_DATA, target="osProfile.customData")


def check_password(password: str) -> None:
    if not 6 <= len(password) <= 72:
        raise errors.PasswordNotComplex(target="adminPassword")
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[\W_]"))
    if classes < 3 or password in DISALLOWED_PASSWORDS:
        raise errors.PasswordNotComplex(target="adminPassword")


def check_put_on_existing(vm: VirtualMachine, cmd: UpdateVm) -> None:
    """A PUT or PATCH on an existing VM may only restate what it is (tags change)."""
    if cmd.vm_size is not None and cmd.vm_size.lower() != vm.vm_size.lower():
        raise errors.VmFeatureNotImplemented(
            feature="Changing the VM size", target="hardwareProfile.vmSize"
        )
    if vm.os_profile and cmd.computer_name not in (None, vm.os_profile.computer_name):
        raise errors.VmPropertyChangeNotAllowed(
            name="osProfile.computerName", target="osProfile.computerName"
        )


def check_action(vm: VirtualMachine, action: str) -> None:
    """Azure's refusals for power actions (reference §8.6)."""
    why = None
    if vm.provisioning_state == "Deleting":
        why = "being deleted"
    elif vm.generalized and action in ("start", "powerOff", "restart"):
        why = "generalized"
    elif action == "restart" and vm.power_state != "running":
        why = vm.power_state
    if why is not None:
        raise errors.VmActionNotAllowed(action=action, vm=vm.name, state=why)


def check_generalize(vm: VirtualMachine) -> None:
    if vm.power_state not in ("stopped", "deallocated"):
        raise errors.VmActionNotAllowed(action="generalize", vm=vm.name, state=vm.power_state)
