"""Azure RBAC's rules as pure functions: the built-in roles and the allow/deny evaluator.

No store, no HTTP: ``allowed(grants, action, scope)`` decides from the principal's assignments
(each already joined with its role's permissions) exactly as ARM does — an assignment applies
at its scope and everything below it; inside one permission block an action is allowed when
some ``actions`` pattern matches and no ``notActions`` pattern of THAT block does (NotActions
is a subtraction, not a deny: another block or role may grant it); patterns are
case-insensitive globs where ``*`` crosses ``/``. Deny by default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from azimg.platform.ids import utc_now
from azimg.platform.store import Document

ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions"
BUILT_IN = "BuiltInRole"
CUSTOM = "CustomRole"


@dataclass(frozen=True)
class Permission:
    """One ``permissions[]`` block of a role definition."""

    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Role:
    guid: str
    name: str
    description: str
    permissions: tuple[Permission, ...]
    type: str = BUILT_IN
    assignable_scopes: tuple[str, ...] = ("/",)


@dataclass(frozen=True)
class Grant:
    """An assignment as the evaluator needs it: where it applies and what its role allows."""

    scope: str
    permissions: tuple[Permission, ...] = field(default=())


@lru_cache(maxsize=4096)
def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile(
        "^" + ".*".join(re.escape(p) for p in glob.split("*")) + "$", re.IGNORECASE | re.DOTALL
    )


def action_matches(pattern: str, action: str) -> bool:
    """``Microsoft.Compute/*/read`` matches ``microsoft.compute/galleries/images/read``."""
    return _pattern(pattern).match(action) is not None


def permits(permissions: Iterable[Permission], action: str, *, data: bool = False) -> bool:
    """Whether any block grants ``action`` (control-plane, or data-plane with ``data``)."""
    for p in permissions:
        allow, deny = (p.data_actions, p.not_data_actions) if data else (p.actions, p.not_actions)
        if any(action_matches(a, action) for a in allow) and not any(
            action_matches(n, action) for n in deny
        ):
            return True
    return False


def normalize_scope(scope: str) -> str:
    """Lower-cased, one leading slash, no trailing slash ("/" stays "/")."""
    s = "/" + scope.strip("/").lower()
    return s


def covers(assignment_scope: str, scope: str) -> bool:
    """An assignment at ``assignment_scope`` applies to ``scope`` (itself or below it)."""
    a, s = normalize_scope(assignment_scope), normalize_scope(scope)
    return a == "/" or s == a or s.startswith(a + "/")


def allowed(grants: Iterable[Grant], action: str, scope: str, *, data: bool = False) -> bool:
    """Deny by default; allowed iff some grant covering ``scope`` permits ``action``."""
    return any(covers(g.scope, scope) and permits(g.permissions, action, data=data) for g in grants)


def _role(
    guid: str, name: str, description: str, actions: Sequence[str], **kw: Sequence[str]
) -> Role:
    perm = Permission(
        actions=tuple(actions),
        not_actions=tuple(kw.get("not_actions", ())),
        data_actions=tuple(kw.get("data_actions", ())),
        not_data_actions=tuple(kw.get("not_data_actions", ())),
    )
    return Role(guid=guid, name=name, description=description, permissions=(perm,))


_AUTH_READ = "Microsoft.Authorization/*/read"
_RG_READ = "Microsoft.Resources/subscriptions/resourceGroups/read"

#: The built-in roles (ids and permissions as Azure publishes them).
BUILT_IN_ROLES: tuple[Role, ...] = (
    _role(
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "Owner",
        "Grants full access to manage all resources, including the ability to assign roles "
        "in Azure RBAC.",
        ["*"],
    ),
    _role(
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "Contributor",
        "Grants full access to manage all resources, but does not allow you to assign roles "
        "in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
        ["*"],
        not_actions=[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ],
    ),
    _role(
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "Reader",
        "View all resources, but does not allow you to make any changes.",
        ["*/read"],
    ),
    _role(
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "User Access Administrator",
        "Lets you manage user access to Azure resources.",
        ["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
    ),
    _role(
        "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        "Role Based Access Control Administrator",
        "Manage access to Azure resources by assigning roles using Azure RBAC.",
        [
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "*/read",
            "Microsoft.Support/*",
        ],
    ),
    _role(
        "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
        "Virtual Machine Contributor",
        "Create and manage virtual machines, manage disks, install and run software, reset "
        "password of the root user of the virtual machine using VM extensions, and manage "
        "local user accounts using VM extensions.",
        [
            _AUTH_READ,
            "Microsoft.Compute/availabilitySets/*",
            "Microsoft.Compute/locations/*",
            "Microsoft.Compute/virtualMachines/*",
            "Microsoft.Compute/virtualMachineScaleSets/*",
            "Microsoft.Compute/cloudServices/*",
            "Microsoft.Compute/disks/write",
            "Microsoft.Compute/disks/read",
            "Microsoft.Compute/disks/delete",
            "Microsoft.Compute/hostgroups/write",
            "Microsoft.Compute/hostgroups/hosts/write",
            "Microsoft.DevTestLab/schedules/*",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Network/applicationGateways/backendAddressPools/join/action",
            "Microsoft.Network/loadBalancers/backendAddressPools/join/action",
            "Microsoft.Network/loadBalancers/inboundNatPools/join/action",
            "Microsoft.Network/loadBalancers/inboundNatRules/join/action",
            "Microsoft.Network/loadBalancers/probes/join/action",
            "Microsoft.Network/loadBalancers/read",
            "Microsoft.Network/locations/*",
            "Microsoft.Network/networkInterfaces/*",
            "Microsoft.Network/networkSecurityGroups/join/action",
            "Microsoft.Network/networkSecurityGroups/read",
            "Microsoft.Network/publicIPAddresses/join/action",
            "Microsoft.Network/publicIPAddresses/read",
            "Microsoft.Network/virtualNetworks/read",
            "Microsoft.Network/virtualNetworks/subnets/join/action",
            "Microsoft.RecoveryServices/locations/*",
            "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/"
            "protectedItems/*/read",
            "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/"
            "protectedItems/read",
            "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/"
            "protectedItems/write",
            "Microsoft.RecoveryServices/Vaults/backupPolicies/read",
            "Microsoft.RecoveryServices/Vaults/backupPolicies/write",
            "Microsoft.RecoveryServices/Vaults/read",
            "Microsoft.RecoveryServices/Vaults/usages/read",
            "Microsoft.RecoveryServices/Vaults/write",
            "Microsoft.ResourceHealth/availabilityStatuses/read",
            "Microsoft.Resources/deployments/*",
            _RG_READ,
            "Microsoft.SerialConsole/serialPorts/connect/action",
            "Microsoft.SqlVirtualMachine/*",
            "Microsoft.Storage/storageAccounts/listKeys/action",
            "Microsoft.Storage/storageAccounts/read",
            "Microsoft.Support/*",
        ],
    ),
    _role(
        "1ef6a3be-d0ac-425d-8c01-acb62866290b",
        "Compute Gallery Sharing Admin",
        "This role allows user to share gallery to another subscription/tenant or share it "
        "to the public.",
        ["Microsoft.Compute/galleries/share/action"],
    ),
    _role(
        "85a2d0d9-2eba-4c9c-b355-11c2cc0788ab",
        "Compute Gallery Artifacts Publisher",
        "This is the role for publishing gallery artifacts.",
        [
            "Microsoft.Compute/galleries/*",
            "Microsoft.Compute/locations/capsOperations/read",
            "Microsoft.Compute/locations/communityGalleries/*",
            "Microsoft.Compute/locations/sharedGalleries/*",
            "Microsoft.Compute/images/*",
            "Microsoft.Compute/virtualMachines/write",
            "Microsoft.Compute/disks/write",
            _AUTH_READ,
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/deployments/*",
            _RG_READ,
        ],
        not_actions=["Microsoft.Compute/galleries/share/action"],
    ),
    _role(
        "cf7c76d2-98a3-4358-a134-615aa78bf44d",
        "Compute Gallery Image Reader",
        "This is the role for reading gallery images.",
        [
            "Microsoft.Compute/galleries/images/read",
            "Microsoft.Compute/galleries/images/versions/read",
        ],
    ),
    _role(
        "7efff54f-a5b4-42b5-a1c5-5411624893ce",
        "Disk Snapshot Contributor",
        "Provides permission to backup vault to manage disk snapshots.",
        [
            _AUTH_READ,
            _RG_READ,
            "Microsoft.Compute/snapshots/delete",
            "Microsoft.Compute/snapshots/write",
            "Microsoft.Compute/snapshots/read",
            "Microsoft.Compute/snapshots/beginGetAccess/action",
            "Microsoft.Compute/snapshots/endGetAccess/action",
            "Microsoft.Compute/disks/beginGetAccess/action",
            "Microsoft.Storage/storageAccounts/listkeys/action",
            "Microsoft.Storage/storageAccounts/write",
            "Microsoft.Storage/storageAccounts/read",
            "Microsoft.Storage/storageAccounts/delete",
        ],
    ),
    _role(
        "b50d9833-a0cb-478e-945f-707fcc997c13",
        "Disk Restore Operator",
        "Provides permission to backup vault to perform disk restore.",
        [_AUTH_READ, _RG_READ, "Microsoft.Compute/disks/write", "Microsoft.Compute/disks/read"],
    ),
    _role(
        "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24",
        "Disk Backup Reader",
        "Provides permission to backup vault to perform disk backup.",
        [
            _AUTH_READ,
            "Microsoft.Compute/disks/read",
            "Microsoft.Compute/disks/beginGetAccess/action",
        ],
    ),
    _role(
        "959f8984-c045-4866-89c7-12bf9737be2e",
        "Data Operator for Managed Disks",
        "Provides permissions to upload data to empty managed disks, read, or export data of "
        "managed disks (not attached to running VMs) and snapshots using SAS URIs and Azure AD "
        "authentication.",
        [],
        data_actions=[
            "Microsoft.Compute/disks/download/action",
            "Microsoft.Compute/disks/upload/action",
            "Microsoft.Compute/snapshots/download/action",
            "Microsoft.Compute/snapshots/upload/action",
        ],
    ),
    _role(
        "60fc6e62-5479-42d4-8bf4-67625fcc2840",
        "Disk Pool Operator",
        "Provide permission to StoragePool Resource Provider to manage disks added to a disk pool.",
        [
            "Microsoft.Compute/disks/write",
            "Microsoft.Compute/disks/read",
            _AUTH_READ,
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/deployments/*",
            _RG_READ,
        ],
    ),
)

BUILT_IN_BY_GUID: dict[str, Role] = {r.guid: r for r in BUILT_IN_ROLES}
OWNER = BUILT_IN_BY_GUID["8e3af657-a8ff-443c-a75c-2fe8c4bcb635"]


def built_in_by_name(name: str) -> Role | None:
    """Built-in role by its name (case-insensitive) or GUID."""
    low = name.lower()
    return next((r for r in BUILT_IN_ROLES if low in (r.name.lower(), r.guid)), None)


def subscription_of(scope: str) -> str | None:
    """The subscription id a scope lies in (None for "/" and tenant-level scopes)."""
    parts = [p for p in scope.split("/") if p]
    return parts[1] if len(parts) >= 2 and parts[0].lower() == "subscriptions" else None


def assignment_key(subscription_id: str, name: str) -> str:
    """Where an assignment is stored: under its subscription, whatever its scope, so that
    listing a scope's resources never meets it and a lookup by name is one read."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/"
        f"roleAssignments/{name.lower()}"
    )


def assignment_document(
    *,
    scope: str,
    name: str,
    role_guid: str,
    principal_id: str,
    principal_type: str,
    created_by: str,
    description: str | None = None,
) -> Document:
    """A new role assignment as stored (identity seeds the default Owner with this too)."""
    sub = subscription_of(scope)
    assert sub is not None, "assignments live in a subscription"
    now = utc_now()
    return Document(
        id=assignment_key(sub, name),
        type=ASSIGNMENT_TYPE,
        body={
            "name": name.lower(),
            "scope": scope,
            "roleGuid": role_guid.lower(),
            "principalId": principal_id.lower(),
            "principalType": principal_type,
            "description": description,
            "createdOn": now,
            "updatedOn": now,
            "createdBy": created_by,
            "updatedBy": created_by,
        },
    )
