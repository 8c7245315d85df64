"""Role assignments and custom role definitions (Microsoft.Authorization), and the access
question the pipeline asks: may this principal perform this action at this scope?

Assignments are stored under their subscription (``authorization_roles.assignment_key``)
with their scope in the body, so a lookup by name is one read and the principal's grants in a
subscription are one prefix listing. Built-in roles live in code (``authorization_roles``);
custom roles are documents under the subscription they were created in. The rules of
evaluation are the pure functions of ``authorization_roles``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from azimg.platform import identity
from azimg.platform.errors import (
    AuthorizationFailed,
    CannotModifyBuiltInRole,
    InvalidAssignableScope,
    InvalidParameter,
    InvalidRoleAssignmentId,
    InvalidRoleDefinitionId,
    PrincipalNotFound,
    ResourceGroupNotFound,
    ResourceNotFound,
    RoleAssignmentExists,
    RoleAssignmentNotFound,
    RoleAssignmentUpdateNotPermitted,
    RoleDefinitionDoesNotExist,
    RoleDefinitionHasAssignments,
    RoleDefinitionNotFound,
    RoleDefinitionWithSameNameExists,
    SubscriptionNotFound,
)
from azimg.platform.ids import utc_now
from azimg.platform.resources import authorization_actions
from azimg.platform.resources import authorization_roles as roles
from azimg.platform.resources.authorization_roles import (
    ASSIGNMENT_TYPE,
    CUSTOM,
    DEFINITION_TYPE,
    Grant,
    Permission,
    Role,
)
from azimg.platform.store import Document, Store

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")


@dataclass(frozen=True)
class Assignment:
    name: str
    scope: str
    role_guid: str
    principal_id: str
    principal_type: str
    description: str | None
    created_on: str
    updated_on: str
    created_by: str
    updated_by: str

    @property
    def subscription_id(self) -> str:
        return roles.subscription_of(self.scope) or ""

    @classmethod
    def from_document(cls, doc: Document) -> Assignment:
        b = doc.body
        return cls(
            name=b["name"],
            scope=b["scope"],
            role_guid=b["roleGuid"],
            principal_id=b["principalId"],
            principal_type=b["principalType"],
            description=b.get("description"),
            created_on=b["createdOn"],
            updated_on=b["updatedOn"],
            created_by=b["createdBy"],
            updated_by=b["updatedBy"],
        )


@dataclass(frozen=True)
class CustomRole:
    """A custom role as its PUT gives it (the router's command)."""

    role_name: str
    description: str
    assignable_scopes: tuple[str, ...]
    permissions: tuple[Permission, ...]


# --- ids and scopes -------------------------------------------------------------------------


def definition_id(subscription_id: str | None, guid: str) -> str:
    """The id az compares as a string: subscription-qualified wherever there is one."""
    prefix = f"/subscriptions/{subscription_id}" if subscription_id else ""
    return f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def role_guid_of(role_definition_id: str, *, target: str = "properties.roleDefinitionId") -> str:
    """The GUID of ``/subscriptions/{s}/providers/…/roleDefinitions/{guid}``, of
    ``/providers/…/{guid}`` or of a bare GUID."""
    guid = role_definition_id.rstrip("/").rsplit("/", 1)[-1]
    if not _GUID.match(guid):
        raise InvalidRoleDefinitionId(
            f"The role definition ID '{role_definition_id}' is not valid.", target=target
        )
    return guid.lower()


def _require_guid(name: str) -> str:
    if not _GUID.match(name):
        raise InvalidRoleAssignmentId(
            f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
        )
    return name.lower()


def _require_scope(store: Store, scope: str) -> str:
    """The scope's subscription id; 404 if the subscription, group or resource is absent."""
    sub = roles.subscription_of(scope)
    if sub is None:
        raise InvalidParameter(f"The scope '{scope}' is not valid.", target="scope")
    parts = [p for p in scope.split("/") if p]
    sub_doc = store.meta.get(f"/subscriptions/{sub}")
    if sub_doc is None or sub_doc.type != identity.SUBSCRIPTION_TYPE:
        raise SubscriptionNotFound(f"The subscription '{sub}' could not be found.")
    if (
        len(parts) >= 4
        and store.meta.get(f"/subscriptions/{sub}/resourceGroups/{parts[3]}") is None
    ):
        raise ResourceGroupNotFound(f"Resource group '{parts[3]}' could not be found.")
    if len(parts) > 4 and store.meta.get(scope) is None:
        raise ResourceNotFound(f"The resource '{scope}' was not found.")
    return sub


def _tenant_of(store: Store, subscription_id: str) -> str:
    doc = store.meta.get(f"/subscriptions/{subscription_id}")
    return str(doc.body["tenantId"]).lower() if doc is not None else ""


# --- role definitions -----------------------------------------------------------------------


def _custom_from_document(doc: Document) -> Role:
    b = doc.body
    return Role(
        guid=b["name"],
        name=b["roleName"],
        description=b.get("description", ""),
        permissions=tuple(
            Permission(
                actions=tuple(p.get("actions", ())),
                not_actions=tuple(p.get("notActions", ())),
                data_actions=tuple(p.get("dataActions", ())),
                not_data_actions=tuple(p.get("notDataActions", ())),
            )
            for p in b.get("permissions", ())
        ),
        type=CUSTOM,
        assignable_scopes=tuple(b.get("assignableScopes", ())),
    )


def _customs(store: Store) -> list[tuple[Document, Role]]:
    return [(d, _custom_from_document(d)) for d in store.meta.list(type=DEFINITION_TYPE)]


def find_role(store: Store, guid: str) -> Role | None:
    """A built-in or custom role by GUID (None if there is none)."""
    low = guid.lower()
    if low in roles.BUILT_IN_BY_GUID:
        return roles.BUILT_IN_BY_GUID[low]
    return next((r for _, r in _customs(store) if r.guid == low), None)


def role_times(store: Store, guid: str) -> dict[str, Any]:
    """createdOn/updatedOn/createdBy/updatedBy of a custom role (empty for built-ins)."""
    for d, r in _customs(store):
        if r.guid == guid.lower():
            return {k: d.body.get(k) for k in ("createdOn", "updatedOn", "createdBy", "updatedBy")}
    return {}


def get_definition(store: Store, guid: str) -> Role:
    role = find_role(store, guid) if _GUID.match(guid) else None
    if role is None:
        raise RoleDefinitionNotFound(f"The role definition '{guid}' could not be found.")
    return role


def list_definitions(
    store: Store, scope: str, *, role_name: str | None = None, below: bool = False
) -> list[Role]:
    """Roles usable at ``scope``: built-ins and customs assignable at or above it (and, with
    ``below`` — ``atScopeAndBelow()`` — customs defined under it)."""
    out: list[Role] = list(roles.BUILT_IN_ROLES)
    for _, r in _customs(store):
        if any(
            roles.covers(a, scope) or (below and roles.covers(scope, a))
            for a in r.assignable_scopes
        ):
            out.append(r)
    if role_name is not None:
        out = [r for r in out if r.name.lower() == role_name.lower()]
    return out


def put_custom_role(
    store: Store, *, scope: str, guid: str, role: CustomRole, caller_oid: str
) -> tuple[Role, bool]:
    """Create or replace a custom role; returns (role, created)."""
    if not _GUID.match(guid):
        raise InvalidRoleDefinitionId(f"The role definition ID '{guid}' is not valid.")
    guid = guid.lower()
    if guid in roles.BUILT_IN_BY_GUID:
        raise CannotModifyBuiltInRole(f"The built-in role '{guid}' cannot be modified.")
    sub = _require_scope(store, scope)
    tenant = _tenant_of(store, sub)
    if not role.assignable_scopes:
        raise InvalidAssignableScope(
            "The role definition must have at least one assignable scope.",
            target="properties.assignableScopes",
        )
    for a in role.assignable_scopes:
        a_sub = roles.subscription_of(a)
        if a_sub is None or _tenant_of(store, a_sub) != tenant:
            raise InvalidAssignableScope(
                f"The assignable scope '{a}' is invalid: a custom role's assignable scopes are "
                "subscriptions, resource groups or resources of the tenant.",
                target="properties.assignableScopes",
            )
    for d, other in _customs(store):
        same_tenant = _tenant_of(store, roles.subscription_of(d.id) or "") == tenant
        if other.guid != guid and same_tenant and other.name.lower() == role.role_name.lower():
            raise RoleDefinitionWithSameNameExists(
                f"A custom role with the same name '{role.role_name}' already exists in this "
                "directory. Use a different name."
            )
    if roles.built_in_by_name(role.role_name) is not None:
        raise RoleDefinitionWithSameNameExists(
            f"A role with the same name '{role.role_name}' already exists. Use a different name."
        )
    key = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    existing = next((d for d, r in _customs(store) if r.guid == guid), None)
    now = utc_now()
    body = {
        "name": guid,
        "roleName": role.role_name,
        "description": role.description,
        "assignableScopes": list(role.assignable_scopes),
        "permissions": [
            {
                "actions": list(p.actions),
                "notActions": list(p.not_actions),
                "dataActions": list(p.data_actions),
                "notDataActions": list(p.not_data_actions),
            }
            for p in role.permissions
        ],
        "createdOn": existing.body["createdOn"] if existing else now,
        "createdBy": existing.body["createdBy"] if existing else caller_oid,
        "updatedOn": now,
        "updatedBy": caller_oid,
    }
    doc = Document(id=existing.id if existing else key, type=DEFINITION_TYPE, body=body)
    stored = store.meta.put(doc, if_match=existing.etag if existing else None)
    return _custom_from_document(stored), existing is None


def delete_custom_role(store: Store, *, guid: str) -> Role | None:
    """Delete a custom role (None if there was none); refused while assignments use it."""
    low = guid.lower()
    if low in roles.BUILT_IN_BY_GUID:
        raise CannotModifyBuiltInRole(f"The built-in role '{guid}' cannot be deleted.")
    found = next(((d, r) for d, r in _customs(store) if r.guid == low), None)
    if found is None:
        return None
    if any(d.body["roleGuid"] == low for d in store.meta.list(type=ASSIGNMENT_TYPE)):
        raise RoleDefinitionHasAssignments(
            "There are existing role assignments referencing role (code: "
            "RoleDefinitionHasAssignments)."
        )
    store.meta.delete(found[0].id)
    return found[1]


# --- role assignments -----------------------------------------------------------------------


def create_assignment(
    store: Store,
    *,
    scope: str,
    name: str,
    role_definition_id: str,
    principal_id: str,
    principal_type: str | None,
    description: str | None,
    caller_oid: str,
) -> tuple[Assignment, bool]:
    """Create an assignment; returns (assignment, created). The same PUT again answers the
    existing one; another principal, role or scope under the same name is refused."""
    name = _require_guid(name)
    guid = role_guid_of(role_definition_id)
    sub = _require_scope(store, scope)
    role = find_role(store, guid)
    if role is None:
        raise RoleDefinitionDoesNotExist(
            f"The specified role definition with ID '{guid.replace('-', '')}' does not exist."
        )
    if not any(roles.covers(a, scope) for a in role.assignable_scopes):
        raise InvalidParameter(
            f"The role '{role.name}' is not available for assignment at the requested scope "
            f"'{scope}'.",
            target="properties.roleDefinitionId",
        )
    ptype = principal_type or "User"
    if ptype not in PRINCIPAL_TYPES:
        raise InvalidParameter(
            f"The principal type '{ptype}' is not valid; use one of {', '.join(PRINCIPAL_TYPES)}.",
            target="properties.principalType",
        )
    tenant = _tenant_of(store, sub)
    if identity.find_principal(store.meta, tenant, principal_id) is None:
        raise PrincipalNotFound(
            f"Principal {principal_id.replace('-', '')} does not exist in the directory "
            f"{tenant}. Check that you have the correct principal ID. If you are creating this "
            "principal and then immediately assigning a role, this error might be related to a "
            "replication delay. In this case, set the role assignment principalType property "
            "to a value, such as ServicePrincipal, User, or Group.  See "
            "https://aka.ms/docs-principaltype"
        )
    pid = principal_id.lower()
    norm = roles.normalize_scope(scope)
    existing = store.meta.get(roles.assignment_key(sub, name))
    if existing is not None:
        a = Assignment.from_document(existing)
        if (roles.normalize_scope(a.scope), a.role_guid, a.principal_id) == (norm, guid, pid):
            return a, False
        raise RoleAssignmentUpdateNotPermitted(
            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."
        )
    for d in store.meta.list(type=ASSIGNMENT_TYPE, prefix=f"/subscriptions/{sub}/"):
        b = d.body
        if (roles.normalize_scope(b["scope"]), b["roleGuid"], b["principalId"]) == (
            norm,
            guid,
            pid,
        ):
            raise RoleAssignmentExists("The role assignment already exists.")
    doc = roles.assignment_document(
        scope=scope,
        name=name,
        role_guid=guid,
        principal_id=pid,
        principal_type=ptype,
        created_by=caller_oid,
        description=description,
    )
    return Assignment.from_document(store.meta.put(doc, if_none_match=True)), True


def _stored(store: Store, scope: str, name: str) -> Document | None:
    sub = roles.subscription_of(scope)
    if sub is None or not _GUID.match(name):
        return None
    doc = store.meta.get(roles.assignment_key(sub, name))
    if doc is None or roles.normalize_scope(doc.body["scope"]) != roles.normalize_scope(scope):
        return None
    return doc


def get_assignment(store: Store, *, scope: str, name: str) -> Assignment:
    doc = _stored(store, scope, name)
    if doc is None:
        raise RoleAssignmentNotFound(f"The role assignment '{name}' is not found.")
    return Assignment.from_document(doc)


def delete_assignment(store: Store, *, scope: str, name: str) -> Assignment | None:
    """Delete by scope and name; None when there was nothing (ARM answers 204)."""
    doc = _stored(store, scope, name)
    if doc is None:
        return None
    store.meta.delete(doc.id)
    return Assignment.from_document(doc)


def list_assignments(
    store: Store, *, scope: str, at_scope: bool = False, principal_id: str | None = None
) -> list[Assignment]:
    """ARM's list-for-scope: at, above and below ``scope``; ``atScope()`` keeps at and
    above; ``principalId eq``/``assignedTo()`` keeps that principal's."""
    sub = roles.subscription_of(scope)
    if sub is None:
        return []
    out = []
    for d in store.meta.list(type=ASSIGNMENT_TYPE, prefix=f"/subscriptions/{sub}/"):
        a = Assignment.from_document(d)
        above = roles.covers(a.scope, scope)
        if at_scope and not above:
            continue
        if not above and not roles.covers(scope, a.scope):
            continue
        if principal_id is not None and a.principal_id != principal_id.lower():
            continue
        out.append(a)
    return out


# --- the access question --------------------------------------------------------------------


def grants(store: Store, *, principal_id: str, subscription_id: str) -> list[Grant]:
    """The principal's assignments in one subscription, each with its role's permissions."""
    pid = principal_id.lower()
    out = []
    for d in store.meta.list(type=ASSIGNMENT_TYPE, prefix=f"/subscriptions/{subscription_id}/"):
        if d.body["principalId"] != pid:
            continue
        role = find_role(store, d.body["roleGuid"])
        if role is not None:
            out.append(Grant(scope=d.body["scope"], permissions=role.permissions))
    return out


def check_access(store: Store, *, principal_id: str, action: str, scope: str) -> bool:
    """May ``principal_id`` perform ``action`` at ``scope``? (deny by default)."""
    sub = roles.subscription_of(scope)
    if sub is None:
        return False
    return roles.allowed(
        grants(store, principal_id=principal_id, subscription_id=sub), action, scope
    )


def authorize(store: Store, *, object_id: str, app_id: str, method: str, path: str) -> None:
    """The pipeline's RBAC step: 403 ``AuthorizationFailed`` unless the principal's roles
    grant the action the request needs at its scope (requests outside a subscription pass)."""
    need = authorization_actions.required(method, path)
    if need is None:
        return
    action, scope = need
    sub = roles.subscription_of(scope) or ""
    if store.meta.get(f"/subscriptions/{sub}") is None:
        return  # an unknown subscription: the route answers 404 SubscriptionNotFound
    if check_access(store, principal_id=object_id, action=action, scope=scope):
        return
    raise AuthorizationFailed(
        f"The client '{app_id or object_id}' with object id '{object_id}' does not have "
        f"authorization to perform action '{action}' over scope '{scope}' or the scope is "
        "invalid. If access was recently granted, please refresh your credentials."
    )


def visible_subscriptions(store: Store, *, tenant_id: str, principal_id: str) -> list[str]:
    """Ids of the subscriptions of ``tenant_id`` where the principal holds any assignment at
    or below the subscription (what ``GET /subscriptions`` lists)."""
    pid = principal_id.lower()
    subs = {
        (roles.subscription_of(d.body["scope"]) or "").lower()
        for d in store.meta.list(type=ASSIGNMENT_TYPE)
        if d.body["principalId"] == pid
    }
    out = []
    for d in store.meta.list(type=identity.SUBSCRIPTION_TYPE):
        sid = str(d.body["subscriptionId"])
        if str(d.body["tenantId"]).lower() == tenant_id.lower() and sid.lower() in subs:
            out.append(sid)
    return out


def new_name() -> str:
    return str(uuid.uuid4())
