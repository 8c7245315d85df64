"""The deployment request as ARM reads it, and the stored shapes (records.py)."""

from __future__ import annotations

from typing import Any

import pytest

from azimg.platform.errors import InvalidRequestContent, NotImplementedFeature
from azimg.platform.resources.deployments import records
from azimg.platform.resources.deployments.errors import InvalidDeploymentName
from azimg.platform.resources.deployments.records import Target

RG = Target("sub", "rg1", "d1")
SUB = Target("sub", None, "d1")
TEMPLATE = {"$schema": "x", "contentVersion": "1.0.0.0", "resources": []}


def body(**props: Any) -> dict[str, Any]:
    return {"properties": {"template": TEMPLATE, **props}}


def test_ids_at_both_scopes() -> None:
    assert (
        RG.id
        == "/subscriptions/sub/resourceGroups/rg1/providers/Microsoft.Resources/deployments/d1"
    )
    assert SUB.id == "/subscriptions/sub/providers/Microsoft.Resources/deployments/d1"
    assert Target("sub", "rg1", "").scope_prefix.endswith("/deployments/")


def test_mode_is_case_insensitive_and_defaults_to_incremental() -> None:
    assert records.parse_request(body(mode="incremental"), RG).mode == "Incremental"  # vm create
    assert records.parse_request(body(), RG).mode == "Incremental"
    assert records.parse_request(body(mode="COMPLETE"), RG).mode == "Complete"


def test_a_whole_parameter_file_is_accepted() -> None:
    params = {"$schema": "p", "contentVersion": "1.0.0.0", "parameters": {"a": {"value": 1}}}
    assert records.parse_request(body(parameters=params), RG).parameters == {"a": {"value": 1}}


@pytest.mark.parametrize(
    ("request_body", "target", "error", "message"),
    [
        ({}, RG, InvalidRequestContent, "'properties' is required"),
        (body(mode="Full"), RG, InvalidRequestContent, "mode 'Full' is not valid"),
        (
            body(mode="Complete"),
            SUB,
            InvalidRequestContent,
            "only valid for deployments at resource-group",
        ),
        (body(), SUB, InvalidRequestContent, "'location' property is required"),
        (body(templateLink={"uri": "https://x"}), RG, NotImplementedFeature, "templateLink"),
        ({"properties": {"template": "text"}}, RG, InvalidRequestContent, "must be a JSON object"),
    ],
)
def test_bad_requests_are_refused_by_name(
    request_body: dict[str, Any], target: Target, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        records.parse_request(request_body, target)


@pytest.mark.parametrize("name", ["", "a" * 65, "bad/name", "bad name"])
def test_deployment_names(name: str) -> None:
    with pytest.raises(InvalidDeploymentName):
        Target("sub", "rg", name).check_name()
    Target("sub", "rg", "vm_deploy_(1).x-y").check_name()  # the characters Azure allows


def test_public_drops_private_keys_and_operations_finish() -> None:
    req = records.parse_request(body(debugSetting={"detailLevel": "none"}), RG)
    doc = records.new_document(RG, req, "Accepted")
    shown = records.public(doc)
    assert shown["type"] == "Microsoft.Resources/deployments" and shown["name"] == "d1"
    assert "location" not in shown  # absent at resource-group scope
    assert not any(k.startswith("_") for k in shown)
    assert shown["properties"]["debugSetting"] == {"detailLevel": "none"}
    assert shown["properties"]["templateHash"].isdigit()
    op = records.new_operation(RG.id, RG.id + "x", "T/t", "x")
    done = records.finish_operation(
        op, state="Failed", status_code="BadRequest", error={"code": "C", "message": "m"}
    )
    props = records.public_operation(done)["properties"]
    assert props["statusMessage"] == {"status": "Failed", "error": {"code": "C", "message": "m"}}
    assert props["duration"].startswith("PT") and props["statusCode"] == "BadRequest"
    assert len(done.body["operationId"]) == 16


def test_duration_is_iso8601() -> None:
    assert (
        records.duration("2026-01-01T00:00:00.0000000Z", "2026-01-01T00:00:22.8356790Z")
        == "PT22.8356790S"
    )
