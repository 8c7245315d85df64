"""Deployment and deployment-operation documents: the request as ARM reads it, the stored
body, and the shapes ARM returns (reference templates.md §1.3-§1.4).

A deployment is stored at its ARM id with its public ``properties`` and private ``_``-keys
(the template and supplied parameters for exportTemplate and the engine, the job's id, a
cancel request); ``public`` drops the private keys. Each resource the engine touches gets an
operation document at ``{deployment id}/operations/{16 hex}``.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azimg.platform.errors import InvalidRequestContent, NotImplementedFeature
from azimg.platform.resources.deployments.errors import InvalidDeploymentName
from azimg.platform.resources.deployments.functions.strings import murmur64
from azimg.platform.store import Document

TYPE = "Microsoft.Resources/deployments"
OP_TYPE = "Microsoft.Resources/deployments/operations"
ACTIVE = {"Accepted", "Running"}
_NAME = re.compile(r"^[-\w._()]{1,64}$")


@dataclass(frozen=True)
class Target:
    """Where a deployment lives: a resource group, or the subscription (``resource_group``
    None)."""

    subscription_id: str
    resource_group: str | None
    name: str

    @property
    def id(self) -> str:
        if self.resource_group is None:
            return f"/subscriptions/{self.subscription_id}/providers/{TYPE}/{self.name}"
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{TYPE}/{self.name}"
        )

    @property
    def scope_prefix(self) -> str:
        """The id prefix every deployment at this scope shares (for lists)."""
        return self.id[: len(self.id) - len(self.name)]

    def check_name(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidDeploymentName(
                f"The deployment name '{self.name}' is invalid. It can contain only "
                "alphanumerics, underscores, parentheses, hyphens and periods, and be at most "
                "64 characters long.",
                target="deploymentName",
            )


@dataclass(frozen=True)
class Request:
    template: Mapping[str, Any]
    parameters: Mapping[str, Any]
    mode: str  # Incremental | Complete
    location: str | None
    tags: Mapping[str, Any]
    extra: Mapping[str, Any]  # debugSetting, onErrorDeployment: echoed back


def parse_request(body: Mapping[str, Any], target: Target) -> Request:
    props = body.get("properties")
    if not isinstance(props, dict):
        raise InvalidRequestContent(
            "The request content was invalid and could not be deserialized: "
            "'properties' is required.",
            target="properties",
        )
    for link in ("templateLink", "parametersLink"):
        if props.get(link) is not None:
            raise NotImplementedFeature(
                f"'{link}' is not supported: azimg does not fetch templates from URIs or "
                "template specs; send the template (and parameters) inline.",
                target=f"properties.{link}",
            )
    template = props.get("template")
    if not isinstance(template, dict):
        raise InvalidRequestContent(
            "The request content was invalid: 'properties.template' must be a JSON object.",
            target="properties.template",
        )
    parameters = props.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidRequestContent(
            "'properties.parameters' must be an object.", target="properties.parameters"
        )
    if "$schema" in parameters and isinstance(parameters.get("parameters"), dict):
        parameters = parameters["parameters"]  # a whole parameter file was sent
    mode = str(props.get("mode") or "Incremental").lower()
    if mode not in ("incremental", "complete"):
        raise InvalidRequestContent(
            f"The deployment mode '{props.get('mode')}' is not valid: use Incremental or Complete.",
            target="properties.mode",
        )
    if mode == "complete" and target.resource_group is None:
        raise InvalidRequestContent(
            "Complete mode is only valid for deployments at resource-group scope.",
            target="properties.mode",
        )
    location = body.get("location")
    if target.resource_group is None and not location:
        raise InvalidRequestContent(
            "The 'location' property is required for a deployment at subscription scope.",
            target="location",
        )
    extra = {k: props[k] for k in ("debugSetting", "onErrorDeployment") if props.get(k)}
    return Request(
        template=template,
        parameters=parameters,
        mode=mode.capitalize(),
        location=location,
        tags=body.get("tags") or {},
        extra=extra,
    )


def template_hash(template: Mapping[str, Any]) -> str:
    """A stable 64-bit decimal hash of the template, as ARM's ``templateHash`` looks."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return str(murmur64(text.encode()))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def duration(start: str, end: str) -> str:
    seconds = (parse_time(end) - parse_time(start)).total_seconds()
    return f"PT{max(seconds, 0):.7f}S"


def new_document(target: Target, req: Request, state: str) -> Document:
    stamp = now()
    body: dict[str, Any] = {
        "tags": dict(req.tags),
        "properties": {
            "provisioningState": state,
            "correlationId": str(uuid.uuid4()),
            "timestamp": stamp,
            "duration": "PT0S",
            "mode": req.mode,
            "templateHash": template_hash(req.template),
            **req.extra,
        },
        "_template": dict(req.template),
        "_parameters": dict(req.parameters),
        "_start": stamp,
    }
    if req.location:
        body["location"] = req.location
    return Document(id=target.id, type=TYPE, body=body, location=req.location)


def public(doc: Document) -> dict[str, Any]:
    name = doc.id.rsplit("/", 1)[1]
    out: dict[str, Any] = {"id": doc.id, "name": name, "type": TYPE}
    for k, v in doc.body.items():
        if not k.startswith("_"):
            out[k] = v
    return out


def state_of(doc: Document) -> str:
    return str(doc.body.get("properties", {}).get("provisioningState", ""))


def with_properties(doc: Document, **changes: Any) -> Document:
    body = dict(doc.body)
    props = dict(body.get("properties", {}))
    for k, v in changes.items():
        if v is None:
            props.pop(k, None)
        else:
            props[k] = v
    body["properties"] = props
    return Document(id=doc.id, type=doc.type, body=body, etag=doc.etag, location=doc.location)


def with_private(doc: Document, **changes: Any) -> Document:
    body = {**doc.body, **{f"_{k}": v for k, v in changes.items()}}
    return Document(id=doc.id, type=doc.type, body=body, etag=doc.etag, location=doc.location)


# --- operations -------------------------------------------------------------------------


def new_operation(
    deployment_id: str, resource_id: str, rtype: str, name: str, operation: str = "Create"
) -> Document:
    op_id = secrets.token_hex(8).upper()
    stamp = now()
    body = {
        "operationId": op_id,
        "properties": {
            "provisioningOperation": operation,
            "provisioningState": "Running",
            "timestamp": stamp,
            "duration": "PT0S",
            "trackingId": str(uuid.uuid4()),
            "targetResource": {"id": resource_id, "resourceType": rtype, "resourceName": name},
        },
        "_start": stamp,
    }
    return Document(id=f"{deployment_id}/operations/{op_id}", type=OP_TYPE, body=body)


def finish_operation(
    doc: Document, *, state: str, status_code: str, error: Mapping[str, Any] | None = None
) -> Document:
    stamp = now()
    changed = with_properties(
        doc,
        provisioningState=state,
        timestamp=stamp,
        duration=duration(str(doc.body.get("_start", stamp)), stamp),
        statusCode=status_code,
        statusMessage=None if error is None else {"status": state, "error": dict(error)},
    )
    return changed


def public_operation(doc: Document) -> dict[str, Any]:
    out: dict[str, Any] = {"id": doc.id}
    for k, v in doc.body.items():
        if not k.startswith("_"):
            out[k] = v
    return out
