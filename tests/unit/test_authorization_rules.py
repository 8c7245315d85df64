"""The RBAC evaluator as a table: (role permissions, assignment scope, action, scope) → allowed,
with Azure's rules (reference/rbac-sharing.md §3.4-3.6)."""

from __future__ import annotations

import pytest

from azimg.platform.resources import authorization_roles as r
from azimg.platform.resources.authorization_actions import required
from azimg.platform.resources.authorization_roles import Grant, Permission

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
RG = f"{SUB}/resourceGroups/rg1"
DISK = f"{RG}/providers/Microsoft.Compute/disks/d1"
GALLERY = f"{RG}/providers/Microsoft.Compute/galleries/g1"
VERSION = f"{GALLERY}/images/i1/versions/1.0.0"
OTHER_RG = f"{SUB}/resourceGroups/rg2"


def _by(name: str) -> tuple[Permission, ...]:
    role = r.built_in_by_name(name)
    assert role is not None, name
    return role.permissions


CASES = [
    # role, assignment scope, action, request scope, allowed
    ("Owner", SUB, "Microsoft.Compute/disks/write", DISK, True),
    ("Owner", SUB, "Microsoft.Authorization/roleAssignments/write", RG, True),
    ("Owner", RG, "Microsoft.Compute/disks/read", f"{OTHER_RG}/providers/x/y/z", False),
    ("Owner", DISK, "Microsoft.Compute/disks/read", RG, False),  # no inheritance upward
    ("Contributor", SUB, "Microsoft.Compute/disks/delete", DISK, True),
    ("Contributor", SUB, "Microsoft.Authorization/roleAssignments/write", SUB, False),
    ("Contributor", SUB, "microsoft.authorization/roleassignments/delete", SUB, False),
    ("Contributor", SUB, "Microsoft.Authorization/roleAssignments/read", SUB, True),
    ("Contributor", GALLERY, "Microsoft.Compute/galleries/share/action", GALLERY, False),
    ("Contributor", GALLERY, "Microsoft.Compute/galleries/images/versions/write", VERSION, True),
    ("Reader", SUB, "Microsoft.Compute/disks/read", DISK, True),
    ("Reader", SUB, "Microsoft.Compute/disks/write", DISK, False),
    ("Reader", SUB, "Microsoft.Compute/disks/beginGetAccess/action", DISK, False),
    ("Reader", RG, "Microsoft.Resources/subscriptions/resourceGroups/read", RG, True),
    ("Reader", RG, "Microsoft.Resources/subscriptions/resourceGroups/read", OTHER_RG, False),
    ("User Access Administrator", SUB, "Microsoft.Authorization/roleAssignments/write", SUB, True),
    ("User Access Administrator", SUB, "Microsoft.Compute/disks/write", DISK, False),
    ("Virtual Machine Contributor", RG, "Microsoft.Compute/virtualMachines/write", RG, True),
    ("Virtual Machine Contributor", RG, "Microsoft.Compute/virtualMachines/start/action", RG, True),
    ("Virtual Machine Contributor", RG, "Microsoft.Compute/disks/write", DISK, True),
    ("Virtual Machine Contributor", RG, "Microsoft.Compute/snapshots/write", RG, False),
    (
        "Virtual Machine Contributor",
        RG,
        "Microsoft.Compute/galleries/images/versions/read",
        VERSION,
        False,
    ),
    (
        "Virtual Machine Contributor",
        SUB,
        "Microsoft.Compute/locations/sharedGalleries/read",
        SUB,
        True,
    ),
    (
        "Virtual Machine Contributor",
        RG,
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        RG,
        True,
    ),
    ("Virtual Machine Contributor", RG, "Microsoft.Network/virtualNetworks/write", RG, False),
    (
        "Compute Gallery Sharing Admin",
        GALLERY,
        "Microsoft.Compute/galleries/share/action",
        GALLERY,
        True,
    ),
    ("Compute Gallery Sharing Admin", GALLERY, "Microsoft.Compute/galleries/read", GALLERY, False),
    (
        "Compute Gallery Image Reader",
        GALLERY,
        "Microsoft.Compute/galleries/images/versions/read",
        VERSION,
        True,
    ),
    ("Compute Gallery Image Reader", GALLERY, "Microsoft.Compute/galleries/read", GALLERY, False),
    (
        "Compute Gallery Artifacts Publisher",
        RG,
        "Microsoft.Compute/galleries/share/action",
        GALLERY,
        False,
    ),
    (
        "Compute Gallery Artifacts Publisher",
        RG,
        "Microsoft.Compute/galleries/images/write",
        GALLERY,
        True,
    ),
    ("Disk Snapshot Contributor", RG, "Microsoft.Compute/snapshots/write", RG, True),
    ("Disk Snapshot Contributor", RG, "Microsoft.Compute/disks/beginGetAccess/action", DISK, True),
    ("Disk Snapshot Contributor", RG, "Microsoft.Compute/disks/write", DISK, False),
    ("Disk Restore Operator", RG, "Microsoft.Compute/disks/write", DISK, True),
    ("Disk Restore Operator", RG, "Microsoft.Compute/disks/delete", DISK, False),
    ("Disk Backup Reader", RG, "Microsoft.Compute/disks/beginGetAccess/action", DISK, True),
    ("Disk Backup Reader", RG, "Microsoft.Compute/disks/write", DISK, False),
    ("Data Operator for Managed Disks", RG, "Microsoft.Compute/disks/read", DISK, False),
    ("Disk Pool Operator", RG, "Microsoft.Compute/disks/write", DISK, True),
]


@pytest.mark.parametrize(("role", "at", "action", "scope", "expected"), CASES)
def test_built_in_roles_allow_exactly_their_actions(
    role: str, at: str, action: str, scope: str, expected: bool
) -> None:
    assert r.allowed([Grant(at, _by(role))], action, scope) is expected


def test_deny_by_default() -> None:
    assert not r.allowed([], "Microsoft.Compute/disks/read", DISK)


def test_data_actions_are_separate_from_actions() -> None:
    grants = [Grant(RG, _by("Data Operator for Managed Disks"))]
    assert r.allowed(grants, "Microsoft.Compute/disks/download/action", DISK, data=True)
    assert not r.allowed(grants, "Microsoft.Compute/disks/download/action", DISK)
    assert not r.allowed(
        [Grant(RG, _by("Owner"))], "Microsoft.Compute/disks/download/action", DISK, data=True
    )


def test_not_actions_subtract_inside_their_own_block_only() -> None:
    """NotActions is not a deny: another block, or another role, grants it back."""
    blocked = Permission(actions=("Microsoft.Compute/*",), not_actions=("*/delete",))
    granted = Permission(actions=("Microsoft.Compute/disks/delete",))
    assert not r.allowed([Grant(SUB, (blocked,))], "Microsoft.Compute/disks/delete", DISK)
    assert r.allowed([Grant(SUB, (blocked, granted))], "Microsoft.Compute/disks/delete", DISK)
    both = [Grant(SUB, _by("Contributor")), Grant(GALLERY, _by("Compute Gallery Sharing Admin"))]
    assert r.allowed(both, "Microsoft.Compute/galleries/share/action", GALLERY)


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "Microsoft.Compute/disks/read", True),
        ("*/read", "Microsoft.Compute/galleries/images/versions/read", True),
        ("*/read", "Microsoft.Compute/disks/write", False),
        ("Microsoft.Compute/*", "microsoft.compute/disks/delete", True),
        ("Microsoft.Compute/*", "Microsoft.ComputeX/disks/delete", False),
        ("Microsoft.Network/*/read", "Microsoft.Network/virtualNetworks/subnets/read", True),
        (
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/roleAssignments/delete",
            True,
        ),
        ("Microsoft.Compute/disks/read", "Microsoft.Compute/disks/readx", False),
        ("Microsoft.Compute/disks.read", "Microsoft.Compute/disksXread", False),  # '.' is literal
    ],
)
def test_patterns_are_anchored_case_insensitive_globs(
    pattern: str, action: str, expected: bool
) -> None:
    assert r.action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("assignment", "scope", "expected"),
    [
        (SUB, SUB, True),
        (SUB, DISK, True),
        (SUB.upper(), DISK.lower(), True),
        (RG, f"{SUB}/resourceGroups/rg10", False),  # a prefix of the name is not a parent
        (DISK, RG, False),
        ("/", DISK, True),
        (RG + "/", RG, True),
    ],
)
def test_assignments_apply_at_and_below_their_scope(
    assignment: str, scope: str, expected: bool
) -> None:
    assert r.covers(assignment, scope) is expected


def test_built_in_ids_are_azure_s() -> None:
    ids = {role.name: role.guid for role in r.BUILT_IN_ROLES}
    assert ids["Owner"] == "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    assert ids["Contributor"] == "b24988ac-6180-42a0-ab88-20f7382dd24c"
    assert ids["Reader"] == "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    assert ids["User Access Administrator"] == "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
    assert ids["Virtual Machine Contributor"] == "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"
    assert ids["Compute Gallery Sharing Admin"] == "1ef6a3be-d0ac-425d-8c01-acb62866290b"
    assert len(set(ids.values())) == len(ids)
    assert all(role.assignable_scopes == ("/",) for role in r.BUILT_IN_ROLES)


_S = "/subscriptions/s1"
_RGP = f"{_S}/resourcegroups/rg/providers"


@pytest.mark.parametrize(
    ("method", "path", "action", "scope"),
    [
        ("GET", _S, "Microsoft.Resources/subscriptions/read", _S),
        (
            "GET",
            f"{_S}/resourcegroups",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            _S,
        ),
        (
            "PUT",
            f"{_S}/resourcegroups/rg",
            "Microsoft.Resources/subscriptions/resourceGroups/write",
            f"{_S}/resourceGroups/rg",
        ),
        (
            "GET",
            f"{_RGP}/microsoft.compute/disks/d1",
            "Microsoft.Compute/disks/read",
            f"{_S}/resourceGroups/rg/providers/Microsoft.Compute/disks/d1",
        ),
        (
            "GET",
            f"{_RGP}/microsoft.compute/disks",
            "Microsoft.Compute/disks/read",
            f"{_S}/resourceGroups/rg",
        ),
        (
            "DELETE",
            f"{_RGP}/microsoft.compute/disks/d1",
            "Microsoft.Compute/disks/delete",
            f"{_S}/resourceGroups/rg/providers/Microsoft.Compute/disks/d1",
        ),
        (
            "POST",
            f"{_RGP}/microsoft.compute/disks/d1/begingetaccess",
            "Microsoft.Compute/disks/beginGetAccess/action",
            f"{_S}/resourceGroups/rg/providers/Microsoft.Compute/disks/d1",
        ),
        (
            "PATCH",
            f"{_RGP}/microsoft.compute/galleries/g/images/i/versions/1.0.0",
            "Microsoft.Compute/galleries/images/versions/write",
            f"{_S}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i/versions/1.0.0",
        ),
        (
            "POST",
            f"{_S}/providers/microsoft.compute/register",
            "Microsoft.Compute/register/action",
            _S,
        ),
        (
            "PUT",
            f"{_RGP}/microsoft.compute/disks/d1/providers/microsoft.authorization/roleassignments/x",
            "Microsoft.Authorization/roleAssignments/write",
            f"{_S}/resourceGroups/rg/providers/Microsoft.Compute/disks/d1",
        ),
    ],
)
def test_each_request_needs_the_action_arm_derives(
    method: str, path: str, action: str, scope: str
) -> None:
    assert required(method, path) == (action, scope)


@pytest.mark.parametrize("path", ["/subscriptions", "/tenants", "/providers/microsoft.compute"])
def test_tenant_level_requests_need_no_role(path: str) -> None:
    assert required("GET", path) is None
