"""Microsoft.Authorization as ARM serves it: roleAssignments and roleDefinitions at
subscription, resource-group and resource scope (``{scope}/providers/Microsoft.Authorization/
…``), in the shapes ``az role`` and azure-mgmt-authorization read (reference/rbac-sharing.md
§3.1-3.3). The scope is the path before ``/providers/Microsoft.Authorization``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from azimg.platform.arm.deps import ARM_DEPENDENCIES, CallerDep, JsonBody, StoreDep
from azimg.platform.arm.models import parse
from azimg.platform.arm.paging import page
from azimg.platform.errors import InvalidParameter
from azimg.platform.resources import authorization as authz
from azimg.platform.resources import authorization_roles as roles
from azimg.platform.resources.authorization_roles import Permission, Role
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["authorization"])

_NS = "/providers/microsoft.authorization/"
_SCOPES = (
    "/subscriptions/{subscription_id}",
    "/subscriptions/{subscription_id}/resourcegroups/{resource_group}",
    "/subscriptions/{subscription_id}/resourcegroups/{resource_group}/providers/{resource:path}",
)
_QUOTED = r"'([^']*)'"


class _AssignmentProperties(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    roleDefinitionId: str
    principalId: str
    principalType: str | None = None
    description: str | None = None
    condition: str | None = None
    conditionVersion: str | None = None


class _AssignmentBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    properties: _AssignmentProperties


class _PermissionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    actions: list[str] = Field(default_factory=list)
    notActions: list[str] = Field(default_factory=list)
    dataActions: list[str] = Field(default_factory=list)
    notDataActions: list[str] = Field(default_factory=list)
    condition: str | None = None
    conditionVersion: str | None = None


class _DefinitionProperties(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    roleName: str = Field(min_length=1)
    description: str | None = None
    type: str | None = None
    assignableScopes: list[str] = Field(default_factory=list)
    permissions: list[_PermissionBody] = Field(default_factory=list)


class _DefinitionBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    name: str | None = None
    id: str | None = None
    type: Literal["CustomRole", "Microsoft.Authorization/roleDefinitions"] | None = None
    properties: _DefinitionProperties


# --- scope and rendering --------------------------------------------------------------------


def scope_of(store: Store, path: str) -> str:
    """The ARM scope of a ``…/providers/Microsoft.Authorization/…`` path, in ARM's casing
    (a resource's as stored)."""
    raw = path[: path.lower().find(_NS)]
    parts = [p for p in raw.split("/") if p]
    if not parts:
        return "/"
    if len(parts) == 2:
        return f"/subscriptions/{parts[1]}"
    if len(parts) == 4:
        return f"/subscriptions/{parts[1]}/resourceGroups/{parts[3]}"
    doc = store.meta.get(raw)
    return doc.id if doc is not None else raw


def render_assignment(a: authz.Assignment) -> dict[str, Any]:
    return {
        "id": f"{a.scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{a.name}",
        "name": a.name,
        "type": roles.ASSIGNMENT_TYPE,
        "properties": {
            "roleDefinitionId": authz.definition_id(a.subscription_id, a.role_guid),
            "principalId": a.principal_id,
            "principalType": a.principal_type,
            "scope": a.scope,
            "description": a.description,
            "condition": None,
            "conditionVersion": None,
            "createdOn": a.created_on,
            "updatedOn": a.updated_on,
            "createdBy": a.created_by,
            "updatedBy": a.updated_by,
            "delegatedManagedIdentityResourceId": None,
        },
    }


def _permission_json(p: Permission) -> dict[str, list[str]]:
    return {
        "actions": list(p.actions),
        "notActions": list(p.not_actions),
        "dataActions": list(p.data_actions),
        "notDataActions": list(p.not_data_actions),
    }


def render_definition(store: Store, role: Role, scope: str) -> dict[str, Any]:
    times = authz.role_times(store, role.guid)
    return {
        "id": authz.definition_id(roles.subscription_of(scope), role.guid),
        "name": role.guid,
        "type": roles.DEFINITION_TYPE,
        "properties": {
            "roleName": role.name,
            "type": role.type,
            "description": role.description,
            "assignableScopes": list(role.assignable_scopes),
            "permissions": [_permission_json(p) for p in role.permissions],
            "createdOn": times.get("createdOn"),
            "updatedOn": times.get("updatedOn"),
            "createdBy": times.get("createdBy"),
            "updatedBy": times.get("updatedBy"),
        },
    }


def _filter(request: Request) -> str:
    return (request.query_params.get("$filter") or "").strip()


def _assignment_filter(request: Request) -> tuple[bool, str | None]:
    """(atScope, principal) from ``atScope()``, ``principalId eq 'x'``, ``assignedTo('x')``."""
    text = _filter(request)
    at_scope, principal = False, None
    for clause in re.split(r"\s+and\s+", text, flags=re.IGNORECASE) if text else []:
        c = clause.strip()
        if re.fullmatch(r"atScope\(\)", c, re.IGNORECASE):
            at_scope = True
        elif (m := re.fullmatch(r"principalId\s+eq\s+" + _QUOTED, c, re.IGNORECASE)) or (
            m := re.fullmatch(r"assignedTo\(" + _QUOTED + r"\)", c, re.IGNORECASE)
        ):
            principal = m.group(1)
        else:
            raise InvalidParameter(f"The filter '{text}' is not supported.", target="$filter")
    return at_scope, principal


# --- roleAssignments ------------------------------------------------------------------------


async def list_assignments(request: Request, store: StoreDep) -> dict[str, Any]:
    scope = scope_of(store, request.url.path)
    at_scope, principal = _assignment_filter(request)
    found = authz.list_assignments(store, scope=scope, at_scope=at_scope, principal_id=principal)
    return page(request, [render_assignment(a) for a in found])


async def get_assignment(name: str, request: Request, store: StoreDep) -> dict[str, Any]:
    scope = scope_of(store, request.url.path)
    return render_assignment(authz.get_assignment(store, scope=scope, name=name))


def create_assignment(
    name: str, request: Request, body: JsonBody, store: StoreDep, caller: CallerDep
) -> JSONResponse:
    scope = scope_of(store, request.url.path)
    props = parse(_AssignmentBody, body).properties
    a, created = authz.create_assignment(
        store,
        scope=scope,
        name=name,
        role_definition_id=props.roleDefinitionId,
        principal_id=props.principalId,
        principal_type=props.principalType,
        description=props.description,
        caller_oid=caller.object_id,
    )
    return JSONResponse(render_assignment(a), status_code=201 if created else 200)


def delete_assignment(name: str, request: Request, store: StoreDep) -> Response:
    scope = scope_of(store, request.url.path)
    a = authz.delete_assignment(store, scope=scope, name=name)
    return Response(status_code=204) if a is None else JSONResponse(render_assignment(a))


# --- roleDefinitions ------------------------------------------------------------------------


async def list_definitions(request: Request, store: StoreDep) -> dict[str, Any]:
    scope = scope_of(store, request.url.path)
    text = _filter(request)
    role_name, below = None, False
    for clause in re.split(r"\s+and\s+", text, flags=re.IGNORECASE) if text else []:
        c = clause.strip()
        if m := re.fullmatch(r"roleName\s+eq\s+" + _QUOTED, c, re.IGNORECASE):
            role_name = m.group(1)
        elif re.fullmatch(r"atScopeAndBelow\(\)", c, re.IGNORECASE):
            below = True
        elif not re.fullmatch(r"type\s+eq\s+" + _QUOTED, c, re.IGNORECASE):
            raise InvalidParameter(f"The filter '{text}' is not supported.", target="$filter")
    found = authz.list_definitions(store, scope, role_name=role_name, below=below)
    if m := re.search(r"type\s+eq\s+" + _QUOTED, text, re.IGNORECASE):
        found = [r for r in found if r.type.lower() == m.group(1).lower()]
    return page(request, [render_definition(store, r, scope) for r in found])


async def get_definition(name: str, request: Request, store: StoreDep) -> dict[str, Any]:
    scope = scope_of(store, request.url.path)
    return render_definition(store, authz.get_definition(store, name), scope)


def put_definition(
    name: str, request: Request, body: JsonBody, store: StoreDep, caller: CallerDep
) -> JSONResponse:
    scope = scope_of(store, request.url.path)
    props = parse(_DefinitionBody, body).properties
    spec = authz.CustomRole(
        role_name=props.roleName,
        description=props.description or "",
        assignable_scopes=tuple(props.assignableScopes),
        permissions=tuple(
            Permission(
                actions=tuple(p.actions),
                not_actions=tuple(p.notActions),
                data_actions=tuple(p.dataActions),
                not_data_actions=tuple(p.notDataActions),
            )
            for p in props.permissions
        ),
    )
    role, created = authz.put_custom_role(
        store, scope=scope, guid=name, role=spec, caller_oid=caller.object_id
    )
    return JSONResponse(render_definition(store, role, scope), status_code=201 if created else 200)


def delete_definition(name: str, request: Request, store: StoreDep) -> Response:
    scope = scope_of(store, request.url.path)
    role = authz.delete_custom_role(store, guid=name)
    if role is None:
        return Response(status_code=204)
    return JSONResponse(render_definition(store, role, scope))


for _prefix in _SCOPES:
    _ra = _prefix + _NS + "roleassignments"
    router.add_api_route(_ra, list_assignments, methods=["GET"])
    router.add_api_route(_ra + "/{name}", get_assignment, methods=["GET"])
    router.add_api_route(_ra + "/{name}", create_assignment, methods=["PUT"])
    router.add_api_route(_ra + "/{name}", delete_assignment, methods=["DELETE"])
for _prefix in ("", *_SCOPES):
    _rd = _prefix + _NS + "roledefinitions"
    router.add_api_route(_rd, list_definitions, methods=["GET"])
    router.add_api_route(_rd + "/{name}", get_definition, methods=["GET"])
for _prefix in _SCOPES[:2]:
    _rd = _prefix + _NS + "roledefinitions"
    router.add_api_route(_rd + "/{name}", put_definition, methods=["PUT"])
    router.add_api_route(_rd + "/{name}", delete_definition, methods=["DELETE"])
