# ruff: noqa: E501  (a table of real template expressions, one per row, kept unbroken)
"""Template functions, table-tested against values Azure itself produces.

Each row's comment says where its expected value comes from:
  [docs:<page>]  the example output on Microsoft Learn's ARM template function page
                 (learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-<page>)
  [vec]          published vectors for uniqueString/guid (reference templates.md §3.2: the
                 public uniquestring.sh checked against Bicep, the arm2tf Go port, and a wrapper
                 around Microsoft's Azure.Deployments.Expression)
  [ref]          azimg's reference notes (templates.md §0/§3), from Microsoft's MIT C# port
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.expressions import evaluate_string
from azimg.platform.resources.deployments.functions.base import Context

RG = {
    "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg",
    "name": "my-rg",
    "type": "Microsoft.Resources/resourceGroups",
    "location": "westus",
}
CTX = Context(
    resource_group=RG,
    parameters={
        "dogs": [
            {"name": "Evie", "age": 5},
            {"name": "Casper", "age": 3},
            {"name": "Indy", "age": 2},
            {"name": "Kira", "age": 8},
        ],
        "items": {
            "item002": {"enabled": False, "displayName": "Example item 2", "number": 200},
            "item001": {"enabled": True, "displayName": "Example item 1", "number": 300},
        },
    },
)

CASES: list[tuple[str, Any]] = [
    # uniqueString / guid [vec]
    ("[uniqueString('test')]", "rbgf3xv4ufgzg"),
    ("[uniqueString('hello', 'world')]", "a7wkljktk6wne"),
    ("[uniqueString('abc')]", "cgtzqvhu4i23s"),
    ("[uniqueString(resourceGroup().id)]", "bmg7c6xu4tw46"),
    ("[uniqueString('foo', 'bar', 'baz')]", "xzi4ioaxtmth4"),
    ("[guid('test')]", "d6a5baf1-8b9b-542a-8525-2982f1f98a0c"),
    # string functions [docs:string]
    ("[base64('one, two, three')]", "b25lLCB0d28sIHRocmVl"),
    ("[base64ToString('b25lLCB0d28sIHRocmVl')]", "one, two, three"),
    ("[base64ToJson('eyJvbmUiOiAiYSIsICJ0d28iOiAiYiJ9')]", {"one": "a", "two": "b"}),
    ("[dataUri('Hello')]", "data:text/plain;charset=utf8;base64,SGVsbG8="),
    ("[dataUriToString('data:;base64,SGVsbG8sIFdvcmxkIQ==')]", "Hello, World!"),
    ("[endsWith('abcdef', 'ef')]", True),
    ("[endsWith('abcdef', 'F')]", True),
    ("[endsWith('abcdef', 'e')]", False),
    ("[startsWith('abcdef', 'ab')]", True),
    ("[startsWith('abcdef', 'A')]", True),
    ("[startsWith('abcdef', 'e')]", False),
    ("[indexOf('test', 't')]", 0),
    ("[lastIndexOf('test', 't')]", 3),
    ("[indexOf('abcdef', 'CD')]", 2),
    ("[lastIndexOf('abcdef', 'AB')]", 0),
    ("[indexOf('abcdef', 'z')]", -1),
    ("[padLeft('123', 10, '0')]", "0000000123"),
    ("[replace('123-123-1234', '-', '')]", "1231231234"),
    ("[replace('123-123-1234', '1234', 'xxxx')]", "123-123-xxxx"),
    ("[split('one,two,three', ',')]", ["one", "two", "three"]),
    ("[split('one;two,three', createArray(',', ';'))]", ["one", "two", "three"]),
    ("[substring('one two three', 4, 3)]", "two"),
    ("[toLower('One Two Three')]", "one two three"),
    ("[toUpper('One Two Three')]", "ONE TWO THREE"),
    ("[trim('    one two three   ')]", "one two three"),
    ("[uri('http://contoso.org/firstpath', 'myscript.sh')]", "http://contoso.org/myscript.sh"),
    (
        "[uriComponent('http://contoso.com/resources/nested/azuredeploy.json')]",
        "http%3A%2F%2Fcontoso.com%2Fresources%2Fnested%2Fazuredeploy.json",
    ),
    (
        "[uriComponentToString('http%3A%2F%2Fcontoso.com%2Fresources%2Fnested%2Fazuredeploy.json')]",
        "http://contoso.com/resources/nested/azuredeploy.json",
    ),
    (
        "[format('{0}, {1}. Formatted number: {2:N0}', 'Hello', 'User', 8175133)]",
        "Hello, User. Formatted number: 8,175,133",
    ),
    ("[string(true())]", "True"),  # [ref] §0.9 / [docs:string] "string" example
    (
        "[string(createObject('valueA', 10, 'valueB', 'Example Text'))]",
        '{"valueA":10,"valueB":"Example Text"}',
    ),
    ("[string(createArray('a', 'b', 'c'))]", '["a","b","c"]'),
    ("[string(5)]", "5"),
    ("[join(createArray('one', 'two', 'three'), ',')]", "one,two,three"),  # [docs:array]
    # array and object functions [docs:array] / [docs:object]
    ("[concat(createArray('1-1', '1-2'), createArray('2-1'))]", ["1-1", "1-2", "2-1"]),
    ("[concat('prefix', '-', 'suffix')]", "prefix-suffix"),
    ("[contains('OneTwoThree', 'e')]", True),
    ("[contains('OneTwoThree', 'z')]", False),
    ("[contains(createObject('one', 'a', 'two', 'b'), 'one')]", True),
    ("[contains(createArray('one', 'two', 'three'), 'three')]", True),
    ("[contains(createArray('one', 'two', 'three'), 'four')]", False),
    ("[empty(createArray())]", True),
    ("[empty(createObject())]", True),
    ("[empty('')]", True),
    ("[first(createArray('one', 'two', 'three'))]", "one"),
    ("[first('One Two Three')]", "O"),
    ("[last(createArray('one', 'two', 'three'))]", "three"),
    ("[last('One Two Three')]", "e"),
    ("[length(createArray('a', 'b', 'c'))]", 3),
    ("[length('One Two Three')]", 13),
    (
        "[length(createObject('propA', 'one', 'propB', 'two', 'propC', 'three', 'propD', createObject('propD-1', 'sub', 'propD-2', 'sub')))]",
        4,
    ),
    ("[range(1, 5)]", [1, 2, 3, 4, 5]),
    ("[skip(createArray('one', 'two', 'three'), 2)]", ["three"]),
    ("[skip('one two three', 4)]", "two three"),
    ("[take(createArray('one', 'two', 'three'), 2)]", ["one", "two"]),
    ("[take('one two three', 2)]", "on"),
    ("[min(createArray(0, 3, 2, 5, 4))]", 0),
    ("[max(createArray(0, 3, 2, 5, 4))]", 5),
    ("[min(0, 3, 2, 5, 4)]", 0),
    (
        "[union(createObject('one', 'a', 'two', 'b', 'three', 'c'), createObject('three', 'c', 'four', 'd', 'five', 'e'))]",
        {"one": "a", "two": "b", "three": "c", "four": "d", "five": "e"},
    ),
    (
        "[union(createArray('one', 'two', 'three'), createArray('three', 'four'))]",
        ["one", "two", "three", "four"],
    ),
    (
        "[intersection(createObject('one', 'a', 'two', 'b', 'three', 'c'), createObject('one', 'a', 'two', 'z', 'three', 'c'))]",
        {"one": "a", "three": "c"},
    ),
    (
        "[intersection(createArray('one', 'two', 'three'), createArray('two', 'three'))]",
        ["two", "three"],
    ),
    (
        "[items(parameters('items'))]",
        [
            {
                "key": "item001",
                "value": {"enabled": True, "displayName": "Example item 1", "number": 300},
            },
            {
                "key": "item002",
                "value": {"enabled": False, "displayName": "Example item 2", "number": 200},
            },
        ],
    ),
    (
        "[flatten(createArray(createArray('one', 'two'), createArray('three'), createArray('four', 'five')))]",
        ["one", "two", "three", "four", "five"],
    ),
    ("[objectKeys(createObject('a', 1, 'b', 2))]", ["a", "b"]),
    ('[json(\'{"a": "b"}\')]', {"a": "b"}),
    ("[json('null')]", None),
    ("[createObject('intProp', 1, 'stringProp', 'abc')]", {"intProp": 1, "stringProp": "abc"}),
    ("[tryGet(createObject('a', 1), 'b')]", None),
    (
        "[shallowMerge(createArray(createObject('one', 'a'), createObject('one', 'b', 'two', 'c')))]",
        {"one": "b", "two": "c"},
    ),
    ("[coalesce(null(), null(), 'default')]", "default"),
    # lambda functions [docs:lambda]
    (
        "[filter(parameters('dogs'), lambda('dog', greaterOrEquals(lambdaVariables('dog').age, 5)))]",
        [{"name": "Evie", "age": 5}, {"name": "Kira", "age": 8}],
    ),
    (
        "[map(parameters('dogs'), lambda('dog', lambdaVariables('dog').name))]",
        ["Evie", "Casper", "Indy", "Kira"],
    ),
    (
        "[reduce(map(parameters('dogs'), lambda('d', lambdaVariables('d').age)), 0, lambda('cur', 'next', add(lambdaVariables('cur'), lambdaVariables('next'))))]",
        18,
    ),
    (
        "[map(sort(parameters('dogs'), lambda('a', 'b', less(lambdaVariables('a').age, lambdaVariables('b').age))), lambda('d', lambdaVariables('d').name))]",
        ["Indy", "Casper", "Evie", "Kira"],
    ),
    (
        "[toObject(parameters('dogs'), lambda('d', lambdaVariables('d').name), lambda('d', lambdaVariables('d').age))]",
        {"Evie": 5, "Casper": 3, "Indy": 2, "Kira": 8},
    ),
    # numeric [docs:numeric]; mod's sign [ref]
    ("[add(5, 3)]", 8),
    ("[sub(7, 3)]", 4),
    ("[mul(5, 3)]", 15),
    ("[div(8, 3)]", 2),
    ("[mod(7, 3)]", 1),
    ("[mod(-7, 3)]", -1),
    ("[div(-7, 2)]", -3),
    ("[int('4')]", 4),
    # comparison and logical [docs:comparison] [docs:logical]
    ("[equals(createArray('a', 'b'), createArray('a', 'b'))]", True),
    ("[equals('a', 'A')]", False),
    ("[less(5, 10)]", True),
    ("[less('A', 'a')]", False),
    ("[greater('A', 'a')]", True),
    ("[lessOrEquals('A', 'a')]", False),
    ("[greaterOrEquals('A', 'a')]", True),
    ("[and(true(), false())]", False),
    ("[or(true(), false())]", True),
    ("[not(true())]", False),
    ("[bool('true')]", True),
    ("[bool(0)]", False),
    ("[if(equals('a', 'a'), 'yes', 'no')]", "yes"),
    # date [docs:date]
    ("[dateTimeFromEpoch(1683040573)]", "2023-05-02T15:16:13Z"),
    ("[dateTimeToEpoch('2023-05-02T15:16:13Z')]", 1683040573),
    ("[dateTimeAdd('2020-04-07 14:53:14Z', 'P3Y', 'M/d/yyyy h:mm:ss tt')]", "4/7/2023 2:53:14 PM"),
    (
        "[dateTimeAdd('2020-04-07 14:53:14Z', '-P9D', 'M/d/yyyy h:mm:ss tt')]",
        "3/29/2020 2:53:14 PM",
    ),
    ("[dateTimeAdd('2020-04-07 14:53:14Z', 'PT1H', 'M/d/yyyy h:mm:ss tt')]", "4/7/2020 3:53:14 PM"),
    # CIDR [docs:cidr]
    (
        "[parseCidr('10.144.0.0/20')]",
        {
            "network": "10.144.0.0",
            "netmask": "255.255.240.0",
            "broadcast": "10.144.15.255",
            "firstUsable": "10.144.0.1",
            "lastUsable": "10.144.15.254",
            "cidr": 20,
        },
    ),
    ("[cidrSubnet('10.144.0.0/20', 24, 3)]", "10.144.3.0/24"),
    ("[cidrSubnet('fdad:3236:5555::/48', 52, 1)]", "fdad:3236:5555:1000::/52"),
    ("[cidrHost('10.144.3.0/24', 0)]", "10.144.3.1"),
    # resource IDs [docs:resource]
    (
        "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'v', 's')]",
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
    ),
    (
        "[resourceId('otherResourceGroup', 'Microsoft.Storage/storageAccounts', 'examplestorage')]",
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/otherResourceGroup/providers/Microsoft.Storage/storageAccounts/examplestorage",
    ),
    (
        "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'r1')]",
        "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/r1",
    ),
    (
        "[tenantResourceId('Microsoft.Management/managementGroups', 'mg')]",
        "/providers/Microsoft.Management/managementGroups/mg",
    ),
    (
        "[extensionResourceId('/subscriptions/s/resourceGroups/g', 'Microsoft.Authorization/locks', 'l')]",
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Authorization/locks/l",
    ),
]


@pytest.mark.parametrize(("expression", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_function_matches_azure(expression: str, expected: Any) -> None:
    assert evaluate_string(expression, CTX) == expected


def test_utc_now_formats_in_a_default() -> None:
    # [docs:date] utcNow example: at 2019-03-05T17:53:18Z the three outputs are these.
    ctx = CTX.child(in_default=True, now=datetime(2019, 3, 5, 17, 53, 18, tzinfo=UTC))
    assert evaluate_string("[utcNow()]", ctx) == "20190305T175318Z"
    assert evaluate_string("[utcNow('d')]", ctx) == "03/05/2019"
    assert evaluate_string("[utcNow('M d')]", ctx) == "3 5"
    assert evaluate_string("[utcNow('u')]", ctx) == "2019-03-05 17:53:18Z"


@pytest.mark.parametrize("expression", ["[utcNow()]", "[newGuid()]"])
def test_runtime_values_only_in_defaults(expression: str) -> None:
    with pytest.raises(ExpressionError, match="only valid in the default value"):
        evaluate_string(expression, CTX)


def test_new_guid_in_a_default_is_a_guid() -> None:
    value = evaluate_string("[newGuid()]", CTX.child(in_default=True))
    assert len(value) == 36 and value.count("-") == 4


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[add(9223372036854775807, 1)]", "overflows"),
        ("[div(1, 0)]", "divide by zero"),
        ("[substring('abc', 2, 5)]", "length parameter"),
        ("[range(0, 10001)]", "between 0 and 10000"),
        ("[cidrHost('10.0.0.0/30', 2)]", "out of range"),
        ("[reference('x')]", "not expected at this location"),
        ("[listKeys('x', '2020-01-01')]", "not expected at this location"),
        ("[noSuchFunction()]", "is not valid"),
        ("[first(3)]", "expects its parameter to be of type"),
        ("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'v')]", "requires '2'"),
        ("[if(1, 'a', 'b')]", "expects boolean"),
    ],
)
def test_bad_calls_fail_with_a_reason(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate_string(expression, CTX)


def test_if_evaluates_only_the_branch_it_takes() -> None:
    # [ref] §3.1: if() can guard reference(), which would fail here if evaluated
    assert evaluate_string("[if(false(), reference('x'), 'safe')]", CTX) == "safe"
