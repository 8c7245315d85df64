"""Property-based fuzz of every route in the platform's own OpenAPI document: no input gets a
5xx, and the connection stays usable afterwards. (501 ``NotImplemented`` is azimg's named
refusal of a feature it does not have, e.g. what-if, not a failure: it is allowed.)

The operations come from ``/openapi.json`` of the running server. Bodies come from the
operation's request-body schema where it has one (typed pydantic bodies), else from a valid
seed body for the resource type; either way Hypothesis then swaps exactly one value for JSON
of another kind (so the rest stays valid and the request reaches the code reading it), or
mutates many places at once (subtrees swapped, keys dropped and added). Path names are
mostly those of resources that exist (so the deep validation runs), else hostile strings.
After each request, the same ``http.client`` connection must answer a plain GET, unless the
server said ``Connection: close``.

Bounded for CI: ``AZIMG_FUZZ_EXAMPLES`` examples per operation (default 12), derandomised
(set ``AZIMG_FUZZ_RANDOM=1`` to explore with fresh seeds).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import PlatformServer

EXAMPLES = int(os.environ.get("AZIMG_FUZZ_EXAMPLES", "12"))
RANDOM = os.environ.get("AZIMG_FUZZ_RANDOM") == "1"
BOUNDS: dict[str, Any] = {
    "deadline": None,  # no timing asserts: the bound is the example count
    "derandomize": not RANDOM,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}
RG = "fuzz-rg"
GALLERY = "fuzzgallery"
IMAGE_DEF = "fuzzimage"
DISK = "fuzzdisk"
# Never fuzz-delete the world the other operations run in.
PROTECTED = {RG, GALLERY, IMAGE_DEF, DISK}


@dataclass
class World:
    server: PlatformServer
    token: str
    ops: list[tuple[str, str, dict[str, Any]]]
    components: dict[str, Any]

    @property
    def sub(self) -> str:
        return self.server.subscription_id

    def rid(self, rtype: str, name: str) -> str:
        return (
            f"/subscriptions/{self.sub}/resourceGroups/{RG}/providers/Microsoft.Compute/"
            f"{rtype}/{name}"
        )


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            out.append((method.upper(), path, op))
    return out


@pytest.fixture(scope="module")
def world(platform_server: PlatformServer) -> Iterator[World]:
    server = platform_server
    doc = requests.get(f"{server.base_url}/openapi.json", verify=server.ca_bundle).json()
    token = server.token()
    w = World(server, token, _operations(doc), doc.get("components", {}).get("schemas", {}))

    def put(path: str, body: dict[str, Any], version: str) -> None:
        r = server.arm("PUT", f"{path}?api-version={version}", json=body)
        assert r.status_code < 300, r.text

    put(f"/subscriptions/{w.sub}/resourceGroups/{RG}", {"location": "eastus"}, "2024-11-01")
    put(
        w.rid("disks", DISK),
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        },
        "2025-01-02",
    )
    put(w.rid("galleries", GALLERY), {"location": "eastus"}, "2026-03-03")
    put(
        w.rid("galleries", GALLERY) + f"/images/{IMAGE_DEF}",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "osState": "Generalized",
                "hyperVGeneration": "V2",
                "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
            },
        },
        "2026-03-03",
    )
    yield w
    server.arm("DELETE", f"/subscriptions/{w.sub}/resourceGroups/{RG}?api-version=2024-11-01")


# --- strategies ----------------------------------------------------------------------------

JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "eastus", "Linux", "V2", "Read", "Write", "Empty", "1.0.0", "0"])
)
JSON_ANY = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
HOSTILE_NAME = st.sampled_from(
    [
        "a",
        "x" * 300,
        "..",
        "%2e%2e",
        "a b",
        "ü",
        "-",
        "_",
        "1",
        "a.b",
        "CON",
        "a%00b",
        "$",
        "\u0251",
    ]
) | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


def _schema_strategy(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """Values that satisfy (the simple parts of) a JSON schema from the OpenAPI document."""
    if depth > 6:
        return JSON_LEAF
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _schema_strategy(components.get(name, {}), components, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return st.one_of([_schema_strategy(s, components, depth + 1) for s in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        fields = {k: _schema_strategy(v, components, depth + 1) for k, v in props.items()}
        return (
            st.fixed_dictionaries({}, optional=fields)
            if fields
            else st.dictionaries(st.text(max_size=8), JSON_LEAF, max_size=3)
        )
    if kind == "array":
        items = _schema_strategy(schema.get("items", {}), components, depth + 1)
        return st.lists(items, max_size=3)
    if kind == "string":
        return st.text(max_size=30)
    if kind == "integer":
        return st.integers(min_value=-(2**64), max_value=2**64)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return JSON_ANY


def _seed(w: World, method: str, path: str) -> dict[str, Any]:
    """A body the operation accepts (or nearly), for operations without a body schema."""
    p = path.lower()
    disk_id = w.rid("disks", DISK)
    missing_image = w.rid("images", "no-such-image")
    if p.endswith("/begingetaccess"):
        return {"access": "Read", "durationInSeconds": 600}
    if p.endswith("/share"):
        return {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [w.sub]}]}
    if "/versions/" in p:
        return {
            "location": "eastus",
            "properties": {
                "publishingProfile": {
                    "targetRegions": [
                        {
                            "name": "eastus",
                            "regionalReplicaCount": 1,
                            "storageAccountType": "Standard_LRS",
                        }
                    ],
                    "replicaCount": 1,
                    "excludeFromLatest": False,
                    "endOfLifeDate": "2030-01-01T00:00:00Z",
                },
                "storageProfile": {"source": {"id": missing_image}},
                "safetyProfile": {"allowDeletionOfReplicatedLocations": True},
            },
        }
    if "/galleries/" in p and "/images/" in p:
        return {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "osState": "Generalized",
                "hyperVGeneration": "V2",
                "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
                "recommended": {"vCPUs": {"min": 1, "max": 4}, "memory": {"min": 1, "max": 8}},
                "features": [{"name": "SecurityType", "value": "TrustedLaunch"}],
                "architecture": "x64",
            },
        }
    if "/galleries/" in p:
        return {"location": "eastus", "properties": {"description": "fuzz"}, "tags": {"a": "b"}}
    if "/virtualmachines/" in p:
        return {
            "location": "eastus",
            "properties": {
                "hardwareProfile": {"vmSize": "Standard_B1s"},
                "storageProfile": {
                    "imageReference": {"id": missing_image},
                    "osDisk": {"createOption": "FromImage", "diskSizeGB": 30},
                },
                "osProfile": {
                    "computerName": "vm",
                    "adminUsername": "azureuser",
                    "customData": "I2Nsb3VkLWNvbmZpZw==",
                    "linuxConfiguration": {
                        "disablePasswordAuthentication": True,
                        "ssh": {
                            "publicKeys": [
                                {
                                    "path": "/home/azureuser/.ssh/authorized_keys",
                                    "keyData": "ssh-rsa AAAA",
                                }
                            ]
                        },
                    },
                },
                "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
            },
        }
    if "/images/" in p:
        return {
            "location": "eastus",
            "properties": {
                "hyperVGeneration": "V2",
                "storageProfile": {
                    "osDisk": {
                        "osType": "Linux",
                        "osState": "Generalized",
                        "managedDisk": {"id": w.rid("disks", "no-such-disk")},
                    },
                },
            },
        }
    if "/snapshots/" in p:
        return {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk_id}},
        }
    if "/disks/" in p:
        return {
            "location": "eastus",
            "sku": {"name": "Standard_LRS"},
            "properties": {
                "creationData": {"createOption": "Empty"},
                "diskSizeGB": 1,
                "osType": "Linux",
                "hyperVGeneration": "V2",
            },
        }
    return {"location": "eastus", "tags": {"a": "b"}, "properties": {}}


@st.composite
def _mutated(draw: Any, seed: Any, depth: int = 0) -> Any:
    """``seed`` with some subtrees replaced by other JSON, keys dropped or added."""
    if depth > 6 or draw(st.integers(0, 9)) == 0:
        return draw(JSON_ANY) if draw(st.booleans()) else seed
    if isinstance(seed, dict):
        out = {}
        for k, v in seed.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # dropped
            out[k] = draw(_mutated(v, depth + 1)) if choice > 2 else draw(JSON_ANY)
        if draw(st.integers(0, 5)) == 0:
            out[draw(st.text(max_size=10))] = draw(JSON_ANY)
        return out
    if isinstance(seed, list):
        return [draw(_mutated(v, depth + 1)) for v in seed] + draw(st.lists(JSON_ANY, max_size=2))
    return draw(JSON_ANY) if draw(st.integers(0, 3)) == 0 else seed


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (dict keys and list indexes), outermost first."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any, drop: bool) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        if drop and not rest:
            out.pop(head, None)
        else:
            out[head] = _replace(value[head], rest, new, drop)
        return out
    out_list = list(value)
    out_list[head] = _replace(value[head], rest, new, drop)
    return out_list


@st.composite
def _one_wrong(draw: Any, seed: Any) -> Any:
    """``seed`` with exactly one value swapped for JSON of another kind (or one key dropped):
    everything else stays valid, so the request reaches the code that reads that value."""
    places = _paths(seed)
    if not places:
        return draw(JSON_ANY)
    path = draw(st.sampled_from(places))
    return _replace(seed, path, draw(JSON_ANY), drop=draw(st.integers(0, 5)) == 0)


def _name_for(w: World, param: str, method: str) -> Any:
    existing = {
        "subscription_id": [w.sub],
        "resource_group": [RG],
        "gallery": [GALLERY],
        "image": [IMAGE_DEF],
        "name": [DISK, GALLERY, IMAGE_DEF, RG, "fuzz-new", "1.0.0"],
        "location": ["eastus", "westus"],
        "namespace": ["Microsoft.Compute", "microsoft.resources"],
        "tenant": [w.server.info["AZURE_TENANT_ID"], "common"],
        "op_id": [str(uuid.uuid4())],
    }.get(param, ["x"])
    if method == "DELETE":
        existing = [n for n in existing if n not in PROTECTED] or ["fuzz-gone"]
    # Mostly names that exist, so the request gets past routing to the body's validation.
    return _often(st.sampled_from(existing), HOSTILE_NAME)


def _often(usual: Any, rare: Any) -> Any:
    """``usual`` nine times in ten, else ``rare``."""
    return st.integers(0, 9).flatmap(lambda i: rare if i == 0 else usual)


# --- the property --------------------------------------------------------------------------


class Conn:
    """One keep-alive HTTPS connection, as a client library would hold it."""

    def __init__(self, server: PlatformServer) -> None:
        self.host = f"127.0.0.1:{server.port}"
        self.ctx = ssl.create_default_context(cafile=server.ca_bundle)
        self.conn = http.client.HTTPSConnection(self.host, context=self.ctx, timeout=120)

    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, bool]:
        self.conn.request(method, url, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        closing = r.getheader("Connection", "").lower() == "close"
        if closing:
            self.conn.close()  # the server said so: a new connection is the right thing
        return r.status, data, closing


def _fill_path(template: str, values: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: quote(values[m.group(1)], safe=""), template)


def _all_operations() -> list[tuple[str, str]]:
    """The (method, path) pairs, read from the app's OpenAPI document without a server."""
    import tempfile
    from pathlib import Path

    from azimg.platform.arm.app import create_app
    from azimg.platform.settings import Settings
    from azimg.platform.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(data_dir=Path(tmp), regions=("eastus",))
        store = open_store(s)
        try:
            doc = create_app(s, store).openapi()
        finally:
            store.close()
    return [(m, p) for m, p, _ in _operations(doc)]


OPERATIONS = _all_operations()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_gets_a_5xx_and_the_connection_survives(
    world: World, method: str, path: str
) -> None:
    op = next(o for m, p, o in world.ops if m == method and p == path)
    params = re.findall(r"{(\w+)}", path)
    body_schema = (
        op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    takes_body = method in ("PUT", "PATCH", "POST")
    if body_schema is not None:
        base = _schema_strategy(body_schema, world.components)
        bodies = base.flatmap(lambda b: _one_wrong(b)) | base.flatmap(lambda b: _mutated(b))
    elif path.endswith("/token"):
        bodies = st.dictionaries(
            st.sampled_from(["grant_type", "client_id", "client_secret", "scope", "x"]),
            st.text(max_size=40),
        )
    else:
        seed = _seed(world, method, path)
        bodies = _one_wrong(seed) | _one_wrong(seed) | _mutated(seed) | st.just(seed) | JSON_ANY
    conn = Conn(world.server)
    seen: list[int] = []

    @settings(max_examples=EXAMPLES, **BOUNDS)
    @given(data=st.data())
    def check(data: Any) -> None:
        values = {p: data.draw(_name_for(world, p, method), label=p) for p in params}
        query: dict[str, str] = {}
        version = data.draw(
            _often(
                st.sampled_from(["2025-01-02", "2026-03-03", "2024-11-01"]),
                st.sampled_from(["bad", None, "2026-03-03-preview"]),
            ),
            label="api-version",
        )
        if version is not None:
            query["api-version"] = version
        url = _fill_path(path, values) + ("?" + urlencode(query) if query else "")
        headers = {"Authorization": f"Bearer {world.token}"}
        raw: bytes | None = None
        if takes_body:
            body = data.draw(bodies, label="body")
            if path.endswith("/token"):
                raw = urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                raw = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        status, answer, _ = conn.send(method, url, raw, headers)
        seen.append(status)
        what = f"{method} {url} {raw!r:.500} → {status} {answer[:500]!r}"
        if status == 501:  # a feature azimg refuses by name (never retried by the SDK)
            assert json.loads(answer)["error"]["code"] == "NotImplemented", what
        else:
            assert status < 500, what
        # The same connection (or a fresh one, if the server said close) still works.
        ok, _, _ = conn.send("GET", "/metadata/endpoints?api-version=2022-09-01", None, {})
        assert ok == 200

    started = time.monotonic()
    check()
    counts = {code: seen.count(code) for code in sorted(set(seen))}
    print(f"{method} {path}: {len(seen)} requests in {time.monotonic() - started:.1f} s {counts}")


# --- the blob endpoint (a Starlette mount, not in the OpenAPI document) ------------------


@pytest.fixture(scope="module")
def write_sas(world: World) -> str:
    base = world.rid("disks", "fuzzupload")
    r = world.server.arm(
        "PUT",
        f"{base}?api-version=2025-01-02",
        json={
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "Upload", "uploadSizeBytes": 20 * 1024**2 + 512}
            },
        },
    )
    assert r.status_code < 300, r.text
    r = world.server.arm(
        "POST",
        f"{base}/beginGetAccess?api-version=2025-01-02",
        json={"access": "Write", "durationInSeconds": 3600},
    )
    assert r.status_code == 202, r.text
    location = r.headers["Location"][len(world.server.base_url) :]
    deadline = time.monotonic() + 60
    while (result := world.server.arm("GET", location)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return str(result.json()["accessSAS"])


RANGE = st.one_of(
    st.builds(
        lambda a, b: f"bytes={a}-{b}",
        st.integers(-5, 2**65) | st.sampled_from([0, 512, 20 * 1024**2]),
        st.integers(-5, 2**65) | st.sampled_from([511, 1023, 20 * 1024**2 + 511]),
    ),
    st.text(max_size=20),
)


def test_blob_endpoint_never_answers_5xx(world: World, write_sas: str) -> None:
    from urllib.parse import parse_qsl, urlparse

    url = urlparse(write_sas)
    base_query = dict(parse_qsl(url.query))
    conn = Conn(world.server)
    seen: list[int] = []

    @settings(max_examples=EXAMPLES * 10, **BOUNDS)
    @given(data=st.data())
    def check(data: Any) -> None:
        method = data.draw(st.sampled_from(["GET", "HEAD", "PUT", "PUT", "DELETE", "POST"]))
        query = dict(base_query)
        for key in data.draw(st.lists(st.sampled_from(sorted(query)), max_size=2)):
            query[key] = data.draw(st.text(max_size=30) | st.just(""))
        comp = data.draw(st.sampled_from([None, "page", "page", "pagelist", "block", "x"]))
        if comp:
            query["comp"] = comp
        headers: dict[str, str] = {}
        for name, values in (
            ("x-ms-range", RANGE),
            ("Range", RANGE),
            ("x-ms-page-write", st.sampled_from(["update", "clear", "UPDATE", "x", ""])),
            ("Content-MD5", st.text(max_size=30) | st.just("1B2M2Y8AsgTpgAmY7PhCfg==")),
            ("x-ms-if-sequence-number-le", st.just("1")),
        ):
            if data.draw(st.booleans()):
                value = data.draw(values)
                if value.isascii() and value.isprintable():
                    headers[name] = value
        body = data.draw(st.binary(max_size=2048)) if method in ("PUT", "POST") else None
        path = url.path if data.draw(st.integers(0, 5)) else url.path.replace("abcd", "zz")
        target = f"{path}?{urlencode(query)}"
        status, answer, _ = conn.send(method, target, body, headers)
        seen.append(status)
        what = f"{method} {target} {headers} → {status} {answer[:300]!r}"
        if status == 501:
            assert method == "HEAD" or b"<Code>NotImplemented</Code>" in answer, what
        else:
            assert status < 500, what
        ok, _, _ = conn.send("GET", "/metadata/endpoints?api-version=2022-09-01", None, {})
        assert ok == 200

    started = time.monotonic()
    check()
    print(f"blob endpoint: {len(seen)} requests in {time.monotonic() - started:.1f} s")
