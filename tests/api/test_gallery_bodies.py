"""Wrong types anywhere in a gallery, definition, version or managed-image body: 400 naming the
property, never a 500 (issue 10 listed 77 such bodies that crashed the domain).

Raw requests, because the SDK's own serializer would refuse most of these bodies before
sending them; a hostile or hand-written client does not.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.api.conftest import PlatformServer

API = "api-version=2026-03-03"


def _props(**props: Any) -> dict[str, Any]:
    return {"location": "eastus", "properties": props}


DEFINITION_OK = {
    "osType": "Linux",
    "osState": "Generalized",
    "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
}


def _definition(**props: Any) -> dict[str, Any]:
    return _props(**{**DEFINITION_OK, **props})


DISK = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d"

DEFINITION_CASES: list[tuple[dict[str, Any], str]] = [
    (_definition(recommended={"vCPUs": 5}), "properties.recommended.vCPUs"),
    (
        _definition(recommended={"memory": {"min": "a", "max": 1}}),
        "properties.recommended.memory.min",
    ),
    (_definition(recommended="lots"), "properties.recommended"),
    (
        _definition(identifier={"publisher": 5, "offer": "o", "sku": "s"}),
        "properties.identifier.publisher",
    ),
    (_definition(identifier="p:o:s"), "properties.identifier"),
    (_definition(features=["SecurityType"]), "properties.features[0]"),
    (_definition(features=[{"name": "x", "value": True}]), "properties.features[0].value"),
    (_definition(disallowed={"diskTypes": "Standard_LRS"}), "properties.disallowed.diskTypes"),
    (_definition(purchasePlan={"name": 1}), "properties.purchasePlan.name"),
    (_definition(osType=1), "properties.osType"),
    (_definition(allowUpdateImage="yes"), "properties.allowUpdateImage"),
    (_definition(endOfLifeDate=20300101), "properties.endOfLifeDate"),
    ({**_definition(), "tags": {"k": 1}}, "tags.k"),
    ({**_definition(), "location": 5}, "location"),
]

VERSION_CASES: list[tuple[dict[str, Any], str]] = [
    (
        _props(publishingProfile={"targetRegions": ["eastus"]}),
        "properties.publishingProfile.targetRegions[0]",
    ),
    (
        _props(publishingProfile={"targetRegions": "eastus"}),
        "properties.publishingProfile.targetRegions",
    ),
    (
        _props(publishingProfile={"targetRegions": [{"name": 5}]}),
        "properties.publishingProfile.targetRegions[0].name",
    ),
    (
        _props(
            publishingProfile={"targetRegions": [{"name": "eastus", "regionalReplicaCount": "2"}]}
        ),
        "properties.publishingProfile.targetRegions[0].regionalReplicaCount",
    ),
    (
        _props(publishingProfile={"targetRegions": [{"name": "eastus", "encryption": "yes"}]}),
        "properties.publishingProfile.targetRegions[0].encryption",
    ),
    (_props(publishingProfile={"replicaCount": True}), "properties.publishingProfile.replicaCount"),
    (
        _props(publishingProfile={"excludeFromLatest": "yes"}),
        "properties.publishingProfile.excludeFromLatest",
    ),
    (_props(publishingProfile={"endOfLifeDate": 5}), "properties.publishingProfile.endOfLifeDate"),
    (_props(publishingProfile="eastus"), "properties.publishingProfile"),
    (_props(storageProfile={"source": DISK}), "properties.storageProfile.source"),
    (_props(storageProfile={"source": {"id": 5}}), "properties.storageProfile.source.id"),
    (
        _props(storageProfile={"osDiskImage": {"source": DISK}}),
        "properties.storageProfile.osDiskImage.source",
    ),
    (
        _props(storageProfile={"osDiskImage": {"source": {"id": [DISK]}}}),
        "properties.storageProfile.osDiskImage.source.id",
    ),
    (
        _props(storageProfile={"osDiskImage": {"hostCaching": 1, "source": {"id": DISK}}}),
        "properties.storageProfile.osDiskImage.hostCaching",
    ),
    (
        _props(storageProfile={"dataDiskImages": [{"lun": "0", "source": {"id": DISK}}]}),
        "properties.storageProfile.dataDiskImages[0].lun",
    ),
    (
        _props(storageProfile={"dataDiskImages": {"lun": 0}}),
        "properties.storageProfile.dataDiskImages",
    ),
    (_props(storageProfile=[DISK]), "properties.storageProfile"),
    (
        _props(safetyProfile={"allowDeletionOfReplicatedLocations": "no"}),
        "properties.safetyProfile.allowDeletionOfReplicatedLocations",
    ),
    (_props(safetyProfile="x"), "properties.safetyProfile"),
    (
        _props(securityProfile={"uefiSettings": {"signatureTemplateNames": "x"}}),
        "properties.securityProfile.uefiSettings.signatureTemplateNames",
    ),
    ({**_props(), "tags": ["k"]}, "tags"),
]

GALLERY_CASES: list[tuple[dict[str, Any], str]] = [
    (_props(sharingProfile={"permissions": 1}), "properties.sharingProfile.permissions"),
    (_props(sharingProfile="Private"), "properties.sharingProfile"),
    (
        _props(softDeletePolicy={"isSoftDeleteEnabled": "true"}),
        "properties.softDeletePolicy.isSoftDeleteEnabled",
    ),
    (_props(description=5), "properties.description"),
    ({**_props(), "identity": "SystemAssigned"}, "identity"),
]

IMAGE_CASES: list[tuple[dict[str, Any], str]] = [
    (
        _props(storageProfile={"osDisk": {"managedDisk": DISK}}),
        "properties.storageProfile.osDisk.managedDisk",
    ),
    (
        _props(storageProfile={"osDisk": {"osType": "Linux", "managedDisk": {"id": 5}}}),
        "properties.storageProfile.osDisk.managedDisk.id",
    ),
    (_props(storageProfile={"dataDisks": [5]}), "properties.storageProfile.dataDisks[0]"),
    (_props(storageProfile={"zoneResilient": "no"}), "properties.storageProfile.zoneResilient"),
    (_props(hyperVGeneration=2), "properties.hyperVGeneration"),
    (_props(sourceVirtualMachine="vm"), "properties.sourceVirtualMachine"),
]


@pytest.fixture(scope="module")
def base(platform_server: PlatformServer, resources: Any) -> Iterator[str]:
    """A resource group with a gallery and a definition; yields the provider path prefix."""
    rg = f"bodies{uuid.uuid4().hex[:8]}"
    resources.resource_groups.create_or_update(rg, {"location": "eastus"})
    prefix = (
        f"/subscriptions/{platform_server.subscription_id}/resourceGroups/{rg}"
        "/providers/Microsoft.Compute"
    )
    for path, body in (
        (f"{prefix}/galleries/gal", {"location": "eastus"}),
        (f"{prefix}/galleries/gal/images/def", _definition()),
    ):
        resp = platform_server.arm("PUT", f"{path}?{API}", json=body)
        assert resp.status_code in (200, 201), resp.text
    yield prefix
    resources.resource_groups.begin_delete(rg).result()


def _refused(server: PlatformServer, method: str, path: str, body: dict[str, Any]) -> Any:
    resp = server.arm(method, f"{path}?{API}", json=body)
    assert resp.status_code == 400, (body, resp.status_code, resp.text)
    return resp.json()["error"]


@pytest.mark.parametrize(("body", "target"), DEFINITION_CASES)
def test_wrong_types_in_a_definition(
    platform_server: PlatformServer, base: str, body: dict[str, Any], target: str
) -> None:
    for method in ("PUT", "PATCH"):
        if method == "PATCH" and "location" in target:
            continue
        error = _refused(platform_server, method, f"{base}/galleries/gal/images/def", body)
        assert (error["code"], error["target"]) == ("InvalidRequestContent", target)
        assert target in error["message"]


@pytest.mark.parametrize(("body", "target"), VERSION_CASES)
def test_wrong_types_in_a_version(
    platform_server: PlatformServer, base: str, body: dict[str, Any], target: str
) -> None:
    for method in ("PUT", "PATCH"):
        path = f"{base}/galleries/gal/images/def/versions/1.0.0"
        error = _refused(platform_server, method, path, body)
        assert (error["code"], error["target"]) == ("InvalidRequestContent", target)


@pytest.mark.parametrize(("body", "target"), GALLERY_CASES)
def test_wrong_types_in_a_gallery(
    platform_server: PlatformServer, base: str, body: dict[str, Any], target: str
) -> None:
    for method in ("PUT", "PATCH"):
        error = _refused(platform_server, method, f"{base}/galleries/gal", body)
        assert (error["code"], error["target"]) == ("InvalidRequestContent", target)


@pytest.mark.parametrize(("body", "target"), IMAGE_CASES)
def test_wrong_types_in_a_managed_image(
    platform_server: PlatformServer, base: str, body: dict[str, Any], target: str
) -> None:
    for method in ("PUT", "PATCH"):
        error = _refused(platform_server, method, f"{base}/images/img", body)
        assert (error["code"], error["target"]) == ("InvalidRequestContent", target)


def test_the_connection_survives_a_refused_body(platform_server: PlatformServer, base: str) -> None:
    """After a refused body the same kept-alive connection serves the next request (a 500
    used to drop it without ``Connection: close``, failing the client's next request)."""
    body, _ = VERSION_CASES[0]
    path = f"{base}/galleries/gal/images/def/versions/1.0.0?{API}"
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {platform_server.token()}"
        session.verify = platform_server.ca_bundle
        assert session.put(platform_server.base_url + path, json=body).status_code == 400
        got = session.get(f"{platform_server.base_url}{base}/galleries/gal?{API}")
        assert got.status_code == 200
