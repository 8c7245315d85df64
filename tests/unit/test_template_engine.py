"""The template layer: parameters, variables, expansion, the dependency graph, bodies, outputs.

Pure: every test builds a template dict and a context; nothing is deployed.
"""

from __future__ import annotations

from typing import Any

import pytest

from azimg.platform.resources.deployments import parameters, template
from azimg.platform.resources.deployments.errors import InvalidTemplate
from azimg.platform.resources.deployments.functions.base import Context

SUB = "00000000-0000-0000-0000-000000000000"
RGID = f"/subscriptions/{SUB}/resourceGroups/rg1"
BASE = Context(
    subscription_id=SUB,
    resource_group={"id": RGID, "name": "rg1", "location": "westus"},
)
DISKS = f"{RGID}/providers/Microsoft.Compute/disks"


def make_template(**sections: Any) -> dict[str, Any]:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [],
        **sections,
    }


def disk(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Microsoft.Compute/disks",
        "apiVersion": "2023-04-02",
        "name": name,
        "location": "[resourceGroup().location]",
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        **extra,
    }


def planned(tpl: dict[str, Any], supplied: dict[str, Any] | None = None) -> template.Plan:
    ctx = template.context(tpl, BASE, parameters.bind(tpl, supplied, BASE))
    return template.plan(tpl, ctx)


# --- parameters ---------------------------------------------------------------------------

PARAMS = {
    "name": {"type": "string", "minLength": 3, "maxLength": 8},
    "size": {"type": "int", "defaultValue": 4, "minValue": 1, "maxValue": 32},
    "sku": {
        "type": "string",
        "defaultValue": "Standard_LRS",
        "allowedValues": ["Standard_LRS", "Premium_LRS"],
    },
    "zones": {"type": "array", "defaultValue": [], "allowedValues": ["1", "2", "3"]},
    "secret": {"type": "secureString", "defaultValue": "[concat('p-', parameters('name'))]"},
    "enabled": {"type": "bool", "defaultValue": True},
    "tags": {"type": "object", "defaultValue": {}},
}


def test_supplied_values_and_defaults_bind() -> None:
    tpl = make_template(parameters=PARAMS)
    values = parameters.bind(tpl, {"NAME": {"value": "disk"}, "zones": {"value": ["1", "3"]}}, BASE)
    assert values == {
        "name": "disk",
        "size": 4,
        "sku": "Standard_LRS",
        "zones": ["1", "3"],
        "secret": "p-disk",  # a default may use another parameter
        "enabled": True,
        "tags": {},
    }
    echoed = parameters.echo(tpl, values)
    assert echoed["secret"] == {"type": "SecureString"}  # secure values are never echoed
    assert echoed["size"] == {"type": "Int", "value": 4}


def test_supplied_values_are_literal() -> None:
    tpl = make_template(parameters={"p": {"type": "string"}})
    assert parameters.bind(tpl, {"p": {"value": "[concat('a')]"}}, BASE) == {"p": "[concat('a')]"}


@pytest.mark.parametrize(
    ("supplied", "message"),
    [
        ({}, "The value for the template parameter 'name' is not provided"),
        ({"name": {"value": "ab"}}, "greater than or equal to '3'"),
        ({"name": {"value": "abcdefghi"}}, "less than or equal to '8'"),
        ({"name": {"value": 5}}, "Expected 'String'. Actual 'Integer'"),
        ({"name": {"value": "disk"}, "size": {"value": 0}}, "less than the minimum value of '1'"),
        ({"name": {"value": "disk"}, "size": {"value": "4"}}, "Expected 'Integer'"),
        ({"name": {"value": "disk"}, "sku": {"value": "Gold"}}, "not part of the allowed value"),
        ({"name": {"value": "disk"}, "zones": {"value": ["4"]}}, "not part of the allowed value"),
        ({"name": {"value": "disk"}, "enabled": {"value": "true"}}, "Expected 'Boolean'"),
        (
            {"name": {"value": "disk"}, "extra": {"value": 1}},
            "not present in the original template",
        ),
        ({"name": "disk"}, "must be an object with a 'value'"),
    ],
)
def test_bad_parameters_are_invalid_template(supplied: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTemplate, match=message) as err:
        parameters.bind(make_template(parameters=PARAMS), supplied, BASE)
    assert err.value.code == "InvalidTemplate"
    assert err.value.message.startswith("Deployment template validation failed:")


def test_default_cycle_is_an_error() -> None:
    tpl = make_template(
        parameters={
            "a": {"type": "string", "defaultValue": "[parameters('b')]"},
            "b": {"type": "string", "defaultValue": "[parameters('a')]"},
        }
    )
    with pytest.raises(InvalidTemplate, match="cycle"):
        parameters.bind(tpl, None, BASE)


def test_default_may_not_use_variables_or_reference() -> None:
    for expr in ("[variables('v')]", "[reference('x').a]"):
        tpl = make_template(parameters={"a": {"type": "string", "defaultValue": expr}})
        with pytest.raises(InvalidTemplate, match="not expected at this location"):
            parameters.bind(tpl, None, BASE)


# --- variables ------------------------------------------------------------------------------


def test_variables_are_lazy_with_copy_and_cycles() -> None:
    tpl = make_template(
        parameters={"n": {"type": "int", "defaultValue": 3}},
        variables={
            "prefix": "[concat('d', variables('sep'))]",
            "sep": "-",
            "copy": [
                {
                    "name": "names",
                    "count": "[parameters('n')]",
                    "input": "[concat(variables('prefix'), copyIndex('names'))]",
                }
            ],
            "disks": {
                "copy": [{"name": "list", "count": 2, "input": {"lun": "[copyIndex('list')]"}}]
            },
            "loopA": "[variables('loopB')]",
            "loopB": "[variables('loopA')]",
        },
    )
    ctx = template.context(tpl, BASE, parameters.bind(tpl, None, BASE))
    assert ctx.variables is not None
    assert ctx.variables("names") == ["d-0", "d-1", "d-2"]
    assert ctx.variables("disks") == {"list": [{"lun": 0}, {"lun": 1}]}
    with pytest.raises(Exception, match="cycle"):
        ctx.variables("loopA")


# --- expansion and graph ------------------------------------------------------------------------


def test_copy_loop_serial_batches_and_dependencies() -> None:
    tpl = make_template(
        resources=[
            disk(
                "[concat('d', copyIndex(1))]",
                copy={"name": "disks", "count": 4, "mode": "serial", "batchSize": 2},
            ),
            disk("after", dependsOn=["disks"]),
        ]
    )
    res = planned(tpl).by_key()
    key = f"{DISKS}/d{{}}".lower().format
    assert [r.name for r in planned(tpl).resources] == ["d1", "d2", "d3", "d4", "after"]
    assert res[key(1)].depends_on == set() and res[key(2)].depends_on == set()
    assert res[key(3)].depends_on == {key(1), key(2)}  # batch 2 waits for batch 1
    assert res[f"{DISKS}/after".lower()].depends_on == {key(i) for i in range(1, 5)}


@pytest.mark.parametrize(
    "entry",
    [
        "a",  # name
        "Microsoft.Compute/disks/a",  # type/name
        "microsoft.compute/DISKS/A",  # any case (reference §0.5)
        "[resourceId('Microsoft.Compute/disks', 'a')]",  # resource ID
    ],
)
def test_depends_on_forms(entry: str) -> None:
    tpl = make_template(resources=[disk("a"), disk("b", dependsOn=[entry])])
    assert planned(tpl).by_key()[f"{DISKS}/b".lower()].depends_on == {f"{DISKS}/a".lower()}


def test_unknown_dependency_and_cycles_are_invalid() -> None:
    with pytest.raises(InvalidTemplate, match="'nope' is not defined"):
        planned(make_template(resources=[disk("a", dependsOn=["nope"])]))
    with pytest.raises(InvalidTemplate, match="Circular dependency"):
        planned(make_template(resources=[disk("a", dependsOn=["b"]), disk("b", dependsOn=["a"])]))


def test_ready_gives_parallel_waves() -> None:
    plan = planned(make_template(resources=[disk("a"), disk("b"), disk("c", dependsOn=["a", "b"])]))
    first = plan.ready(set(), set())
    assert [r.name for r in first] == ["a", "b"]  # independent resources start together
    assert plan.ready({r.key for r in first}, {r.key for r in first})[0].name == "c"


def test_children_flatten_and_condition() -> None:
    vnet = {
        "type": "Microsoft.Network/virtualNetworks",
        "apiVersion": "2015-06-15",
        "name": "v",
        "condition": "[equals(1, 1)]",
        "resources": [
            {"type": "subnets", "apiVersion": "2015-06-15", "name": "s", "dependsOn": ["v"]}
        ],
    }
    plan = planned(make_template(resources=[vnet, disk("off", condition="[false()]")]))
    sub = plan.resources[1]
    assert sub.type == "Microsoft.Network/virtualNetworks/subnets" and sub.name == "v/s"
    assert sub.id == f"{RGID}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
    assert plan.resources[2].condition is False


def test_implicit_dependency_from_reference_by_name() -> None:
    tpl = make_template(
        resources=[disk("a"), disk("b", properties={"note": "[reference('a').diskSizeGB]"})]
    )
    assert planned(tpl).by_key()[f"{DISKS}/b".lower()].depends_on == {f"{DISKS}/a".lower()}


def test_symbolic_names_and_existing() -> None:
    tpl = make_template(
        languageVersion="2.0",
        resources={
            "old": {**disk("old"), "existing": True},
            "new": {**disk("new"), "dependsOn": ["old"]},
        },
    )
    plan = planned(tpl).by_key()
    assert plan["old"].existing and plan["new"].depends_on == {"old"}


# --- bodies and outputs ---------------------------------------------------------------------


def runtime(values: dict[str, Any]) -> Context:
    def reference(target: str, api: str | None, full: bool) -> Any:
        return {"id": target, "properties": values} if full else values

    def list_action(action: str, rid: str, api: str, body: Any) -> Any:
        return {"action": action, "id": rid}

    return Context(reference=reference, list_action=list_action)


def test_body_property_copy_nulls_and_reference() -> None:
    tpl = make_template(
        resources=[
            disk(
                "a",
                tags={"t": "[null()]", "u": "x"},
                properties={
                    "diskSizeGB": "[reference('other', '2023-04-02').size]",
                    "copy": [{"name": "luns", "count": 2, "input": {"lun": "[copyIndex('luns')]"}}],
                    "osType": "[json('null')]",
                },
                comments="not sent",
            )
        ]
    )
    res = planned(tpl).resources[0]
    assert template.body(res, runtime({"size": 7})) == {
        "location": "westus",
        "tags": {"u": "x"},
        "properties": {"diskSizeGB": 7, "luns": [{"lun": 0}, {"lun": 1}]},
    }


def test_unknown_resource_keys_are_refused() -> None:
    res = planned(make_template(resources=[disk("a", bogus=1)])).resources[0]
    with pytest.raises(InvalidTemplate, match="'bogus'"):
        template.body(res, runtime({}))


def test_outputs_typed_with_copy_condition_and_secure_left_out() -> None:
    tpl = make_template(
        parameters={"n": {"type": "int", "defaultValue": 2}},
        outputs={
            "names": {
                "type": "array",
                "copy": {"count": "[parameters('n')]", "input": "[concat('d', copyIndex())]"},
            },
            "size": {"type": "int", "value": "[reference('a').size]"},
            "skipped": {"type": "string", "condition": "[false()]", "value": "x"},
            "secret": {"type": "securestring", "value": "s"},
        },
    )
    ctx = template.context(tpl, BASE, parameters.bind(tpl, None, BASE))
    hooks = runtime({"size": 3})
    out = template.outputs(tpl, ctx.child(reference=hooks.reference, list_action=hooks.list_action))
    assert out == {
        "names": {"type": "Array", "value": ["d0", "d1"]},
        "size": {"type": "Int", "value": 3},
    }


def test_output_of_the_wrong_type_is_invalid() -> None:
    tpl = make_template(outputs={"o": {"type": "int", "value": "x"}})
    ctx = template.context(tpl, BASE, {})
    with pytest.raises(InvalidTemplate, match="Expected 'Integer'"):
        template.outputs(tpl, ctx)


def test_nested_deployment_keeps_its_template_unevaluated() -> None:
    nested = {
        "type": "Microsoft.Resources/deployments",
        "apiVersion": "2022-09-01",
        "name": "inner",
        "properties": {
            "mode": "Incremental",
            "expressionEvaluationOptions": {"scope": "inner"},
            "parameters": {"p": {"value": "[concat('x', 'y')]"}},
            "template": {
                "resources": [],
                "outputs": {"o": {"type": "string", "value": "[parameters('p')]"}},
            },
        },
    }
    res = planned(make_template(resources=[nested])).resources[0]
    body = template.body(res, runtime({}))
    assert res.is_deployment
    assert body["properties"]["parameters"] == {"p": {"value": "xy"}}
    assert body["properties"]["template"]["outputs"]["o"]["value"] == "[parameters('p')]"
    assert template.nested_scope(body["properties"]) == "inner"


def test_structure_is_checked() -> None:
    with pytest.raises(InvalidTemplate, match="contentVersion"):
        template.check_structure({"$schema": "x", "resources": []})


def test_subscription_scope_ids_and_group_dependencies() -> None:
    sub_ctx = Context(subscription_id=SUB)
    tpl = make_template(
        resources=[
            {
                "type": "Microsoft.Resources/resourceGroups",
                "apiVersion": "2022-09-01",
                "name": "g",
                "location": "westus",
            },
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "inner",
                "resourceGroup": "g",
                "dependsOn": [
                    "[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'g')]"
                ],
                "properties": {"mode": "Incremental", "template": {}},
            },
        ]
    )
    plan = template.plan(tpl, template.context(tpl, sub_ctx, {}))
    group, inner = plan.resources
    assert group.id == f"/subscriptions/{SUB}/resourceGroups/g"
    assert (
        inner.id
        == f"/subscriptions/{SUB}/resourceGroups/g/providers/Microsoft.Resources/deployments/inner"
    )
    assert inner.depends_on == {group.key}
