# ruff: noqa: E501  (templates written out as JSON, one expression per line)
"""Template deployments through the real azure-mgmt-resource-deployments SDK, against
``azimg serve``: every template resource is PUT through the same provider code as a direct
request (tiny Empty disks here; no guests), operations are recorded per resource, and
failures leave the deployment Failed the way Azure does."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.api.conftest import ARM_SCOPE, PlatformServer

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
DISK_API = "2023-04-02"


@pytest.fixture(scope="module")
def deployments(platform_server: PlatformServer, credential: Any) -> Any:
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient

    return DeploymentsMgmtClient(
        credential,
        platform_server.subscription_id,
        base_url=platform_server.base_url,
        credential_scopes=[ARM_SCOPE],
    )


def disk(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Microsoft.Compute/disks",
        "apiVersion": DISK_API,
        "name": name,
        "location": "[resourceGroup().location]",
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        **extra,
    }


TEMPLATE: dict[str, Any] = {
    "$schema": SCHEMA,
    "contentVersion": "1.0.0.0",
    "parameters": {
        "prefix": {"type": "string", "minLength": 2, "maxLength": 12},
        "count": {"type": "int", "defaultValue": 2, "minValue": 1, "maxValue": 4},
        "sku": {
            "type": "string",
            "defaultValue": "Standard_LRS",
            "allowedValues": ["Standard_LRS", "Premium_LRS"],
        },
    },
    "variables": {
        "suffix": "[uniqueString(resourceGroup().id)]",
        "diskName": "[concat(parameters('prefix'), '-', variables('suffix'))]",
    },
    "resources": [
        {
            **disk("[concat(variables('diskName'), '-', copyIndex())]"),
            "sku": {"name": "[parameters('sku')]"},
            "copy": {"name": "disks", "count": "[parameters('count')]"},
        },
        {
            "type": "Microsoft.Resources/deployments",
            "apiVersion": "2022-09-01",
            "name": "inner",
            "dependsOn": ["disks"],
            "properties": {
                "mode": "Incremental",
                "expressionEvaluationOptions": {"scope": "inner"},
                "parameters": {"first": {"value": "[concat(variables('diskName'), '-0')]"}},
                "template": {
                    "$schema": SCHEMA,
                    "contentVersion": "1.0.0.0",
                    "parameters": {"first": {"type": "string"}},
                    "resources": [],
                    "outputs": {
                        "size": {
                            "type": "int",
                            "value": f"[reference(resourceId('Microsoft.Compute/disks', "
                            f"parameters('first')), '{DISK_API}').diskSizeGB]",
                        }
                    },
                },
            },
        },
    ],
    "outputs": {
        "names": {
            "type": "array",
            "copy": {
                "count": "[parameters('count')]",
                "input": "[concat(variables('diskName'), '-', copyIndex())]",
            },
        },
        "innerSize": {"type": "int", "value": "[reference('inner').outputs.size.value]"},
        "state": {
            "type": "string",
            "value": "[reference(resourceId('Microsoft.Compute/disks', "
            "concat(variables('diskName'), '-1')), '" + DISK_API + "').diskState]",
        },
    },
}


@pytest.fixture
def group(resources: Any, resource_group: str) -> Iterator[str]:
    yield resource_group


def deploy(deployments: Any, group: str, name: str, template: dict[str, Any], **params: Any) -> Any:
    body = {
        "properties": {
            "mode": "Incremental",
            "template": template,
            "parameters": {k: {"value": v} for k, v in params.items()},
        }
    }
    return deployments.deployments.begin_create_or_update(group, name, body).result()


def test_template_deploys_disks_nested_and_outputs(
    deployments: Any, compute: Any, group: str
) -> None:
    result = deploy(deployments, group, "main", TEMPLATE, prefix="tpl")
    props = result.properties
    assert props.provisioning_state == "Succeeded"
    names = props.outputs["names"]["value"]
    assert len(names) == 2 and names[0].startswith("tpl-") and names[1].endswith("-1")
    assert props.outputs["innerSize"] == {"type": "Int", "value": 1}
    assert props.outputs["state"] == {"type": "String", "value": "Unattached"}
    assert props.parameters["count"] == {"type": "Int", "value": 2}
    for name in names:  # the disks are real disks, made by the disk provider
        d = compute.disks.get(group, name)
        assert d.disk_size_gb == 1 and d.sku.name == "Standard_LRS"
    assert {r.id.rsplit("/", 1)[1] for r in props.output_resources} == {*names, "inner"}

    ops = list(deployments.deployment_operations.list(group, "main"))
    targets = {o.properties.target_resource.resource_name: o.properties for o in ops}
    assert set(targets) == {*names, "inner"}
    for p in targets.values():
        assert p.provisioning_state == "Succeeded" and p.provisioning_operation == "Create"
        assert p.timestamp is not None and p.duration.startswith("PT")
    assert targets["inner"].target_resource.resource_type == "Microsoft.Resources/deployments"

    nested = deployments.deployments.get(group, "inner")  # a real deployment of its own
    assert nested.properties.outputs["size"]["value"] == 1
    listed = {d.name for d in deployments.deployments.list_by_resource_group(group)}
    assert listed == {"main", "inner"}
    exported = deployments.deployments.export_template(group, "main")
    assert exported.template["parameters"] == TEMPLATE["parameters"]

    deployments.deployments.begin_delete(group, "main").result()
    with pytest.raises(ResourceNotFoundError):
        deployments.deployments.get(group, "main")
    assert compute.disks.get(group, names[0]).name == names[0]  # resources stay


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "The value for the template parameter 'prefix' is not provided"),
        ({"prefix": "x"}, "greater than or equal to '2'"),
        ({"prefix": "ok", "sku": "Gold_LRS"}, "not part of the allowed value"),
        ({"prefix": "ok", "count": "2"}, "Expected 'Integer'"),
        ({"prefix": "ok", "bogus": 1}, "not present in the original template"),
    ],
)
def test_validate_catches_bad_parameters(
    deployments: Any, group: str, params: dict[str, Any], message: str
) -> None:
    body = {
        "properties": {
            "mode": "Incremental",
            "template": TEMPLATE,
            "parameters": {k: {"value": v} for k, v in params.items()},
        }
    }
    with pytest.raises(HttpResponseError) as invalid:  # 400, raised by azure-core at once
        deployments.deployments.begin_validate(group, "v", body).result()
    assert invalid.value.status_code == 400 and invalid.value.error.code == "InvalidTemplate"
    assert message in invalid.value.error.message
    with pytest.raises(HttpResponseError) as err:  # the PUT refuses it the same way
        deployments.deployments.begin_create_or_update(group, "v", body).result()
    assert err.value.status_code == 400 and err.value.error.code == "InvalidTemplate"


def test_validate_accepts_a_good_template(deployments: Any, group: str) -> None:
    body = {
        "properties": {
            "mode": "Incremental",
            "template": TEMPLATE,
            "parameters": {"prefix": {"value": "ok"}},
        }
    }
    result = deployments.deployments.begin_validate(group, "v", body).result()
    assert result.error is None
    assert result.properties.provisioning_state == "Succeeded"
    assert len(result.properties.validated_resources) == 3
    with pytest.raises(ResourceNotFoundError):  # validation stores nothing
        deployments.deployments.get(group, "v")


def test_template_errors_are_invalid_template(deployments: Any, group: str) -> None:
    cycle = copy.deepcopy(TEMPLATE)
    cycle["resources"] = [disk("a", dependsOn=["b"]), disk("b", dependsOn=["a"])]
    body = {"properties": {"mode": "Incremental", "template": cycle, "parameters": {}}}
    body["properties"]["parameters"] = {"prefix": {"value": "ok"}}
    with pytest.raises(HttpResponseError) as err:
        deployments.deployments.begin_validate(group, "c", body).result()
    assert err.value.error.code == "InvalidTemplate"
    assert "Circular dependency" in err.value.error.message


def test_failing_resource_leaves_the_deployment_failed(
    deployments: Any, compute: Any, group: str
) -> None:
    template = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "resources": [
            disk("good"),
            disk("bad", properties={"creationData": {"createOption": "Empty"}}),  # no size
            disk("after", dependsOn=["bad", "good"]),
        ],
    }
    with pytest.raises(HttpResponseError) as err:
        deploy(deployments, group, "failing", template)
    assert "DeploymentFailed" in str(err.value)

    dep = deployments.deployments.get(group, "failing")
    assert dep.properties.provisioning_state == "Failed"
    assert dep.properties.error.code == "DeploymentFailed"
    (detail,) = dep.properties.error.details
    assert detail.code == "InvalidParameter" and "diskSizeGB" in detail.message  # the disk RP's

    ops = {
        o.properties.target_resource.resource_name: o.properties
        for o in deployments.deployment_operations.list(group, "failing")
    }
    assert set(ops) == {"good", "bad"}  # 'after' never started: no operation
    assert ops["good"].provisioning_state == "Succeeded"
    assert ops["bad"].provisioning_state == "Failed"
    assert ops["bad"].status_code == "BadRequest"
    assert ops["bad"].status_message["error"]["code"] == detail.code
    assert compute.disks.get(group, "good").name == "good"  # kept, as Azure leaves it
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(group, "after")
    failed = [
        d.name
        for d in deployments.deployments.list_by_resource_group(
            group, filter="provisioningState eq 'Failed'"
        )
    ]
    assert failed == ["failing"]


def test_unserved_type_fails_naming_the_type(deployments: Any, group: str) -> None:
    template = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Contoso/widgets",
                "apiVersion": "2024-01-01",
                "name": "w1",
                "location": "eastus",
            }
        ],
    }
    with pytest.raises(HttpResponseError):
        deploy(deployments, group, "unserved", template)
    (op,) = deployments.deployment_operations.list(group, "unserved")
    error = op.properties.status_message["error"]
    assert error["code"] == "InvalidResourceType"
    assert "Microsoft.Contoso/widgets" in error["message"]


def test_cancel_of_a_finished_deployment_is_refused(deployments: Any, group: str) -> None:
    template = {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": []}
    deploy(deployments, group, "done", template)
    with pytest.raises(HttpResponseError) as err:
        deployments.deployments.cancel(group, "done")
    assert err.value.status_code == 409


def test_complete_mode_deletes_what_the_template_leaves_out(
    deployments: Any, compute: Any, group: str
) -> None:
    base = {"$schema": SCHEMA, "contentVersion": "1.0.0.0"}
    deploy(deployments, group, "first", {**base, "resources": [disk("keep"), disk("drop")]})
    body = {
        "properties": {
            "mode": "Complete",
            "template": {**base, "resources": [disk("keep")]},
            "parameters": {},
        }
    }
    deployments.deployments.begin_create_or_update(group, "second", body).result()
    assert compute.disks.get(group, "keep").name == "keep"
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(group, "drop")
    ops = list(deployments.deployment_operations.list(group, "second"))
    assert {
        (o.properties.provisioning_operation, o.properties.target_resource.resource_name)
        for o in ops
    } == {
        ("Create", "keep"),
        ("Delete", "drop"),
    }


def test_subscription_scope_deployment(deployments: Any) -> None:
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [],
        "outputs": {"sub": {"type": "string", "value": "[subscription().subscriptionId]"}},
    }
    body = {"location": "eastus", "properties": {"mode": "Incremental", "template": template}}
    result = deployments.deployments.begin_create_or_update_at_subscription_scope(
        "subdep", body
    ).result()
    assert result.properties.outputs["sub"]["value"] == result.id.split("/")[2]
    assert result.location == "eastus"
    deployments.deployments.begin_delete_at_subscription_scope("subdep").result()


NETWORK_TEMPLATE: dict[str, Any] = {
    "$schema": SCHEMA,
    "contentVersion": "1.0.0.0",
    "parameters": {"count": {"type": "int", "defaultValue": 2}},
    "variables": {
        "vnet": "vnet1",
        "subnetId": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet1', 'default')]",
        "label": "[toLower(format('{0}-{1}', 'vm', uniqueString(resourceGroup().id)))]",
    },
    "resources": [
        {
            "type": "Microsoft.Network/networkSecurityGroups",
            "apiVersion": "2021-05-01",
            "name": "nsg1",
            "location": "[resourceGroup().location]",
            "properties": {
                "securityRules": [
                    {
                        "name": "SSH",
                        "properties": {
                            "priority": 1000,
                            "protocol": "Tcp",
                            "access": "Allow",
                            "direction": "Inbound",
                            "sourceAddressPrefix": "*",
                            "sourcePortRange": "*",
                            "destinationAddressPrefix": "*",
                            "destinationPortRange": "22",
                        },
                    }
                ]
            },
        },
        {
            "type": "Microsoft.Network/virtualNetworks",
            "apiVersion": "2021-05-01",
            "name": "[variables('vnet')]",
            "location": "[resourceGroup().location]",
            "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}},
        },
        {
            "type": "Microsoft.Network/virtualNetworks/subnets",
            "apiVersion": "2021-05-01",
            "name": "[format('{0}/{1}', variables('vnet'), 'default')]",
            "dependsOn": ["[resourceId('Microsoft.Network/virtualNetworks', variables('vnet'))]"],
            "properties": {"addressPrefix": "10.1.0.0/24"},
        },
        {
            "type": "Microsoft.Network/publicIPAddresses",
            "apiVersion": "2022-01-01",
            "name": "[concat('pip', copyIndex())]",
            "location": "[resourceGroup().location]",
            "copy": {"name": "pips", "count": "[parameters('count')]"},
            "sku": {"name": "Standard"},
            "properties": {
                "publicIPAllocationMethod": "Static",
                "dnsSettings": {"domainNameLabel": "[concat(variables('label'), copyIndex())]"},
            },
        },
        {
            "type": "Microsoft.Network/networkInterfaces",
            "apiVersion": "2015-06-15",
            "name": "[concat('nic', copyIndex())]",
            "location": "[resourceGroup().location]",
            "copy": {"name": "nics", "count": "[parameters('count')]"},
            "dependsOn": [
                "Microsoft.Network/networkSecurityGroups/nsg1",
                "[variables('subnetId')]",
                "[concat('Microsoft.Network/publicIpAddresses/pip', copyIndex())]",
            ],
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ipconfig1",
                        "properties": {
                            "privateIPAllocationMethod": "Dynamic",
                            "subnet": {"id": "[variables('subnetId')]"},
                            "publicIPAddress": {
                                "id": "[resourceId('Microsoft.Network/publicIPAddresses', concat('pip', copyIndex()))]"
                            },
                        },
                    }
                ],
                "networkSecurityGroup": {
                    "id": "[resourceId('Microsoft.Network/networkSecurityGroups', 'nsg1')]"
                },
            },
        },
    ],
    "outputs": {
        "ips": {
            "type": "array",
            "copy": {
                "count": "[parameters('count')]",
                "input": "[reference(resourceId('Microsoft.Network/publicIPAddresses', concat('pip', copyIndex())), '2022-01-01').ipAddress]",
            },
        },
        "fqdn": {
            "type": "string",
            "value": "[reference(resourceId('Microsoft.Network/publicIPAddresses', 'pip0'), '2022-01-01').dnsSettings.fqdn]",
        },
        "privateIp": {
            "type": "string",
            "value": "[reference('nic1').ipConfigurations[0].properties.privateIPAddress]",
        },
    },
}


def test_network_template_in_dependency_waves(deployments: Any, group: str) -> None:
    """The shape of reference §6 and of the VM template az builds (NSG, VNet, child subnet,
    public IPs, NICs in a copy loop with dependsOn by type/name in az's casing and by ID),
    through the real network provider."""
    result = deploy(deployments, group, "net", NETWORK_TEMPLATE)
    outputs = result.properties.outputs
    assert len(outputs["ips"]["value"]) == 2 and all(outputs["ips"]["value"])
    assert outputs["fqdn"]["value"].startswith("vm-")
    assert outputs["privateIp"]["value"].startswith("10.1.0.")
    ops = list(deployments.deployment_operations.list(group, "net"))
    assert len(ops) == 7 and all(o.properties.provisioning_state == "Succeeded" for o in ops)
    nic_deps = [
        d for d in result.properties.dependencies if d.resource_type.endswith("networkInterfaces")
    ]
    assert len(nic_deps) == 2 and all(len(d.depends_on) == 3 for d in nic_deps)


def test_symbolic_names_existing_outer_scope_and_full_reference(
    deployments: Any, compute: Any, group: str
) -> None:
    """languageVersion 2.0 (resources keyed by symbolic name, dependsOn by symbol), an
    ``existing`` resource read by reference(..., 'Full'), and a nested deployment in the
    default (outer) scope that sees the parent's parameters and variables."""
    deploy(
        deployments,
        group,
        "pre",
        {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": [disk("old")]},
    )
    template = {
        "$schema": SCHEMA,
        "languageVersion": "2.0",
        "contentVersion": "1.0.0.0",
        "parameters": {"size": {"type": "int", "defaultValue": 2}},
        "variables": {"newName": "[concat('new', parameters('size'))]"},
        "resources": {
            "old": {**disk("old"), "existing": True},
            "fresh": {
                **disk("[variables('newName')]"),
                "dependsOn": ["old"],
                "properties": {
                    "creationData": {"createOption": "Empty"},
                    "diskSizeGB": "[add(reference('old').diskSizeGB, 1)]",
                },
            },
            "outer": {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "outer",
                "dependsOn": ["fresh"],
                "properties": {
                    "mode": "Incremental",
                    "template": {
                        "$schema": SCHEMA,
                        "contentVersion": "1.0.0.0",
                        "resources": [disk("[concat(variables('newName'), '-outer')]")],
                        "outputs": {"seen": {"type": "int", "value": "[parameters('size')]"}},
                    },
                },
            },
        },
        "outputs": {
            "oldSku": {
                "type": "string",
                "value": "[reference('old', '2023-04-02', 'Full').sku.name]",
            },
            "freshSize": {"type": "int", "value": "[reference('fresh').diskSizeGB]"},
            "seen": {"type": "int", "value": "[reference('outer').outputs.seen.value]"},
        },
    }
    result = deploy(deployments, group, "symbolic", template)
    assert result.properties.outputs == {
        "oldSku": {"type": "String", "value": "Standard_LRS"},
        "freshSize": {"type": "Int", "value": 2},
        "seen": {"type": "Int", "value": 2},
    }
    assert compute.disks.get(group, "new2-outer").disk_size_gb == 1
    ops = {
        o.properties.target_resource.resource_name
        for o in deployments.deployment_operations.list(group, "symbolic")
    }
    assert ops == {"new2", "outer"}  # an existing resource is read, not deployed


def test_new_guid_and_utc_now_defaults_are_bound_once(deployments: Any, group: str) -> None:
    template = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {
            "id": {"type": "string", "defaultValue": "[newGuid()]"},
            "stamp": {"type": "string", "defaultValue": "[utcNow('u')]"},
        },
        "resources": [],
        "outputs": {
            "id": {"type": "string", "value": "[parameters('id')]"},
            "stamp": {"type": "string", "value": "[parameters('stamp')]"},
        },
    }
    result = deploy(deployments, group, "runtime", template)
    echoed, out = result.properties.parameters, result.properties.outputs
    assert len(out["id"]["value"]) == 36
    assert out["id"]["value"] == echoed["id"]["value"]  # one value, not one per evaluation
    assert out["stamp"]["value"] == echoed["stamp"]["value"]
    assert out["stamp"]["value"].endswith("Z") and " " in out["stamp"]["value"]


def test_scope_functions(deployments: Any, group: str, platform_server: PlatformServer) -> None:
    template = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "resources": [],
        "outputs": {
            "rg": {"type": "object", "value": "[resourceGroup()]"},
            "sub": {"type": "object", "value": "[subscription()]"},
            "tenant": {"type": "string", "value": "[tenant().tenantId]"},
            "deployment": {"type": "string", "value": "[deployment().name]"},
            "arm": {"type": "string", "value": "[environment().resourceManager]"},
        },
    }
    out = deploy(deployments, group, "scope", template).properties.outputs
    info = platform_server.info
    rg = out["rg"]["value"]
    assert rg["name"] == group and rg["location"] == "eastus"
    assert rg["id"] == f"/subscriptions/{info['AZURE_SUBSCRIPTION_ID']}/resourceGroups/{group}"
    assert out["sub"]["value"]["subscriptionId"] == info["AZURE_SUBSCRIPTION_ID"]
    assert out["sub"]["value"]["tenantId"] == info["AZURE_TENANT_ID"]
    assert out["tenant"]["value"] == info["AZURE_TENANT_ID"]
    assert out["deployment"]["value"] == "scope"
    assert out["arm"]["value"] == info["AZIMG_ARM_ENDPOINT"] + "/"


def test_subscription_deployment_creates_a_group_and_deploys_into_it(
    deployments: Any, resources: Any, compute: Any
) -> None:
    """The usual `az deployment sub create` shape: a resource group, then a nested deployment
    targeted at it (``resourceGroup`` on the nested resource)."""
    name = "rg-subdeploy"
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"rgName": {"type": "string"}},
        "resources": [
            {
                "type": "Microsoft.Resources/resourceGroups",
                "apiVersion": "2022-09-01",
                "name": "[parameters('rgName')]",
                "location": "[deployment().location]",
            },
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "intoGroup",
                "resourceGroup": "[parameters('rgName')]",
                "dependsOn": [
                    "[subscriptionResourceId('Microsoft.Resources/resourceGroups', parameters('rgName'))]"
                ],
                "properties": {
                    "mode": "Incremental",
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "template": {
                        "$schema": SCHEMA,
                        "contentVersion": "1.0.0.0",
                        "resources": [disk("sub-made")],
                        "outputs": {"rg": {"type": "string", "value": "[resourceGroup().name]"}},
                    },
                },
            },
        ],
        "outputs": {
            "inner": {"type": "string", "value": "[reference('intoGroup').outputs.rg.value]"}
        },
    }
    body = {
        "location": "westus",
        "properties": {
            "mode": "Incremental",
            "template": template,
            "parameters": {"rgName": {"value": name}},
        },
    }
    try:
        result = deployments.deployments.begin_create_or_update_at_subscription_scope(
            "makegroup", body
        ).result()
        assert result.properties.outputs["inner"]["value"] == name
        assert resources.resource_groups.get(name).location == "westus"
        assert compute.disks.get(name, "sub-made").location == "westus"
        assert (
            deployments.deployments.get(name, "intoGroup").properties.provisioning_state
            == "Succeeded"
        )
    finally:
        resources.resource_groups.begin_delete(name).result()
        deployments.deployments.begin_delete_at_subscription_scope("makegroup").result()
