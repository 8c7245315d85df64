"""WireServer / HostGAPlugin documents and routes, table-tested (provisioning.md §2)."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlsplit

import pytest

from azimg.errors import CorruptImage
from azimg.fabric.provisioning import Outcome, Provisioning, on_deadline, on_health
from azimg.fabric.wireserver import (
    AgentStatus,
    GoalStateIds,
    GuestRequest,
    HealthReport,
    WireServerHooks,
    build_health_report,
    goal_state_document,
    parse_health_report,
    parse_hostgap_status,
    route_hostgaplugin,
    route_wireserver,
)

IDS = GoalStateIds(
    container_id="c0ffee00-1111-2222-3333-444455556666",
    instance_id="0badf00d-aaaa-bbbb-cccc-ddddeeeeffff._vm-alpha",
    role_name="vm-alpha",
)

# cloud-init's report: indented, with the description trimmed (composed after §2.5).
CLOUD_INIT_READY = b"""<?xml version="1.0" encoding="utf-8"?>
<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <GoalStateIncarnation>1</GoalStateIncarnation>
  <Container>
    <ContainerId>c0ffee00-1111-2222-3333-444455556666</ContainerId>
    <RoleInstanceList>
      <Role>
        <InstanceId>0badf00d-aaaa-bbbb-cccc-ddddeeeeffff._vm-alpha</InstanceId>
        <Health>
          <State>Ready</State>
        </Health>
      </Role>
    </RoleInstanceList>
  </Container>
</Health>
"""

STATUS_JSON = {
    "version": "1.1",
    "timestampUTC": "2026-11-26T14:40:14Z",
    "aggregateStatus": {
        "guestAgentStatus": {
            "version": "2.7.3.0",
            "status": "Ready",
            "formattedMessage": {"lang": "en-US", "message": "Guest Agent is running"},
        },
        "handlerAggregateStatus": [],
    },
    "guestOSInfo": {"computerName": "vm-alpha", "osName": "debian", "osVersion": "12"},
}


class Recorder:
    def __init__(self) -> None:
        self.health: list[HealthReport] = []
        self.status: list[AgentStatus] = []

    def hooks(self) -> WireServerHooks:
        return WireServerHooks(on_health=self.health.append, on_agent_status=self.status.append)


def request(method: str, url: str, body: bytes = b"", **headers: str) -> GuestRequest:
    parts = urlsplit(url)
    return GuestRequest(method, parts.path, dict(parse_qsl(parts.query)), headers, body)


def test_goal_state_has_the_paths_both_agents_read() -> None:
    root = ET.fromstring(goal_state_document(IDS))
    assert root.findtext("Incarnation") == "1"
    assert root.findtext("Container/ContainerId") == IDS.container_id
    role = "Container/RoleInstanceList/RoleInstance"
    assert root.findtext(f"{role}/InstanceId") == IDS.instance_id
    for kind in ("HostingEnvironmentConfig", "SharedConfig", "ExtensionsConfig"):
        url = root.findtext(f"{role}/Configuration/{kind}")
        assert url is not None
        assert url.startswith("http://168.63.129.16:80/machine/c0ffee00-")
    assert root.find(f"{role}/Configuration/Certificates") is None


@pytest.mark.parametrize(
    ("method", "url", "status", "needle"),
    [
        ("GET", "/?comp=versions", 200, b"<Version>2012-11-30</Version>"),
        ("GET", "/machine/?comp=goalstate", 200, b"<GoalState>"),
        ("GET", "/machine?comp=goalstate", 200, b"<GoalState>"),
        ("GET", "/machine/c/i?comp=config&type=hostingEnvironmentConfig&incarnation=1", 200,
         b"<HostingEnvironmentConfig"),
        ("GET", "/machine/c/i?comp=config&type=sharedConfig&incarnation=1", 200, b"<SharedConfig"),
        ("GET", "/machine/c/i?comp=config&type=extensionsConfig&incarnation=1", 200,
         b"<StatusUploadBlob statusBlobType=\"BlockBlob\">http://168.63.129.16/status-blob/"),
        ("GET", "/machine/c/i?comp=config&type=nonsense", 404, b""),
        ("POST", "/machine?comp=telemetrydata", 200, b""),
        ("POST", "/HealthService", 200, b""),
        ("GET", "/metadata/instance?api-version=2018-02-01", 404, b""),
    ],
)  # fmt: skip
def test_wireserver_routes(method: str, url: str, status: int, needle: bytes) -> None:
    recorder = Recorder()
    resp = route_wireserver(request(method, url), IDS, recorder.hooks())
    assert resp.status == status
    assert needle in resp.body
    assert recorder.health == []


def test_every_config_url_in_the_goal_state_is_served() -> None:
    root = ET.fromstring(goal_state_document(IDS))
    config = root.find("Container/RoleInstanceList/RoleInstance/Configuration")
    assert config is not None
    for kind in ("HostingEnvironmentConfig", "SharedConfig", "ExtensionsConfig"):
        url = config.findtext(kind) or ""
        resp = route_wireserver(request("GET", url), IDS, Recorder().hooks())
        assert resp.status == 200, kind
        ET.fromstring(resp.body)  # well-formed: waagent parses it with minidom


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (CLOUD_INIT_READY, HealthReport(1, IDS.container_id, IDS.instance_id, "Ready")),
        (
            build_health_report(
                HealthReport(1, IDS.container_id, IDS.instance_id, "NotReady", "Provisioning",
                             "Starting")
            ),
            HealthReport(1, IDS.container_id, IDS.instance_id, "NotReady", "Provisioning",
                         "Starting"),
        ),
    ],
)  # fmt: skip
def test_health_report_parses(raw: bytes, expected: HealthReport) -> None:
    assert parse_health_report(raw) == expected


@pytest.mark.parametrize(
    "raw", [b"", b"<Health/>", b"<Health><GoalStateIncarnation>x</GoalStateIncarnation></Health>"]
)
def test_broken_health_report_is_corrupt(raw: bytes) -> None:
    with pytest.raises(CorruptImage):
        parse_health_report(raw)


def test_health_post_reaches_the_hook_and_bad_xml_is_400() -> None:
    recorder = Recorder()
    ok = route_wireserver(
        request("POST", "/machine?comp=health", CLOUD_INIT_READY), IDS, recorder.hooks()
    )
    bad = route_wireserver(request("POST", "/machine?comp=health", b"<oops"), IDS, recorder.hooks())
    assert (ok.status, bad.status) == (200, 400)
    assert [r.state for r in recorder.health] == ["Ready"]


def test_hostgaplugin_status_put_yields_agent_status() -> None:
    recorder = Recorder()
    envelope = {
        "requestUri": "http://168.63.129.16/status-blob/vm-alpha?sv=2018-03-28&sig=azimg",
        "headers": [{"headerName": "x-ms-blob-type", "headerValue": "BlockBlob"}],
        "content": base64.b64encode(json.dumps(STATUS_JSON).encode()).decode(),
    }
    resp = route_hostgaplugin(
        request("PUT", "/status", json.dumps(envelope).encode()), IDS, recorder.hooks()
    )
    assert resp.status == 200
    assert recorder.status == [
        AgentStatus("2.7.3.0", "Ready", "Guest Agent is running", "2026-11-26T14:40:14Z",
                    "vm-alpha", "debian", "12")
    ]  # fmt: skip


def test_page_blob_create_call_carries_no_status() -> None:
    assert parse_hostgap_status(json.dumps({"requestUri": "x", "headers": []}).encode()) is None


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [("GET", "/versions", 200), ("GET", "/health", 200), ("GET", "/vmSettings", 404)],
)
def test_hostgaplugin_routes(method: str, url: str, status: int) -> None:
    resp = route_hostgaplugin(request(method, url), IDS, Recorder().hooks())
    assert resp.status == status
    if url == "/versions":
        assert b"2015-09-01" in resp.body


def test_direct_status_blob_put_is_201() -> None:
    recorder = Recorder()
    resp = route_wireserver(
        request("PUT", "/status-blob/vm-alpha", json.dumps(STATUS_JSON).encode()),
        IDS,
        recorder.hooks(),
    )
    assert resp.status == 201
    assert recorder.status[0].status == "Ready"


def report(state: str, substatus: str | None = None, **kw: object) -> HealthReport:
    values: dict[str, object] = {
        "incarnation": 1,
        "container_id": IDS.container_id,
        "instance_id": IDS.instance_id,
        "state": state,
        "substatus": substatus,
        "description": "boom" if substatus == "ProvisioningFailed" else None,
    }
    values.update(kw)
    return HealthReport(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reports", "outcome"),
    [
        ([], Outcome.IN_PROGRESS),
        ([report("Ready")], Outcome.COMPLETE),
        # cloud-init Ready, then waagent's NotReady/Provisioning, then Ready (§2.5, seen in runs)
        ([report("Ready"), report("NotReady", "Provisioning"), report("Ready")], Outcome.COMPLETE),
        ([report("NotReady", "Provisioning")], Outcome.IN_PROGRESS),
        ([report("NotReady", "ProvisioningFailed")], Outcome.CLIENT_ERROR),
        ([report("Ready"), report("NotReady", "ProvisioningFailed")], Outcome.COMPLETE),
        ([report("Ready", container_id="someone-else")], Outcome.IN_PROGRESS),
        ([report("Ready", incarnation=7)], Outcome.IN_PROGRESS),
    ],
)
def test_provisioning_outcome(reports: list[HealthReport], outcome: Outcome) -> None:
    state = Provisioning()
    for r in reports:
        state = on_health(state, r, IDS)
    assert state.outcome is outcome


def test_deadline_times_out_only_what_is_in_progress() -> None:
    timed_out = on_deadline(Provisioning(), 90)
    assert timed_out.outcome is Outcome.TIMED_OUT
    assert "allotted time" in (timed_out.description or "")
    done = on_health(Provisioning(), report("Ready"), IDS)
    assert on_deadline(done, 90) == done
    assert on_health(timed_out, report("Ready"), IDS).outcome is Outcome.TIMED_OUT
