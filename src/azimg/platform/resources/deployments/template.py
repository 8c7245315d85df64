"""A template from JSON to a plan: variables, resource expansion, the dependency graph,
resource bodies and outputs (pure: no store, no HTTP).

The order is Azure's (reference §2.3): parameters (parameters.py), variables (lazily, with
cycle detection), then every resource expanded — child resources flattened, ``copy`` loops
unrolled, ``name``/``type``/``apiVersion``/``condition``/``dependsOn`` evaluated without
``reference()`` — then the dependency graph checked (unknown targets and cycles are 400
``InvalidTemplate``). Validation stops there. A resource's body (``properties`` with property
copy loops, and the envelope keys the provider takes) is evaluated only right before its PUT,
with the runtime hooks in the context, so it can call ``reference()`` on what is already
deployed. Null properties are dropped from bodies: ARM templates write ``null()`` to mean
"absent", and a provider should never see them (reference §0.6).

Resources carry a *key*: the symbolic name (languageVersion 2.0) or the lower-cased resource
ID; a dependency is a key. A serial copy loop makes each batch depend on the one before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from azimg.platform.resources.deployments import parameters as params
from azimg.platform.resources.deployments.errors import ExpressionError, InvalidTemplate
from azimg.platform.resources.deployments.expressions import (
    Lit,
    calls_in,
    evaluate,
    evaluate_value,
    parse,
)
from azimg.platform.resources.deployments.functions.base import Context, get_property, is_int

MAX_RESOURCES = 800
MAX_OUTPUTS = 64
MAX_COPY = 800
#: Resource keys that are template-only: never sent to the provider (reference §2.2).
TEMPLATE_ONLY = {
    "dependson",
    "condition",
    "copy",
    "comments",
    "scope",
    "resources",
    "existing",
    "apiversion",
    "type",
    "name",
    "resourcegroup",
    "subscriptionid",
    "metadata",
}
ENVELOPE = (
    "location",
    "tags",
    "sku",
    "kind",
    "identity",
    "plan",
    "zones",
    "extendedLocation",
    "managedBy",
    "properties",
)
DEPLOYMENTS = "microsoft.resources/deployments"


@dataclass
class Planned:
    """One resource instance after expansion."""

    key: str
    id: str
    type: str
    name: str
    api_version: str
    node: dict[str, Any]  # the (flattened) resource as written
    ctx: Context  # its evaluation context (copy indexes)
    condition: bool = True
    existing: bool = False
    symbolic: str | None = None
    copy_name: str | None = None
    copy_index: int | None = None
    depends_on: set[str] = field(default_factory=set)
    resource_group: str | None = None
    subscription_id: str | None = None

    @property
    def is_deployment(self) -> bool:
        return self.type.lower() == DEPLOYMENTS


@dataclass
class Plan:
    resources: list[Planned]
    index: _Index | None = None

    def by_key(self) -> dict[str, Planned]:
        return {r.key: r for r in self.resources}

    def find(self, target: str) -> list[Planned]:
        """The resources a name, ``type/name``, ID, copy name or symbolic name means."""
        return [] if self.index is None else self.index.lookup(target)

    def ready(self, done: set[str], started: set[str]) -> list[Planned]:
        """Resources not started whose dependencies are all done (skipped ones count as done)."""
        return [
            r
            for r in self.resources
            if r.key not in started and r.key not in done and r.depends_on <= done
        ]


def fail(where: str, err: ExpressionError | str) -> InvalidTemplate:
    return InvalidTemplate(f"The template {where} is not valid: {err}")


def context(template: Mapping[str, Any], base: Context, values: Mapping[str, Any]) -> Context:
    """The template's context: bound parameters and lazily evaluated variables."""
    declared = template.get("variables") or {}
    if not isinstance(declared, dict):
        raise InvalidTemplate("The template 'variables' section must be an object.")
    cache: dict[str, Any] = {}
    resolving: list[str] = []
    raw_copy = declared.get("copy")
    copies = {
        str(c.get("name", "")).lower(): c
        for c in (raw_copy if isinstance(raw_copy, list) else [])
        if isinstance(c, dict)
    }
    holder: dict[str, Context] = {}

    def variable(name: str) -> Any:
        low = name.lower()
        if low in cache:
            return cache[low]
        if low in resolving:
            raise ExpressionError(
                f"The template variables '{', '.join([*resolving, low])}' refer to each other "
                "in a cycle."
            )
        resolving.append(low)
        try:
            vctx = holder["ctx"].child(allow_reference=False)
            if low in copies:
                value = copy_array(copies[low], vctx, f"variable '{name}'")
            else:
                found, raw = get_property({k: v for k, v in declared.items() if k != "copy"}, name)
                if not found:
                    raise ExpressionError(f"The template variable '{name}' is not found.")
                value = expand(raw, vctx)
        finally:
            resolving.pop()
        cache[low] = value
        return value

    ctx = base.child(
        parameters=dict(values),
        variables=variable,
        user_functions=_user_functions(template),
    )
    holder["ctx"] = ctx
    return ctx


def _user_functions(template: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in template.get("functions") or []:
        if isinstance(entry, dict) and isinstance(entry.get("namespace"), str):
            out[entry["namespace"]] = entry.get("members") or {}
    return out


def copy_count(spec: Mapping[str, Any], ctx: Context, where: str) -> int:
    raw = spec.get("count")
    try:
        count = evaluate_value(raw, ctx.child(allow_reference=False))
    except ExpressionError as err:
        raise fail(f"copy count of {where}", err) from None
    if not is_int(count) or not 0 <= count <= MAX_COPY:
        raise InvalidTemplate(
            f"The copy count of {where} must be an integer from 0 to {MAX_COPY}; it is '{count}'."
        )
    return int(count)


def copy_array(spec: Mapping[str, Any], ctx: Context, where: str) -> list[Any]:
    """A ``copy: [{name, count, input}]`` entry (variables and properties) as its array."""
    name = spec.get("name")
    if not isinstance(name, str) or "input" not in spec:
        raise InvalidTemplate(f"The copy of {where} needs a 'name', a 'count' and an 'input'.")
    out = []
    for i in range(copy_count(spec, ctx, where)):
        inner = ctx.child(copy_indexes={**ctx.copy_indexes, name: i}, current_loop=name)
        out.append(expand(spec["input"], inner))
    return out


def expand(value: Any, ctx: Context) -> Any:
    """Evaluate a JSON value, unrolling property copy loops (``"copy": [{name, count,
    input}]`` inside an object sets one array property per entry)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k.lower() == "copy" and isinstance(v, list):
                for spec in v:
                    if not isinstance(spec, dict):
                        raise InvalidTemplate("A property copy entry must be an object.")
                    where = f"property '{spec.get('name')}'"
                    out[spec.get("name", "")] = copy_array(spec, ctx, where)
                continue
            out[evaluate_value(k, ctx)] = expand(v, ctx)
        return out
    if isinstance(value, list):
        return [expand(v, ctx) for v in value]
    return evaluate_value(value, ctx)


def strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


# --- expansion --------------------------------------------------------------------------


def _resources(template: Mapping[str, Any]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    raw = template.get("resources", [])
    if isinstance(raw, dict):  # languageVersion 2.0: symbolic names
        for sym, node in raw.items():
            yield sym, node
    elif isinstance(raw, list):
        for node in raw:
            yield None, node
    else:
        raise InvalidTemplate("The template 'resources' must be an array or an object.")


def _flatten(
    sym: str | None, node: dict[str, Any], parent: tuple[str, str] | None, depth: int = 0
) -> Iterator[tuple[str | None, dict[str, Any], tuple[str, str] | None]]:
    if not isinstance(node, dict):
        raise InvalidTemplate("Every template resource must be an object.")
    yield sym, node, parent
    children = node.get("resources") or []
    if children and depth >= 4:
        raise InvalidTemplate("Child resources nest at most five levels deep.")
    for child in children:
        yield from _flatten(None, child, (node.get("type", ""), node.get("name", "")), depth + 1)


def _eval(field_name: str, raw: Any, ctx: Context, where: str) -> Any:
    try:
        return evaluate_value(raw, ctx)
    except ExpressionError as err:
        raise fail(f"resource {where} '{field_name}'", err) from None


def resource_id(
    ctx: Context, rtype: str, name: str, rg: str | None, sub: str | None, scope: str | None
) -> str:
    ns, *types = rtype.split("/")
    names = name.split("/")
    if not types or len(names) != len(types):
        raise InvalidTemplate(
            f"The template resource '{name}' for type '{rtype}' has an incorrect segment "
            f"length. A nested resource type must have identical number of segments as its "
            f"resource name. A root resource type must have segment length one greater than "
            f"its resource name."
        )
    path = "/".join([ns] + [p for pair in zip(types, names, strict=True) for p in pair])
    if scope:
        return f"{scope.rstrip('/')}/providers/{path}"
    sub = sub or ctx.subscription_id
    if rtype.lower() == "microsoft.resources/resourcegroups":
        return f"/subscriptions/{sub}/resourceGroups/{name}"
    group = rg if rg is not None else ctx.resource_group_name
    if group is None:
        return f"/subscriptions/{sub}/providers/{path}"
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/{path}"


def plan(template: Mapping[str, Any], ctx: Context) -> Plan:
    """Expand every resource and build the dependency graph (what validation checks)."""
    nodectx = ctx.child(allow_reference=False)
    planned: list[Planned] = []
    loops: dict[str, list[Planned]] = {}
    raw_deps: list[tuple[Planned, list[str]]] = []
    symbols: dict[str, list[Planned]] = {}
    for sym, node, parent in (x for s, n in _resources(template) for x in _flatten(s, n, None)):
        copy_spec = node.get("copy")
        if copy_spec is not None and parent is not None:
            raise InvalidTemplate("Only top-level resources can have a 'copy' loop.")
        label = sym or str(node.get("name", "?"))
        instances: list[tuple[Context, str | None, int | None]] = [(nodectx, None, None)]
        if copy_spec is not None:
            if not isinstance(copy_spec, dict) or not isinstance(copy_spec.get("name"), str):
                raise InvalidTemplate(f"The copy of resource '{label}' needs a 'name'.")
            loop = copy_spec["name"]
            n = copy_count(copy_spec, nodectx, f"resource '{label}'")
            instances = [
                (nodectx.child(copy_indexes={loop: i}, current_loop=loop), loop, i)
                for i in range(n)
            ]
            loops.setdefault(loop.lower(), [])
        for ictx, loop, index in instances:
            res = _instance(node, sym, parent, ictx, label)
            res.copy_name, res.copy_index = loop, index
            planned.append(res)
            if loop is not None:
                loops[loop.lower()].append(res)
            if sym is not None:
                symbols.setdefault(sym.lower(), []).append(res)
            deps = _eval("dependsOn", node.get("dependsOn") or [], ictx, label)
            if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
                raise InvalidTemplate(f"The dependsOn of resource '{label}' must be strings.")
            raw_deps.append((res, deps))
        if copy_spec is not None and str(copy_spec.get("mode", "parallel")).lower() == "serial":
            _serialise(loops[copy_spec["name"].lower()], copy_spec, nodectx, label)
    if len(planned) > MAX_RESOURCES:
        raise InvalidTemplate(
            f"The template has {len(planned)} resources after copy loops; at most "
            f"{MAX_RESOURCES} are allowed."
        )
    seen: set[str] = set()
    for r in planned:
        if r.key in seen and not r.existing:
            raise InvalidTemplate(f"The resource '{r.id}' is defined multiple times in a template.")
        seen.add(r.key)
    index = _Index(planned, loops, symbols)
    for res, deps in raw_deps:
        for d in deps:
            res.depends_on |= {t.key for t in index.find(d, res)}
        res.depends_on |= _implicit(res, index)
        res.depends_on.discard(res.key)
    _check_cycles(planned)
    return Plan(planned, index)


def _instance(
    node: dict[str, Any],
    sym: str | None,
    parent: tuple[str, str] | None,
    ctx: Context,
    label: str,
) -> Planned:
    rtype = _eval("type", node.get("type"), ctx, label)
    name = _eval("name", node.get("name"), ctx, label)
    api = _eval("apiVersion", node.get("apiVersion"), ctx, label)
    for fname, v in (("type", rtype), ("name", name), ("apiVersion", api)):
        if not isinstance(v, str) or not v:
            raise InvalidTemplate(
                f"The template resource '{label}' is missing the required property '{fname}'."
            )
    if parent is not None:
        ptype = _eval("type", parent[0], ctx, label)
        pname = _eval("name", parent[1], ctx, label)
        if "/" not in rtype:
            rtype = f"{ptype}/{rtype}"
        if name.count("/") < pname.count("/") + 1:
            name = f"{pname}/{name}"
    condition = True
    if "condition" in node:
        condition = _eval("condition", node["condition"], ctx, label)
        if not isinstance(condition, bool):
            raise InvalidTemplate(f"The condition of resource '{label}' must be a boolean.")
    rg = _eval("resourceGroup", node.get("resourceGroup"), ctx, label)
    sub = _eval("subscriptionId", node.get("subscriptionId"), ctx, label)
    scope = _eval("scope", node.get("scope"), ctx, label)
    existing = bool(node.get("existing", False))
    rid = resource_id(ctx, rtype, name, rg, sub, scope)
    return Planned(
        key=sym.lower() if sym else rid.lower(),
        id=rid,
        type=rtype,
        name=name,
        api_version=api,
        node=node,
        ctx=ctx,
        condition=condition,
        existing=existing,
        symbolic=sym,
        resource_group=rg,
        subscription_id=sub,
    )


def _serialise(instances: list[Planned], spec: Mapping[str, Any], ctx: Context, label: str) -> None:
    batch = _eval("batchSize", spec.get("batchSize", 1), ctx, label)
    if not is_int(batch) or batch < 1:
        raise InvalidTemplate(f"The batchSize of resource '{label}' must be a positive integer.")
    for i, res in enumerate(instances):
        start = (i // batch - 1) * batch
        if start >= 0:
            res.depends_on |= {r.key for r in instances[start : start + batch]}


class _Index:
    """Finds the resources a ``dependsOn`` entry or ``reference()`` target names."""

    def __init__(
        self,
        planned: list[Planned],
        loops: dict[str, list[Planned]],
        symbols: dict[str, list[Planned]],
    ) -> None:
        self.loops, self.symbols = loops, symbols
        self.names: dict[str, list[Planned]] = {}
        for r in planned:
            ns, *types = r.type.split("/")
            names = r.name.split("/")
            forms = {
                r.id,
                f"{r.type}/{r.name}",
                "/".join([ns] + [p for pair in zip(types, names, strict=True) for p in pair]),
                r.name,
            }
            if r.type.lower() == "microsoft.resources/resourcegroups":
                # subscriptionResourceId() spells a group's id with the provider segment.
                sub = r.id.split("/")[2]
                forms.add(f"/subscriptions/{sub}/providers/{r.type}/{r.name}")
            for f in forms:
                self.names.setdefault(f.lower(), []).append(r)

    def lookup(self, target: str) -> list[Planned]:
        low = target.lower().strip()
        if low in self.symbols:
            return self.symbols[low]
        if low in self.loops:
            return self.loops[low]
        return self.names.get(low, [])

    def find(self, target: str, res: Planned) -> list[Planned]:
        found = self.lookup(target)
        if not found:
            raise InvalidTemplate(
                f"The resource '{target}' is not defined in the template.", target=res.name
            )
        low = target.lower()
        ambiguous = len({r.id.lower() for r in found}) > 1
        if ambiguous and low not in self.loops and low not in self.symbols:
            raise InvalidTemplate(
                f"The resource '{target}' named in dependsOn of '{res.name}' is ambiguous; "
                "use its resource ID."
            )
        return found


def _implicit(res: Planned, index: _Index) -> set[str]:
    """``reference('name')``/``list*('name')`` to a same-template resource by name or symbolic
    name adds a dependency (by ID it does not, as on Azure)."""
    out: set[str] = set()
    for call in calls_in([res.node.get("properties"), res.node.get("copy")]):
        low = call.name.lower()
        if not (low in ("reference", "references") or low.startswith("list")) or not call.args:
            continue
        first = call.args[0]
        target: Any = None
        if isinstance(first, Lit):
            target = first.value
        else:
            try:
                target = evaluate(first, res.ctx)
            except ExpressionError:
                continue
        if isinstance(target, str) and "/subscriptions/" not in target.lower():
            out |= {r.key for r in index.lookup(target)}
    return out


def _check_cycles(planned: list[Planned]) -> None:
    by_key = {r.key: r for r in planned}
    state: dict[str, int] = {}

    def visit(key: str, path: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = [*path[path.index(key) :], key]
            names = " -> ".join(by_key[k].name for k in cycle if k in by_key)
            raise InvalidTemplate(f"Circular dependency detected on resource: '{names}'.")
        state[key] = 1
        for dep in by_key[key].depends_on:
            if dep in by_key:
                visit(dep, [*path, key])
        state[key] = 2

    for r in planned:
        visit(r.key, [])


# --- bodies and outputs -----------------------------------------------------------------


def body(res: Planned, runtime: Context) -> dict[str, Any]:
    """The provider's PUT body, evaluated now (``runtime`` carries the reference hooks)."""
    ctx = res.ctx.child(
        allow_reference=True, reference=runtime.reference, list_action=runtime.list_action
    )
    out: dict[str, Any] = {}
    for k, v in res.node.items():
        if k.lower() in TEMPLATE_ONLY:
            continue
        if k not in ENVELOPE:
            raise InvalidTemplate(
                f"The template resource '{res.name}' has the property '{k}', which is not a "
                "resource property ARM sends to a provider.",
                target=k,
            )
        if res.is_deployment and k == "properties":
            out[k] = _nested_properties(v, ctx, res.name)
            continue
        try:
            out[k] = expand(v, ctx)
        except ExpressionError as err:
            raise fail(f"resource '{res.name}' property '{k}'", err) from None
    return strip_nulls(out)


def _nested_properties(props: Any, ctx: Context, name: str) -> dict[str, Any]:
    """A nested deployment's properties: its template stays unevaluated (its own scope runs
    it); with inner scope its parameters are evaluated here, in the parent."""
    if not isinstance(props, dict):
        raise InvalidTemplate(f"The nested deployment '{name}' needs 'properties'.")
    out: dict[str, Any] = {}
    for k, v in props.items():
        if k == "template":
            out[k] = v
        else:
            try:
                out[k] = expand(v, ctx)
            except ExpressionError as err:
                raise fail(f"nested deployment '{name}' property '{k}'", err) from None
    return out


def nested_scope(props: Mapping[str, Any]) -> str:
    """``inner`` or ``outer`` (the default; ``NotSpecified`` is outer)."""
    opts = props.get("expressionEvaluationOptions") or {}
    scope = str(opts.get("scope", "outer")).lower()
    return "inner" if scope == "inner" else "outer"


OUTPUT_TYPES = {
    "string": "String",
    "securestring": "SecureString",
    "int": "Int",
    "bool": "Bool",
    "array": "Array",
    "object": "Object",
    "secureobject": "SecureObject",
}


def outputs(template: Mapping[str, Any], runtime: Context) -> dict[str, Any]:
    declared = template.get("outputs") or {}
    if len(declared) > MAX_OUTPUTS:
        raise InvalidTemplate(f"The template has more than {MAX_OUTPUTS} outputs.")
    ctx = runtime.child(allow_reference=True)
    out: dict[str, Any] = {}
    for name, spec in declared.items():
        otype = str(spec.get("type", "")).lower()
        if otype not in OUTPUT_TYPES:
            raise InvalidTemplate(f"The template output '{name}' has an invalid type '{otype}'.")
        try:
            if "condition" in spec and evaluate_value(spec["condition"], ctx) is not True:
                continue
            if isinstance(spec.get("copy"), dict):
                value: Any = copy_array({"name": name, **spec["copy"]}, ctx, f"output '{name}'")
            else:
                value = expand(spec.get("value"), ctx)
        except ExpressionError as err:
            raise fail(f"output '{name}'", err) from None
        params.check_value(name, {"type": otype}, value)
        if otype in params.SECURE:
            continue
        out[name] = {"type": OUTPUT_TYPES[otype], "value": value}
    return out


def check_structure(template: Any) -> Mapping[str, Any]:
    if not isinstance(template, dict):
        raise InvalidTemplate("The template must be a JSON object.")
    for key in ("$schema", "contentVersion"):
        if key not in template:
            raise InvalidTemplate(f"Required property '{key}' not found in JSON.")
    if "resources" not in template:
        raise InvalidTemplate("Required property 'resources' not found in JSON.")
    return template


__all__ = ["Plan", "Planned", "body", "context", "expand", "outputs", "parse", "plan"]
