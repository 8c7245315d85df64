"""The VM resource's pure rules: osProfile per source, sizes, statuses (reference §8), and
the typed request bodies in front of them (a wrong type anywhere is a 400 with its path)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from azimg.platform.arm.models import parse
from azimg.platform.arm.virtual_machines.models import VmBody, to_create
from azimg.platform.errors import (
    InvalidParameter,
    InvalidRequestContent,
    NotImplementedFeature,
    OperationNotAllowed,
    UnsupportedProperty,
)
from azimg.platform.resources.virtual_machines import (
    OsDisk,
    OsProfileInput,
    RuntimeDisk,
    SourceFacts,
    SshKeyInput,
    VirtualMachine,
    from_doc,
    to_doc,
)
from azimg.platform.resources.virtual_machines.instance_view import statuses
from azimg.platform.resources.virtual_machines.rules import (
    check_action,
    check_os_profile,
    check_password,
    check_vm_size,
)
from azimg.platform.store import BlobRef

GENERALIZED = SourceFacts("Generalized", 1, attach=False)
SPECIALIZED = SourceFacts("Specialized", 2, attach=False)
ATTACHED = SourceFacts("Specialized", 1, attach=True)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE6 user@host"
VM_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


def wire_profile(**overrides: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "computerName": "vm1",
        "adminUsername": "opsadmin",
        "linuxConfiguration": {
            "disablePasswordAuthentication": True,
            "ssh": {
                "publicKeys": [{"path": "/home/opsadmin/.ssh/authorized_keys", "keyData": KEY}]
            },
        },
    }
    profile.update(overrides)
    return profile


def make_profile(**overrides: Any) -> OsProfileInput:
    """An osProfile as the router hands it to the domain (built from the wire shape)."""
    body = {"location": "eastus", "properties": {"osProfile": wire_profile(**overrides)}}
    cmd = to_create(parse(VmBody, body), subscription_id="s", resource_group="rg", name="vm1",
                    app_id="app")  # fmt: skip
    assert cmd.os_profile is not None
    return cmd.os_profile


def make_vm(**overrides: Any) -> VirtualMachine:
    profile = check_os_profile(make_profile(), GENERALIZED)
    values: dict[str, Any] = {
        "id": VM_ID,
        "name": "vm1",
        "location": "eastus",
        "vm_id": "3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff",
        "vm_size": "Standard_B2s",
        "os_disk": OsDisk("d", "d", "FromImage", "ReadWrite", "Standard_LRS", "Detach", 1 << 30),
        "os_profile": profile,
        "time_created": "2026-11-26T00:00:00Z",
        "system_data": {},
        "generation": 1,
        "os_state": "Generalized",
        "runtime_disk": RuntimeDisk(BlobRef("eastus", "k"), "qcow2", 1 << 30,
                                    base=BlobRef("eastus", "k.base")),
    }  # fmt: skip
    values.update(overrides)
    return VirtualMachine(**values)


def test_generalized_source_needs_os_profile() -> None:
    with pytest.raises(InvalidParameter, match="Required parameter 'osProfile' is missing"):
        check_os_profile(None, GENERALIZED)


@pytest.mark.parametrize("source", [SPECIALIZED, ATTACHED])
def test_specialized_or_attached_forbids_os_profile(source: SourceFacts) -> None:
    with pytest.raises(InvalidParameter, match="Parameter 'osProfile' is not allowed"):
        check_os_profile(make_profile(), source)
    assert check_os_profile(None, source) is None


def test_profile_is_completed_with_azure_defaults() -> None:
    profile = check_os_profile(make_profile(), GENERALIZED)
    assert profile is not None
    assert profile.provision_vm_agent is True
    assert profile.allow_extension_operations is True
    assert profile.public_keys[0].path == "/home/opsadmin/.ssh/authorized_keys"


@pytest.mark.parametrize(
    ("overrides", "target"),
    [
        ({"adminUsername": "admin"}, "osProfile.adminUsername"),
        ({"adminUsername": "Root"}, "osProfile.adminUsername"),
        ({"computerName": "-bad"}, "osProfile.computerName"),
        ({"computerName": "x" * 65}, "osProfile.computerName"),
        ({"linuxConfiguration": {"disablePasswordAuthentication": True}}, "linuxConfiguration"),
        (
            {"linuxConfiguration": {"ssh": {"publicKeys": [{"path": "/root/k", "keyData": KEY}]}}},
            "linuxConfiguration.ssh.publicKeys.path",
        ),
        (
            {"linuxConfiguration": {"ssh": {"publicKeys": [{"keyData": "not-a-key"}]}}},
            "linuxConfiguration.ssh.publicKeys.keyData",
        ),
        (
            {"linuxConfiguration": {"ssh": {"publicKeys": [{"path": None}]}}},
            "linuxConfiguration.ssh.publicKeys.keyData",
        ),
        (
            {"linuxConfiguration": {"disablePasswordAuthentication": False}},
            "osProfile.adminPassword",
        ),
        ({"customData": "!!notbase64"}, "osProfile.customData"),
        ({"customData": base64.b64encode(b"x" * 65536).decode()}, "osProfile.customData"),
    ],
)
def test_os_profile_rules(overrides: dict[str, Any], target: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        check_os_profile(make_profile(**overrides), GENERALIZED)
    assert err.value.target == target


def test_password_profile_is_accepted() -> None:
    profile = make_profile(
        adminPassword="Sup3r-secret",
        linuxConfiguration={"disablePasswordAuthentication": False},
    )
    checked = check_os_profile(profile, GENERALIZED)
    assert checked is not None
    assert checked.disable_password_authentication is False
    assert not hasattr(checked, "admin_password")  # write-only: kept apart, as a secret


@pytest.mark.parametrize("password", ["short", "alllowercase", "P@ssw0rd", "x" * 73])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(InvalidParameter):
        check_password(password)


def test_key_vault_secrets_are_refused_by_name() -> None:
    with pytest.raises(NotImplementedFeature):
        check_os_profile(make_profile(secrets=[{"sourceVault": {"id": "x"}}]), GENERALIZED)


@pytest.mark.parametrize(("given", "canonical"), [("standard_b2s", "Standard_B2s")])
def test_vm_size_is_canonical(given: str, canonical: str) -> None:
    assert check_vm_size(given) == canonical


@pytest.mark.parametrize("size", [None, "Standard_Huge_v9"])
def test_unknown_vm_size(size: str | None) -> None:
    with pytest.raises(InvalidParameter):
        check_vm_size(size)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"os_provisioning": "InProgress"},
         ["ProvisioningState/creating/OSProvisioningInprogress", "PowerState/starting"]),
        ({"os_provisioning": "Complete", "power_state": "running"},
         ["ProvisioningState/creating/OSProvisioningComplete", "PowerState/running"]),
        ({"provisioning_state": "Succeeded", "power_state": "running"},
         ["ProvisioningState/succeeded", "PowerState/running"]),
        ({"provisioning_state": "Failed", "os_provisioning": "TimedOut", "power_state": "running"},
         ["ProvisioningState/failed/OSProvisioningTimedOut", "PowerState/running"]),
        ({"provisioning_state": "Failed", "os_provisioning": "ClientError",
          "power_state": "running"},
         ["ProvisioningState/failed/OSProvisioningClientError", "PowerState/running"]),
        ({"provisioning_state": "Succeeded", "power_state": "deallocated", "generalized": True},
         ["ProvisioningState/succeeded", "PowerState/deallocated", "OSState/generalized"]),
    ],
)  # fmt: skip
def test_statuses(changes: dict[str, Any], expected: list[str]) -> None:
    assert [s.code for s in statuses(make_vm(**changes))] == expected


def test_timed_out_status_is_an_error_with_the_message() -> None:
    vm = make_vm(provisioning_state="Failed", os_provisioning="TimedOut",
                 os_provisioning_message="did not finish in the allotted time")  # fmt: skip
    first = statuses(vm)[0]
    assert (first.level, first.message) == ("Error", "did not finish in the allotted time")


@pytest.mark.parametrize(
    ("changes", "action", "words"),
    [
        (
            {"generalized": True, "power_state": "deallocated"},
            "start",
            "since the VM is generalized",
        ),
        ({"power_state": "stopped"}, "restart", "since the VM is stopped"),
        ({"provisioning_state": "Deleting"}, "start", "being deleted"),
    ],
)
def test_refused_actions(changes: dict[str, Any], action: str, words: str) -> None:
    with pytest.raises(OperationNotAllowed, match=words):
        check_action(make_vm(**changes), action)


def test_allowed_actions() -> None:
    running = make_vm(power_state="running", provisioning_state="Succeeded")
    for action in ("powerOff", "restart", "deallocate", "start"):
        check_action(running, action)


def test_a_stored_vm_reads_back_equal() -> None:
    vm = make_vm(tags={"a": "b"}, secrets={"customData": "eA=="})
    assert from_doc(to_doc(vm)) == vm


@pytest.mark.parametrize(
    ("properties", "target"),
    [
        ({"hardwareProfile": {"vmSize": 3}}, "properties.hardwareProfile.vmSize"),
        ({"storageProfile": {"osDisk": {"diskSizeGB": "big"}}},
         "properties.storageProfile.osDisk.diskSizeGB"),
        ({"storageProfile": {"osDisk": {"managedDisk": []}}},
         "properties.storageProfile.osDisk.managedDisk"),
        ({"osProfile": {"linuxConfiguration": {"ssh": {"publicKeys": [{"keyData": 7}]}}}},
         "properties.osProfile.linuxConfiguration.ssh.publicKeys[0].keyData"),
        ({"osProfile": {"linuxConfiguration": {"disablePasswordAuthentication": "yes"}}},
         "properties.osProfile.linuxConfiguration.disablePasswordAuthentication"),
        ({"diagnosticsProfile": {"bootDiagnostics": {"enabled": "on"}}},
         "properties.diagnosticsProfile.bootDiagnostics.enabled"),
        ({"networkProfile": {"networkInterfaces": [{"properties": {}}]}},
         "properties.networkProfile.networkInterfaces[0].id"),
    ],
)  # fmt: skip
def test_a_wrong_type_anywhere_is_a_400_naming_its_path(
    properties: dict[str, Any], target: str
) -> None:
    with pytest.raises(InvalidRequestContent) as err:
        parse(VmBody, {"location": "eastus", "properties": properties})
    assert err.value.target == target


@pytest.mark.parametrize(
    ("properties", "target"),
    [
        ({"availabilitySet": {"id": "x"}}, "properties.availabilitySet"),
        ({"storageProfile": {"osDisk": {"managedDisk": {"diskEncryptionSet": {}}}}},
         "properties.storageProfile.osDisk.managedDisk.diskEncryptionSet"),
        ({"osProfile": {"linuxConfiguration": {"patchSettings": {}}}},
         "properties.osProfile.linuxConfiguration.patchSettings"),
    ],
)  # fmt: skip
def test_an_unknown_property_anywhere_is_refused_by_name(
    properties: dict[str, Any], target: str
) -> None:
    with pytest.raises(UnsupportedProperty) as err:
        parse(VmBody, {"location": "eastus", "properties": properties})
    assert err.value.target == target


def test_the_body_becomes_a_command_without_camel_case() -> None:
    body = {
        "location": "eastus",
        "tags": {"k": "v"},
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_B1s"},
            "storageProfile": {
                "imageReference": {"id": "/subscriptions/s/x"},
                "osDisk": {"createOption": "FromImage",
                           "managedDisk": {"storageAccountType": "Premium_LRS"}},
            },
            "osProfile": wire_profile(customData="eA=="),
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
        },
    }  # fmt: skip
    cmd = to_create(parse(VmBody, body), subscription_id="s", resource_group="rg", name="vm1",
                    app_id="app")  # fmt: skip
    assert cmd.vm_size == "Standard_B1s"
    assert cmd.image_reference.id == "/subscriptions/s/x"
    assert cmd.os_disk.storage_account_type == "Premium_LRS"
    assert cmd.os_profile is not None and cmd.os_profile.custom_data == "eA=="
    assert cmd.os_profile.public_keys == (
        SshKeyInput(key_data=KEY, path="/home/opsadmin/.ssh/authorized_keys"),
    )
    assert cmd.boot_diagnostics is not None and cmd.boot_diagnostics.enabled is True
