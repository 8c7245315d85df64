"""Tenants, subscriptions and service principals from the CLI, and Microsoft.Authorization
(role definitions and assignments) through the real azure-mgmt-authorization SDK
(reference/rbac-sharing.md §1, §3)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.api.conftest import ARM_SCOPE, PlatformServer

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


def _azimg(server: PlatformServer, *args: str) -> dict[str, str]:
    """Run an ``azimg`` identity command against the server's data directory: its JSON."""
    cmd = [sys.executable, "-m", "azimg.cli.main", *args]
    cmd += ["--data-dir", str(server.data_dir), "--port", str(server.port), "-o", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _credential(server: PlatformServer, info: dict[str, str]) -> Any:
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(
        info["AZURE_TENANT_ID"],
        info["AZURE_CLIENT_ID"],
        info["AZURE_CLIENT_SECRET"],
        authority=server.base_url,
        disable_instance_discovery=True,
    )


def _token(
    server: PlatformServer, info: dict[str, str], tenant: str | None = None
) -> requests.Response:
    tid = tenant or info["AZURE_TENANT_ID"]
    return requests.post(
        f"{server.base_url}/{tid}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": info["AZURE_CLIENT_ID"],
            "client_secret": info["AZURE_CLIENT_SECRET"],
            "scope": ARM_SCOPE,
        },
        verify=server.ca_bundle,
        timeout=30,
    )


def _get(
    server: PlatformServer, token: str, path: str, version: str = "2022-12-01"
) -> requests.Response:
    sep = "&" if "?" in path else "?"
    return requests.get(
        f"{server.base_url}{path}{sep}api-version={version}",
        headers={"Authorization": f"Bearer {token}"},
        verify=server.ca_bundle,
        timeout=30,
    )


def _auth_client(server: PlatformServer, credential: Any, subscription_id: str) -> Any:
    from azure.mgmt.authorization import AuthorizationManagementClient

    return AuthorizationManagementClient(
        credential, subscription_id, base_url=server.base_url, credential_scopes=[ARM_SCOPE]
    )


@pytest.fixture(scope="module")
def auth(platform_server: PlatformServer, credential: Any) -> Any:
    return _auth_client(platform_server, credential, platform_server.subscription_id)


def _role_id(sub: str, guid: str) -> str:
    return f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def test_default_principal_is_owner_of_the_default_subscription(
    platform_server: PlatformServer, auth: Any
) -> None:
    sub = platform_server.subscription_id
    token = platform_server.token()
    oid = _get(platform_server, token, "/subscriptions").json()
    assert [s["subscriptionId"] for s in oid["value"]] == [sub]
    found = list(auth.role_assignments.list_for_subscription())
    owners = [a for a in found if a.role_definition_id == _role_id(sub, OWNER)]
    assert len(owners) == 1
    assert owners[0].scope == f"/subscriptions/{sub}"
    assert owners[0].principal_type == "ServicePrincipal"
    tenants = _get(platform_server, token, "/tenants").json()["value"]
    assert [t["tenantId"] for t in tenants] == [platform_server.info["AZURE_TENANT_ID"]]


def test_built_in_role_definitions_as_azure_lists_them(
    platform_server: PlatformServer, auth: Any
) -> None:
    sub = platform_server.subscription_id
    scope = f"/subscriptions/{sub}"
    reader = list(auth.role_definitions.list(scope, filter="roleName eq 'Reader'"))
    assert len(reader) == 1
    assert reader[0].id == _role_id(sub, READER)
    assert reader[0].role_type == "BuiltInRole"
    assert reader[0].permissions[0].actions == ["*/read"]
    contributor = auth.role_definitions.get(scope, CONTRIBUTOR)
    assert "Microsoft.Compute/galleries/share/action" in contributor.permissions[0].not_actions
    names = {d.role_name for d in auth.role_definitions.list(scope)}
    assert {"Owner", "Virtual Machine Contributor", "Compute Gallery Sharing Admin"} <= names
    with pytest.raises(HttpResponseError) as err:
        auth.role_definitions.get(scope, str(uuid.uuid4()))
    assert err.value.status_code == 404


def test_a_second_tenant_sees_only_its_own(platform_server: PlatformServer) -> None:
    info = _azimg(platform_server, "tenant", "create", "--name", "contoso")
    assert set(info) == set(platform_server.info)
    assert info["AZURE_TENANT_ID"] != platform_server.info["AZURE_TENANT_ID"]
    token = _token(platform_server, info).json()["access_token"]
    subs = _get(platform_server, token, "/subscriptions").json()["value"]
    assert [(s["subscriptionId"], s["tenantId"]) for s in subs] == [
        (info["AZURE_SUBSCRIPTION_ID"], info["AZURE_TENANT_ID"])
    ]
    tenants = _get(platform_server, token, "/tenants").json()["value"]
    assert [t["tenantId"] for t in tenants] == [info["AZURE_TENANT_ID"]]
    # the default principal does not see it, and neither tenant's token opens the other's
    own = _get(platform_server, platform_server.token(), "/subscriptions").json()["value"]
    assert info["AZURE_SUBSCRIPTION_ID"] not in {s["subscriptionId"] for s in own}
    r = _get(
        platform_server,
        token,
        f"/subscriptions/{platform_server.subscription_id}/resourcegroups",
        "2024-11-01",
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationTokenTenant"
    # a second subscription of that tenant: its administrator owns it and sees both
    more = _azimg(platform_server, "subscription", "create", "--tenant", info["AZURE_TENANT_ID"])
    assert more["AZURE_CLIENT_ID"] == info["AZURE_CLIENT_ID"]
    subs = _get(platform_server, token, "/subscriptions").json()["value"]
    assert {s["subscriptionId"] for s in subs} == {
        info["AZURE_SUBSCRIPTION_ID"],
        more["AZURE_SUBSCRIPTION_ID"],
    }
    # the new tenant's SDK client works on its own subscription
    from azure.mgmt.resource.resources import ResourceManagementClient

    client = ResourceManagementClient(
        _credential(platform_server, more),
        more["AZURE_SUBSCRIPTION_ID"],
        base_url=platform_server.base_url,
        credential_scopes=[ARM_SCOPE],
    )
    client.resource_groups.create_or_update("rg-contoso", {"location": "eastus"})
    assert [g.name for g in client.resource_groups.list()] == ["rg-contoso"]


def test_service_principal_with_a_role_sees_its_subscription(
    platform_server: PlatformServer, auth: Any
) -> None:
    tenant = platform_server.info["AZURE_TENANT_ID"]
    sub = platform_server.subscription_id
    reader = _azimg(
        platform_server, "sp", "create", "--tenant", tenant, "--role", "Reader",
        "--scope", f"/subscriptions/{sub}",
    )  # fmt: skip
    bare = _azimg(platform_server, "sp", "create", "--tenant", tenant)
    assert reader["AZURE_CLIENT_ID"] != bare["AZURE_CLIENT_ID"]
    token = _token(platform_server, reader).json()["access_token"]
    assert [
        s["subscriptionId"] for s in _get(platform_server, token, "/subscriptions").json()["value"]
    ] == [sub]
    bare_token = _token(platform_server, bare).json()["access_token"]
    assert _get(platform_server, bare_token, "/subscriptions").json()["value"] == []
    oid = _oid(token)
    mine = list(auth.role_assignments.list_for_subscription(filter=f"principalId eq '{oid}'"))
    assert [a.role_definition_id for a in mine] == [_role_id(sub, READER)]


def _oid(token: str) -> str:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})["oid"]


def test_multi_tenant_application_signs_in_where_it_has_consent(
    platform_server: PlatformServer,
) -> None:
    a = _azimg(platform_server, "tenant", "create")
    b = _azimg(platform_server, "tenant", "create")
    app = _azimg(
        platform_server, "sp", "create", "--tenant", a["AZURE_TENANT_ID"], "--multi-tenant"
    )
    before = _token(platform_server, app, b["AZURE_TENANT_ID"])
    assert before.status_code in (400, 401)
    assert "AADSTS700016" in before.json()["error_description"]
    consented = _azimg(
        platform_server, "sp", "consent", "--tenant", b["AZURE_TENANT_ID"],
        "--app", app["AZURE_CLIENT_ID"],
    )  # fmt: skip
    assert consented["AZURE_CLIENT_ID"] == app["AZURE_CLIENT_ID"]
    assert consented["AZURE_CLIENT_SECRET"] == app["AZURE_CLIENT_SECRET"]
    in_a = _token(platform_server, app).json()["access_token"]
    in_b = _token(platform_server, app, b["AZURE_TENANT_ID"]).json()["access_token"]
    assert _oid(in_a) != _oid(in_b)  # one appId, one object id per tenant
    # a single-tenant application cannot be consented into another tenant
    single = _azimg(platform_server, "sp", "create", "--tenant", a["AZURE_TENANT_ID"])
    cmd = [
        sys.executable, "-m", "azimg.cli.main", "sp", "consent",
        "--tenant", b["AZURE_TENANT_ID"], "--app", single["AZURE_CLIENT_ID"],
        "--data-dir", str(platform_server.data_dir), "--port", str(platform_server.port),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "single-tenant" in done.stderr


def test_role_assignments_at_group_and_resource_scope(
    platform_server: PlatformServer, auth: Any, compute: Any, resource_group: str
) -> None:
    sub = platform_server.subscription_id
    tenant = platform_server.info["AZURE_TENANT_ID"]
    sp = _azimg(platform_server, "sp", "create", "--tenant", tenant)
    oid = _oid(_token(platform_server, sp).json()["access_token"])
    rg_scope = f"/subscriptions/{sub}/resourceGroups/{resource_group}"
    name = str(uuid.uuid4())
    params = {"role_definition_id": _role_id(sub, CONTRIBUTOR), "principal_id": oid,
              "principal_type": "ServicePrincipal"}  # fmt: skip
    made = auth.role_assignments.create(rg_scope, name, params)
    assert made.id == f"{rg_scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    assert made.scope.lower() == rg_scope.lower()
    assert auth.role_assignments.get(rg_scope, name).principal_id == oid
    # the same (scope, role, principal) under another name
    with pytest.raises(HttpResponseError) as err:
        auth.role_assignments.create(rg_scope, str(uuid.uuid4()), params)
    assert err.value.status_code == 409
    assert err.value.error.code == "RoleAssignmentExists"
    # atScope(): at and above (the default Owner at the subscription), not below
    at = {a.name for a in auth.role_assignments.list_for_scope(rg_scope, filter="atScope()")}
    assert name in at and len(at) >= 2
    at_sub = {
        a.name
        for a in auth.role_assignments.list_for_scope(f"/subscriptions/{sub}", filter="atScope()")
    }
    assert name not in at_sub
    # resource scope
    compute.disks.begin_create_or_update(
        resource_group, "d1",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        },
    ).result()  # fmt: skip
    disk_scope = f"{rg_scope}/providers/Microsoft.Compute/disks/d1"
    on_disk = auth.role_assignments.create(
        disk_scope, str(uuid.uuid4()), {**params, "role_definition_id": _role_id(sub, READER)}
    )
    assert on_disk.scope.lower() == disk_scope.lower()
    listed = {a.name for a in auth.role_assignments.list_for_resource_group(resource_group)}
    assert {name, on_disk.name} <= listed
    # errors Azure gives
    for bad, code in [
        ({**params, "principal_id": str(uuid.uuid4())}, "PrincipalNotFound"),
        (
            {**params, "role_definition_id": _role_id(sub, str(uuid.uuid4()))},
            "RoleDefinitionDoesNotExist",
        ),
    ]:
        with pytest.raises(HttpResponseError) as err:
            auth.role_assignments.create(rg_scope, str(uuid.uuid4()), bad)
        assert err.value.status_code == 400
        assert err.value.error.code == code
    with pytest.raises(HttpResponseError) as err:
        auth.role_assignments.create(rg_scope, "not-a-guid", params)
    assert err.value.status_code == 400
    # delete, then it is gone (and a second delete is 204)
    auth.role_assignments.delete(rg_scope, name)
    with pytest.raises(ResourceNotFoundError):
        auth.role_assignments.get(rg_scope, name)
    assert auth.role_assignments.delete(rg_scope, name) is None


def test_custom_role_with_assignable_scopes(platform_server: PlatformServer, auth: Any) -> None:
    sub = platform_server.subscription_id
    scope = f"/subscriptions/{sub}"
    guid = str(uuid.uuid4())
    name = f"Disk reader {guid[:8]}"
    body = {
        "role_name": name,
        "description": "reads disks",
        "role_type": "CustomRole",
        "permissions": [{"actions": ["Microsoft.Compute/disks/read"], "not_actions": []}],
        "assignable_scopes": [scope],
    }
    made = auth.role_definitions.create_or_update(scope, guid, body)
    assert made.id == _role_id(sub, guid)
    assert made.role_type == "CustomRole"
    found = list(auth.role_definitions.list(scope, filter=f"roleName eq '{name}'"))
    assert [d.name for d in found] == [guid]
    # a second role of that name is refused
    with pytest.raises(HttpResponseError) as err:
        auth.role_definitions.create_or_update(scope, str(uuid.uuid4()), body)
    assert err.value.error.code == "RoleDefinitionWithSameNameExists"
    # assigned, it cannot be deleted; unassigned, it can
    sp = _azimg(
        platform_server, "sp", "create", "--tenant", platform_server.info["AZURE_TENANT_ID"]
    )
    oid = _oid(_token(platform_server, sp).json()["access_token"])
    a = auth.role_assignments.create(
        scope, str(uuid.uuid4()), {"role_definition_id": made.id, "principal_id": oid}
    )
    with pytest.raises(HttpResponseError) as err:
        auth.role_definitions.delete(scope, guid)
    assert err.value.status_code == 409
    auth.role_assignments.delete(scope, a.name)
    auth.role_definitions.delete(scope, guid)
    with pytest.raises(HttpResponseError) as err:
        auth.role_definitions.get(scope, guid)
    assert err.value.status_code == 404


def test_every_route_checks_the_callers_roles(
    platform_server: PlatformServer, auth: Any, compute: Any, resource_group: str
) -> None:
    """Reader reads but cannot write; Contributor writes but cannot assign roles; a principal
    without a role gets 403 AuthorizationFailed naming principal, action and scope."""
    sub = platform_server.subscription_id
    tenant = platform_server.info["AZURE_TENANT_ID"]
    rg_scope = f"/subscriptions/{sub}/resourceGroups/{resource_group}"
    reader = _azimg(platform_server, "sp", "create", "--tenant", tenant, "--role", "Reader",
                    "--scope", rg_scope)  # fmt: skip
    contributor = _azimg(platform_server, "sp", "create", "--tenant", tenant, "--role",
                         "Contributor", "--scope", rg_scope)  # fmt: skip
    nobody = _azimg(platform_server, "sp", "create", "--tenant", tenant)
    disk_body = {
        "location": "eastus",
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
    }
    disks = f"{rg_scope}/providers/Microsoft.Compute/disks"

    def call(info: dict[str, str], method: str, path: str, **kw: Any) -> requests.Response:
        token = _token(platform_server, info).json()["access_token"]
        return requests.request(
            method,
            f"{platform_server.base_url}{path}",
            # each type has its own api-versions (a disk's is not a resource group's)
            params={"api-version": "2024-03-02" if "/disks" in path else "2024-11-01"},
            headers={"Authorization": f"Bearer {token}"},
            verify=platform_server.ca_bundle,
            timeout=30,
            **kw,
        )

    made = call(contributor, "PUT", f"{disks}/d1", json=disk_body)
    assert made.status_code in (200, 202), made.text
    assert call(reader, "GET", disks).status_code == 200
    denied = call(reader, "PUT", f"{disks}/d2", json=disk_body)
    assert denied.status_code == 403
    error = denied.json()["error"]
    assert error["code"] == "AuthorizationFailed"
    assert f"'{reader['AZURE_CLIENT_ID']}'" in error["message"]
    assert "'Microsoft.Compute/disks/write'" in error["message"]
    assert f"over scope '{disks}/d2'" in error["message"]
    out = call(nobody, "GET", f"{disks}/d1")
    assert out.status_code == 403
    assert out.json()["error"]["code"] == "AuthorizationFailed"
    # the group is outside the reader's scope one level up
    assert call(reader, "GET", f"/subscriptions/{sub}/resourcegroups").status_code == 403
    # Contributor cannot assign roles (notActions Microsoft.Authorization/*/Write)
    oid = _oid(_token(platform_server, nobody).json()["access_token"])
    assignment = f"{rg_scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
    body = {"properties": {"roleDefinitionId": _role_id(sub, READER), "principalId": oid}}
    token = _token(platform_server, contributor).json()["access_token"]
    r = requests.put(
        f"{platform_server.base_url}{assignment}",
        params={"api-version": "2022-04-01"},
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        verify=platform_server.ca_bundle,
        timeout=30,
    )
    assert r.status_code == 403
    assert "'Microsoft.Authorization/roleAssignments/write'" in r.json()["error"]["message"]
