"""`az deployment group create/show/list/delete` and `az deployment operation group list`,
run by the real az CLI (pinned, in .tools/az) against `azimg serve`.

az sends the template file spliced into the body as JSONC (comments kept, a bare
``template:`` key; reference templates.md §1.3), validates first, then PUTs and polls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api.az import Az, login
from tests.api.conftest import PlatformServer

TEMPLATE = """{
  // a comment az keeps in the body it sends
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "prefix": {"type": "string", "minLength": 2},
    "count": {"type": "int", "defaultValue": 1}
  },
  /* disks are the cheapest real resources */
  "resources": [
    {
      "type": "Microsoft.Compute/disks",
      "apiVersion": "2023-04-02",
      "name": "[concat(parameters('prefix'), '-', copyIndex())]",
      "location": "[resourceGroup().location]",
      "copy": {"name": "disks", "count": "[parameters('count')]"},
      "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1}
    }
  ],
  "outputs": {
    "first": {"type": "string", "value": "[concat(parameters('prefix'), '-0')]"}
  }
}
"""


@pytest.fixture(scope="module")
def az(platform_server: PlatformServer, tmp_path_factory: pytest.TempPathFactory) -> Az:
    return login(platform_server.info, tmp_path_factory.mktemp("az"))


def test_az_deployment_group_lifecycle(az: Az, tmp_path: Path) -> None:
    az.json("group", "create", "-n", "rg-az-deploy", "-l", "eastus")
    template = tmp_path / "disks.json"
    template.write_text(TEMPLATE)

    created: Any = az.json(
        "deployment", "group", "create", "-g", "rg-az-deploy", "-n", "disks",
        "-f", str(template), "-p", "prefix=azd", "count=2",
    )  # fmt: skip
    assert created["properties"]["provisioningState"] == "Succeeded"
    assert created["properties"]["outputs"]["first"]["value"] == "azd-0"

    shown = az.json("deployment", "group", "show", "-g", "rg-az-deploy", "-n", "disks")
    assert shown["properties"]["parameters"]["count"] == {"type": "Int", "value": 2}
    listed = az.json("deployment", "group", "list", "-g", "rg-az-deploy")
    assert [d["name"] for d in listed] == ["disks"]
    ops = az.json("deployment", "operation", "group", "list", "-g", "rg-az-deploy", "-n", "disks")
    names = sorted(o["properties"]["targetResource"]["resourceName"] for o in ops)
    assert names == ["azd-0", "azd-1"]
    assert {o["properties"]["provisioningState"] for o in ops} == {"Succeeded"}
    disk = az.json("disk", "show", "-g", "rg-az-deploy", "-n", "azd-1")
    assert disk["diskSizeGB"] == 1

    bad = az.run(
        "deployment", "group", "create", "-g", "rg-az-deploy", "-n", "bad",
        "-f", str(template), "-p", "prefix=x", check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "InvalidTemplate" in bad.stderr  # az validates first

    az.run("deployment", "group", "delete", "-g", "rg-az-deploy", "-n", "disks")
    assert az.json("deployment", "group", "list", "-g", "rg-az-deploy") == []
    az.run("group", "delete", "-n", "rg-az-deploy", "--yes")
    assert json.loads(az.run("group", "exists", "-n", "rg-az-deploy").stdout) is False
