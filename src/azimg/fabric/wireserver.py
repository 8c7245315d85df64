"""WireServer and HostGAPlugin documents, and the parsers of what agents post back.

Pure functions only (STYLE.md rule 10): builders return bytes, parsers take bytes and return
frozen dataclasses. ``route_wireserver`` / ``route_hostgaplugin`` map one request to one
response without I/O; the socket server in ``guestserver.py`` only moves bytes. Shapes follow
provisioning.md §2.4 to 2.9: waagent reads goal-state elements by tag name anywhere, cloud-init by
exact path, so we keep the canonical nesting and no namespace. Both
``/machine/?comp=goalstate`` and ``/machine?comp=goalstate`` are accepted.
"""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote
from xml.sax.saxutils import escape

from azimg.errors import CorruptImage

WIRESERVER_IP = "168.63.129.16"
PROTOCOL_VERSION = "2012-11-30"
HOSTGAP_VERSION = "2015-09-01"


@dataclass(frozen=True)
class GoalStateIds:
    """What identifies one VM's goal state; health reports echo these back."""

    container_id: str
    instance_id: str  # "<role instance uuid>._<vm name>"
    role_name: str
    incarnation: int = 1


@dataclass(frozen=True)
class HealthReport:
    incarnation: int
    container_id: str
    instance_id: str
    state: str  # Ready | NotReady
    substatus: str | None = None  # Provisioning | ProvisioningFailed | ...
    description: str | None = None


@dataclass(frozen=True)
class AgentStatus:
    """The guest agent's status blob: what the portal shows as "VM agent status"."""

    version: str
    status: str  # Ready | NotReady
    message: str
    timestamp: str
    computer_name: str | None = None
    os_name: str | None = None
    os_version: str | None = None


@dataclass(frozen=True)
class GuestRequest:
    method: str
    path: str  # without the query
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes = b""


@dataclass(frozen=True)
class GuestResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/xml; charset=utf-8"


def _xml(text: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + text).encode()


def versions_document() -> bytes:
    """waagent requires 2012-11-30 as Preferred or among Supported."""
    return _xml(
        "<Versions><Preferred><Version>2012-11-30</Version></Preferred>"
        "<Supported><Version>2012-11-30</Version></Supported></Versions>"
    )


def config_url(ids: GoalStateIds, kind: str) -> str:
    """``/machine/<container>/<escaped instance>?comp=config&type=<kind>&incarnation=<n>``."""
    instance = quote(ids.instance_id, safe="").replace("-", "%2D").replace("_", "%5F")
    return (
        f"http://{WIRESERVER_IP}:80/machine/{ids.container_id}/{instance}"
        f"?comp=config&type={kind}&incarnation={ids.incarnation}"
    )


def goal_state_document(ids: GoalStateIds) -> bytes:
    """The goal state without Certificates (keys travel through IMDS, provisioning.md §2.7)."""
    return _xml(
        "<GoalState>"
        f"<Version>{PROTOCOL_VERSION}</Version>"
        f"<Incarnation>{ids.incarnation}</Incarnation>"
        "<Machine><ExpectedState>Started</ExpectedState>"
        "<StopRolesDeadlineHint>300000</StopRolesDeadlineHint>"
        "<ExpectHealthReport>FALSE</ExpectHealthReport></Machine>"
        f"<Container><ContainerId>{escape(ids.container_id)}</ContainerId>"
        "<RoleInstanceList><RoleInstance>"
        f"<InstanceId>{escape(ids.instance_id)}</InstanceId>"
        "<State>Started</State><Configuration>"
        f"<HostingEnvironmentConfig>{escape(config_url(ids, 'hostingEnvironmentConfig'))}"
        "</HostingEnvironmentConfig>"
        f"<SharedConfig>{escape(config_url(ids, 'sharedConfig'))}</SharedConfig>"
        f"<ExtensionsConfig>{escape(config_url(ids, 'extensionsConfig'))}</ExtensionsConfig>"
        f"<FullConfig>{escape(config_url(ids, 'fullConfig'))}</FullConfig>"
        f"<ConfigName>{escape(ids.container_id)}.{ids.incarnation}."
        f"{escape(ids.instance_id)}.xml</ConfigName>"
        "</Configuration></RoleInstance></RoleInstanceList></Container></GoalState>"
    )


def hosting_environment_document(ids: GoalStateIds) -> bytes:
    """Must exist and be XML (waagent fetches it unconditionally); only names are read."""
    return _xml(_environment_body("HostingEnvironmentConfig", ids))


def shared_config_document(ids: GoalStateIds) -> bytes:
    """Stored verbatim by waagent (RDMA only); any small well-formed XML will do."""
    return _xml(_environment_body("SharedConfig", ids))


def _environment_body(root: str, ids: GoalStateIds) -> str:
    role = escape(ids.role_name, {'"': "&quot;"})
    return (
        f'<{root} version="1.0.0.0" goalStateIncarnation="{ids.incarnation}">'
        f'<Deployment name="{escape(ids.container_id)}" incarnation="{ids.incarnation}"/>'
        f'<Incarnation number="{ids.incarnation}" instance="{role}"/>'
        f'<Role name="{role}"/></{root}>'
    )


def status_blob_url(ids: GoalStateIds) -> str:
    return f"http://{WIRESERVER_IP}/status-blob/{quote(ids.role_name)}?sv=2018-03-28&sig=azimg"


def extensions_config_document(ids: GoalStateIds) -> bytes:
    """No extensions, only the status upload blob: without it waagent uploads no status."""
    url = escape(status_blob_url(ids))
    return _xml(
        f'<Extensions version="1.0.0.0" goalStateIncarnation="{ids.incarnation}">'
        f'<StatusUploadBlob statusBlobType="BlockBlob">{url}</StatusUploadBlob></Extensions>'
    )


def parse_health_report(raw: bytes) -> HealthReport:
    """Parse ``POST /machine?comp=health`` (cloud-init indents it, waagent does not)."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as err:
        raise CorruptImage(f"health report is not XML: {err}", field="Health") from None

    def text(path: str, el: ET.Element = root) -> str | None:
        found = el.find(path)
        return found.text.strip() if found is not None and found.text else None

    role = root.find("Container/RoleInstanceList/Role")
    incarnation, container = text("GoalStateIncarnation"), text("Container/ContainerId")
    if role is None or incarnation is None or container is None:
        raise CorruptImage("health report lacks its container or role", field="Container")
    state = text("Health/State", role)
    if state is None:
        raise CorruptImage("health report lacks Health/State", field="State")
    try:
        number = int(incarnation)
    except ValueError:
        raise CorruptImage(
            "health report incarnation is not a number", field="Incarnation"
        ) from None
    return HealthReport(
        incarnation=number,
        container_id=container,
        instance_id=text("InstanceId", role) or "",
        state=state,
        substatus=text("Health/Details/SubStatus", role),
        description=text("Health/Details/Description", role),
    )


def build_health_report(report: HealthReport) -> bytes:
    """The document the agents post; used by tests and to record what a guest said."""
    details = ""
    if report.substatus is not None:
        details = (
            f"<Details><SubStatus>{escape(report.substatus)}</SubStatus>"
            f"<Description>{escape(report.description or '')}</Description></Details>"
        )
    return _xml(
        '<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f"<GoalStateIncarnation>{report.incarnation}</GoalStateIncarnation>"
        f"<Container><ContainerId>{escape(report.container_id)}</ContainerId>"
        f"<RoleInstanceList><Role><InstanceId>{escape(report.instance_id)}</InstanceId>"
        f"<Health><State>{escape(report.state)}</State>{details}</Health>"
        "</Role></RoleInstanceList></Container></Health>"
    )


def parse_status_blob(raw: bytes) -> AgentStatus:
    """The status JSON waagent uploads every few seconds (aggregateStatus.guestAgentStatus)."""
    try:
        doc = json.loads(raw)
        agent = doc["aggregateStatus"]["guestAgentStatus"]
        os_info = doc.get("guestOSInfo") or {}
        return AgentStatus(
            version=str(agent.get("version", "")),
            status=str(agent["status"]),
            message=str((agent.get("formattedMessage") or {}).get("message", "")),
            timestamp=str(doc.get("timestampUTC", "")),
            computer_name=os_info.get("computerName"),
            os_name=os_info.get("osName"),
            os_version=os_info.get("osVersion"),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorruptImage(f"status blob is not agent status JSON: {err}", field="status") from None


def parse_hostgap_status(raw: bytes) -> AgentStatus | None:
    """``PUT :32526/status``: an envelope whose base64 ``content`` is the status blob.

    Page-blob uploads come as a create call without content, then padded page writes; only a
    call carrying the whole JSON yields a status (None otherwise).
    """
    try:
        envelope = json.loads(raw)
        content = envelope.get("content")
    except (ValueError, AttributeError) as err:
        raise CorruptImage(f"status upload is not JSON: {err}", field="content") from None
    if not content:
        return None
    return parse_status_blob(base64.b64decode(content).rstrip(b" \0"))


@dataclass(frozen=True)
class WireServerHooks:
    """What the routes tell the platform (all called from request threads)."""

    on_health: Callable[[HealthReport], None]
    on_agent_status: Callable[[AgentStatus], None]


def route_wireserver(req: GuestRequest, ids: GoalStateIds, hooks: WireServerHooks) -> GuestResponse:
    """168.63.129.16:80 — versions, goal state, config documents, health, telemetry, status."""
    comp = req.query.get("comp", "")
    path = req.path.rstrip("/") or "/"
    if req.method == "GET" and path == "/" and comp == "versions":
        return GuestResponse(200, versions_document())
    if req.method == "GET" and path == "/machine" and comp == "goalstate":
        return GuestResponse(200, goal_state_document(ids))
    if req.method == "GET" and path.startswith("/machine/") and comp == "config":
        kind = req.query.get("type", "")
        builders = {
            "hostingEnvironmentConfig": hosting_environment_document,
            "sharedConfig": shared_config_document,
            "extensionsConfig": extensions_config_document,
        }
        if kind in builders:
            return GuestResponse(200, builders[kind](ids))
        return GuestResponse(404)
    if req.method == "POST" and path == "/machine" and comp == "health":
        try:
            report = parse_health_report(req.body)
        except CorruptImage:
            return GuestResponse(400)
        hooks.on_health(report)
        return GuestResponse(200)
    if req.method == "POST" and path == "/machine" and comp in ("telemetrydata", "roleProperties"):
        return GuestResponse(200)
    if req.method == "POST" and path == "/HealthService":
        return GuestResponse(200)
    if req.method == "PUT" and path.startswith("/status-blob/"):
        # Direct blob PUT: waagent's fallback when the HostGAPlugin is unreachable.
        try:
            hooks.on_agent_status(parse_status_blob(req.body.rstrip(b" \0")))
        except CorruptImage:
            return GuestResponse(400)
        return GuestResponse(201)
    return GuestResponse(404)


def route_hostgaplugin(
    req: GuestRequest, ids: GoalStateIds, hooks: WireServerHooks
) -> GuestResponse:
    """168.63.129.16:32526 — versions, health, status; vmSettings 404 = no FastTrack."""
    path = req.path.rstrip("/") or "/"
    if req.method == "GET" and path == "/versions":
        return GuestResponse(200, json.dumps([HOSTGAP_VERSION]).encode(), "application/json")
    if req.method == "GET" and path == "/health":
        return GuestResponse(200)
    if req.method == "PUT" and path == "/status":
        try:
            status = parse_hostgap_status(req.body)
        except CorruptImage:
            return GuestResponse(400)
        if status is not None:
            hooks.on_agent_status(status)
        return GuestResponse(200)
    if req.method == "PUT" and path == "/vmAgentLog":
        return GuestResponse(200)
    return GuestResponse(404)
