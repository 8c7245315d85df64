"""The VM resource's pure rules: osProfile per source, sizes, statuses (reference §8)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from azimg.platform.errors import InvalidParameter, NotImplementedFeature, OperationNotAllowed
from azimg.platform.resources.virtual_machines import (
    OsDiskFile,
    SourceFacts,
    VirtualMachine,
    check_action,
    check_os_profile,
    check_password,
    check_vm_size,
    statuses,
)
from azimg.platform.store import BlobRef

GENERALIZED = SourceFacts("Generalized", 1, attach=False)
SPECIALIZED = SourceFacts("Specialized", 2, attach=False)
ATTACHED = SourceFacts("Specialized", 1, attach=True)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE6 user@host"


def make_profile(**overrides: Any) -> dict[str, Any]:
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


def make_vm(**overrides: Any) -> VirtualMachine:
    values: dict[str, Any] = {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        "name": "vm1",
        "location": "eastus",
        "vm_id": "3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff",
        "vm_size": "Standard_B2s",
        "storage_profile": {"osDisk": {"managedDisk": {"id": "d"}, "createOption": "FromImage"}},
        "os_profile": make_profile(),
        "time_created": "2026-11-26T00:00:00Z",
        "system_data": {},
        "generation": 1,
        "os_state": "Generalized",
        "os_disk": OsDiskFile(BlobRef("eastus", "k"), "qcow2", 1 << 30),
    }
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
    assert profile["linuxConfiguration"]["provisionVMAgent"] is True
    assert profile["requireGuestProvisionSignal"] is True
    assert "adminPassword" not in profile


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
    assert checked["linuxConfiguration"]["disablePasswordAuthentication"] is False
    assert "adminPassword" not in checked  # write-only: never stored in the returned profile


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
