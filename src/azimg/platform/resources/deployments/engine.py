"""The deployment engine: validates a deployment request, runs the template as a durable job,
and records one operation per resource.

Decisions (reference templates.md §2.3, §1.5):
* A PUT is validated synchronously (parameters, expansion, the dependency graph): a bad
  template is 400 ``InvalidTemplate`` before anything is stored, as on ARM. Then the
  deployment is stored ``Accepted`` and a job (a thread of its own: it waits on other jobs)
  runs it.
* Resources deploy in topological waves, up to ``PARALLEL`` at once, each through the
  platform's own ARM endpoint (dispatch.py says why) and awaited to its LRO's end. A body is
  evaluated right before its PUT, so ``reference()`` sees what is already deployed. After
  the first failure nothing new starts; work in flight finishes; the deployment ends
  ``Failed`` with ``DeploymentFailed`` and one detail per failed resource. Resources never
  started stay as they were, with no operation (as Azure leaves them).
* A resource type the platform has no route for fails that resource with
  ``InvalidResourceType`` naming the type; nothing is skipped silently.
* The caller's bearer token is kept in memory only (never stored) and forwarded, so
  providers see the deploying caller. After a platform restart a running deployment cannot
  continue (no token): Jobs fails it and ``on_fail`` marks it Failed.
* Nested deployments are resources of type ``Microsoft.Resources/deployments``: one more PUT.
  For outer scope the child gets the parent's parameters (declared types, bound values),
  variables and functions in its template, which is what outer evaluation means.
* Complete mode then deletes the group's resources the template does not name (deployments
  themselves excepted), each by a DELETE through the same endpoint.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

from azimg.platform.errors import PlatformError
from azimg.platform.jobs import Jobs, JobSpec
from azimg.platform.resources import resource_groups, subscriptions
from azimg.platform.resources.deployments import parameters, records, template
from azimg.platform.resources.deployments.dispatch import Dispatcher, ProviderError
from azimg.platform.resources.deployments.errors import (
    DeploymentActive,
    DeploymentCannotBeCancelled,
    DeploymentNotFound,
    ExpressionError,
    InvalidTemplate,
)
from azimg.platform.resources.deployments.functions.base import Context
from azimg.platform.resources.deployments.records import Request, Target
from azimg.platform.settings import Settings
from azimg.platform.store import Document, Operation, Store

log = logging.getLogger(__name__)

KIND = "deployment"
PARALLEL = 4
PROVIDERS_API = "2025-04-01"
#: What the platform answers for a path no provider serves (a route miss, not a missing
#: resource, which has ResourceNotFound / ParentResourceNotFound).
UNROUTED = {"NotFound", "InvalidResourceType", "NoRegisteredProviderFound"}


class DeploymentFailed(PlatformError):
    code = "DeploymentFailed"


class DeploymentCanceled(PlatformError):
    code = "DeploymentCanceled"


def environment(base_url: str) -> dict[str, Any]:
    """``environment()``: the cloud metadata ``/metadata/endpoints`` serves for this cloud."""
    return {
        "name": "azimg",
        "gallery": base_url + "/gallery/",
        "graph": base_url + "/graph/",
        "portal": base_url,
        "graphAudience": base_url + "/graph/",
        "resourceManager": base_url + "/",
        "authentication": {
            "loginEndpoint": base_url,
            "audiences": ["https://management.core.windows.net/", base_url + "/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {"storage": "blob.azimg.local", "keyvaultDns": ".vault.azimg.local"},
    }


class DeploymentService:
    """Deployments for one platform process (a registry ``service``)."""

    def __init__(self, settings: Settings, store: Store, jobs: Jobs) -> None:
        self.settings = settings
        self.store = store
        self.jobs = jobs
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        jobs.register(KIND, JobSpec(run=self._run, on_fail=self._on_fail, dedicated=True))

    def start(self) -> None:
        """Nothing to start: deployments run as jobs."""

    def stop(self) -> None:
        """Nothing to stop: a running deployment's job ends with the process."""

    # --- scope ------------------------------------------------------------------------------

    def base_context(self, target: Target, req: Request) -> Context:
        sub = subscriptions.get(self.store, subscription_id=target.subscription_id)
        rg: dict[str, Any] | None = None
        location = req.location or ""
        if target.resource_group is not None:
            group = resource_groups.get(
                self.store, subscription_id=target.subscription_id, name=target.resource_group
            )
            rg = {
                "id": group.id,
                "name": group.name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": group.location,
                "tags": dict(group.tags),
                "properties": {"provisioningState": group.provisioning_state},
            }
            if group.managed_by:
                rg["managedBy"] = group.managed_by
            location = location or group.location
        deployment: dict[str, Any] = {
            "name": target.name,
            "properties": {
                "template": dict(req.template),
                "templateHash": records.template_hash(req.template),
                "parameters": dict(req.parameters),
                "mode": req.mode,
                "provisioningState": "Accepted",
            },
        }
        if target.resource_group is None:
            deployment["location"] = location
        return Context(
            subscription_id=sub.subscription_id,
            tenant_id=sub.tenant_id,
            subscription_name=sub.display_name,
            resource_group=rg,
            location=location,
            deployment=deployment,
            environment=environment(self.settings.base_url),
            now=datetime.now(UTC),
        )

    def check(self, target: Target, req: Request) -> tuple[Context, dict[str, Any], template.Plan]:
        """Validation: structure, parameters, expansion and the graph (400 on any fault)."""
        target.check_name()
        tpl = template.check_structure(req.template)
        base = self.base_context(target, req)
        values = parameters.bind(tpl, req.parameters, base)
        ctx = template.context(tpl, base, values)
        return ctx, values, template.plan(tpl, ctx)

    # --- requests ---------------------------------------------------------------------------

    def validate(self, target: Target, req: Request) -> dict[str, Any]:
        _ctx, values, plan = self.check(target, req)
        doc = records.new_document(target, req, "Succeeded")
        doc = records.with_properties(
            doc,
            parameters=parameters.echo(req.template, values),
            validatedResources=[{"id": r.id} for r in plan.resources if r.condition],
            dependencies=_dependencies(plan),
            providers=_providers(plan),
        )
        return records.public(doc)

    def begin_create(self, target: Target, req: Request, token: str) -> tuple[Document, Operation]:
        _ctx, values, plan = self.check(target, req)
        current = self.store.meta.get(target.id)
        if current is not None and records.state_of(current) in records.ACTIVE:
            raise DeploymentActive(
                f"Unable to edit or replace deployment '{target.name}': previous deployment "
                "from the same name is still active.",
                target=target.name,
            )
        doc = records.new_document(target, req, "Accepted")
        doc = records.with_properties(
            doc,
            parameters=parameters.echo(req.template, values),
            dependencies=_dependencies(plan),
            providers=_providers(plan),
        )
        ticket = str(uuid.uuid4())
        # The run binds these values as supplied ones (literal, never evaluated again), so a
        # newGuid()/utcNow() default has the value the deployment echoed at the PUT.
        bound = {n: {"value": v} for n, v in values.items()}
        doc = records.with_private(doc, ticket=ticket, values=bound)
        doc = self.store.meta.put(doc)
        with self._lock:
            self._tokens[ticket] = token
        op = self.jobs.submit(
            KIND,
            action="put",
            resource_id=target.id,
            location=req.location or (ctx_location(_ctx)),
            params={"ticket": ticket},
        )
        return doc, op

    def get(self, target: Target) -> Document:
        doc = self.store.meta.get(target.id)
        if doc is None or doc.type != records.TYPE:
            raise DeploymentNotFound(
                f"Deployment '{target.name}' could not be found.", target=target.name
            )
        return doc

    def list(self, target_scope: Target) -> list[Document]:
        if target_scope.resource_group is not None:
            resource_groups.get(
                self.store,
                subscription_id=target_scope.subscription_id,
                name=target_scope.resource_group,
            )
        prefix = target_scope.scope_prefix
        return [
            d
            for d in self.store.meta.list(type=records.TYPE, prefix=prefix)
            if "/" not in d.id[len(prefix) :]
        ]

    def cancel(self, target: Target) -> None:
        doc = self.get(target)
        if records.state_of(doc) not in records.ACTIVE:
            raise DeploymentCannotBeCancelled(
                f"The deployment '{target.name}' cannot be cancelled: it is "
                f"{records.state_of(doc)}; only Accepted or Running deployments can be.",
                target=target.name,
            )
        self.store.update(target.id, lambda d: records.with_private(d, cancel=True))

    def delete(self, target: Target) -> bool:
        doc = self.store.meta.get(target.id)
        if doc is None:
            return False
        if records.state_of(doc) in records.ACTIVE:
            raise DeploymentActive(
                f"The deployment '{target.name}' is still running; cancel it or wait.",
                target=target.name,
            )
        for op in self.operations(target):
            self.store.meta.delete(op.id)
        self.store.meta.delete(target.id)
        return True

    def operations(self, target: Target) -> list[Document]:
        self.get(target)
        return self.store.meta.list(type=records.OP_TYPE, prefix=target.id + "/operations/")

    def operation(self, target: Target, op_id: str) -> Document:
        doc = self.store.meta.get(f"{target.id}/operations/{op_id}")
        if doc is None:
            raise DeploymentNotFound(
                f"Deployment operation '{op_id}' of '{target.name}' could not be found.",
                target=op_id,
            )
        return doc

    def export_template(self, target: Target) -> dict[str, Any]:
        return {"template": self.get(target).body.get("_template", {})}

    # --- the job ---------------------------------------------------------------------------

    def _run(self, store: Store, op: Operation) -> Mapping[str, Any] | None:
        with self._lock:
            token = self._tokens.pop(str(op.params.get("ticket")), None)
        if token is None:
            raise DeploymentFailed(
                "The deployment was interrupted by a platform restart and cannot continue; "
                "deploy it again."
            )
        ca = self.settings.data_dir / "tls" / "ca.pem"
        dispatcher = Dispatcher(self.settings.base_url, ca, token)
        return Runner(self, store, op.resource_id, dispatcher).run()

    def _on_fail(self, store: Store, op: Operation, error: Mapping[str, Any]) -> None:
        def change(doc: Document) -> Document | None:
            if records.state_of(doc) not in records.ACTIVE:
                return None
            return _finished(doc, "Failed", error=dict(error))

        store.update(op.resource_id, change)


def ctx_location(ctx: Context) -> str:
    return ctx.location or "global"


def _dependencies(plan: template.Plan) -> list[dict[str, Any]]:
    by_key = plan.by_key()
    out = []
    for r in plan.resources:
        if not r.depends_on:
            continue
        deps = [by_key[k] for k in sorted(r.depends_on) if k in by_key]
        out.append(
            {
                "id": r.id,
                "resourceType": r.type,
                "resourceName": r.name,
                "dependsOn": [
                    {"id": d.id, "resourceType": d.type, "resourceName": d.name} for d in deps
                ],
            }
        )
    return out


def _providers(plan: template.Plan) -> list[dict[str, Any]]:
    found: dict[str, dict[str, set[str]]] = {}
    for r in plan.resources:
        ns, _, rest = r.type.partition("/")
        found.setdefault(ns, {}).setdefault(rest, set())
    return [
        {"namespace": ns, "resourceTypes": [{"resourceType": t, "locations": []} for t in types]}
        for ns, types in found.items()
    ]


def _finished(doc: Document, state: str, **props: Any) -> Document:
    end = records.now()
    start = str(doc.body.get("_start", end))
    return records.with_properties(
        doc, provisioningState=state, timestamp=end, duration=records.duration(start, end), **props
    )


class Runner:
    """One deployment's run: waves of PUTs, operations, outputs (see the module header)."""

    def __init__(
        self, service: DeploymentService, store: Store, deployment_id: str, dispatcher: Dispatcher
    ) -> None:
        self.service = service
        self.store = store
        self.id = deployment_id
        self.dispatcher = dispatcher
        self.plan: template.Plan | None = None

    def _update(self, **props: Any) -> None:
        self.store.update(self.id, lambda d: records.with_properties(d, **props))

    def _canceled(self) -> bool:
        doc = self.store.meta.get(self.id)
        return doc is None or bool(doc.body.get("_cancel"))

    def run(self) -> Mapping[str, Any] | None:
        doc = self.store.meta.get(self.id)
        assert doc is not None, "the deployment document is written before its job"
        self._update(provisioningState="Running")
        parts = self.id.split("/")
        rg = parts[4] if parts[3].lower() == "resourcegroups" else None
        target = Target(parts[2], rg, parts[-1])
        req = Request(
            template=doc.body["_template"],
            parameters=doc.body.get("_values", doc.body.get("_parameters", {})),
            mode=doc.body["properties"].get("mode", "Incremental"),
            location=doc.body.get("location"),
            tags={},
            extra={},
        )
        ctx, self.values, self.plan = self.service.check(target, req)
        self.template = req.template
        runtime = ctx.child(reference=self._reference, list_action=self._list_action)
        failures = self._deploy_all(runtime)
        if failures:
            error = {
                "code": "DeploymentFailed",
                "message": "At least one resource deployment operation failed. Please list "
                "deployment operations for details. Please see https://aka.ms/arm-deployment-"
                "operations for usage details.",
                "details": failures,
            }
            self.store.update(self.id, lambda d: _finished(d, "Failed", error=error))
            raise DeploymentFailed(error["message"])
        if self._canceled():
            self.store.update(self.id, lambda d: _finished(d, "Canceled"))
            raise DeploymentCanceled(f"The deployment '{target.name}' was canceled.")
        try:
            outputs = template.outputs(self.template, runtime)
            if req.mode == "Complete":
                self._complete_mode(target)
        except (PlatformError, ProviderError) as err:
            error = _error_of(err)
            self.store.update(self.id, lambda d: _finished(d, "Failed", error=error))
            raise DeploymentFailed(error["message"]) from None
        resources = [{"id": r.id} for r in self.plan.resources if r.condition and not r.existing]
        self.store.update(
            self.id,
            lambda d: _finished(d, "Succeeded", outputs=outputs, outputResources=resources),
        )
        return None

    def _deploy_all(self, runtime: Context) -> list[dict[str, Any]]:
        assert self.plan is not None
        done: set[str] = set()
        started: set[str] = set()
        failures: list[dict[str, Any]] = []
        with ThreadPoolExecutor(PARALLEL, thread_name_prefix="azimg-deploy") as pool:
            running: dict[Future[dict[str, Any] | None], str] = {}
            while True:
                progressed = False
                if not failures and not self._canceled():
                    for res in self.plan.ready(done, started):
                        started.add(res.key)
                        progressed = True
                        if not res.condition or res.existing:
                            done.add(res.key)  # skipped, or only referenced (GET)
                            continue
                        running[pool.submit(self._deploy_one, res, runtime)] = res.key
                if progressed and not running:
                    continue
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    key = running.pop(fut)
                    error = fut.result()
                    if error is None:
                        done.add(key)
                    else:
                        failures.append(error)
        return failures

    def _deploy_one(self, res: template.Planned, runtime: Context) -> dict[str, Any] | None:
        """PUT one resource and record its operation; its error, or None."""
        op = self.store.meta.put(records.new_operation(self.id, res.id, res.type, res.name))
        try:
            body = template.body(res, runtime)
            if res.is_deployment:
                body = self._nested(res, body)
            status, _result = self.dispatcher.put(res.id, res.api_version, body)
        except ProviderError as err:
            error = err.error
            if err.status == 404 and error.get("code") in UNROUTED:
                error = {
                    "code": "InvalidResourceType",
                    "message": f"The resource type '{res.type}' is not served by azimg (no "
                    f"provider implements it), so '{res.name}' cannot be deployed.",
                    "target": res.type,
                }
            self.store.meta.put(
                records.finish_operation(
                    op, state="Failed", status_code=err.status_code, error=error
                )
            )
            return {**error, "target": error.get("target") or res.id}
        except (PlatformError, ExpressionError) as err:
            error = _error_of(err)
            self.store.meta.put(
                records.finish_operation(op, state="Failed", status_code="BadRequest", error=error)
            )
            return {**error, "target": res.id}
        except Exception:
            log.exception("deploying %s failed", res.id)
            error = {"code": "InternalServerError", "message": "An internal error occurred."}
            self.store.meta.put(
                records.finish_operation(
                    op, state="Failed", status_code="InternalServerError", error=error
                )
            )
            return {**error, "target": res.id}
        code = "Created" if status == 201 else "OK"
        self.store.meta.put(records.finish_operation(op, state="Succeeded", status_code=code))
        return None

    def _nested(self, res: template.Planned, body: dict[str, Any]) -> dict[str, Any]:
        props = dict(body.get("properties") or {})
        if template.nested_scope(props) == "inner":
            return body
        if props.get("parameters"):
            raise InvalidTemplate(
                f"The nested deployment '{res.name}' uses the outer evaluation scope, so it "
                "cannot take 'parameters'; use expressionEvaluationOptions scope 'inner'."
            )
        inner = dict(props.get("template") or {})
        declared = self.template.get("parameters") or {}
        inner["parameters"] = {n: {"type": d.get("type", "string")} for n, d in declared.items()}
        inner["variables"] = {
            **(inner.get("variables") or {}),
            **(self.template.get("variables") or {}),
        }
        if self.template.get("functions"):
            inner["functions"] = self.template["functions"]
        props["template"] = inner
        props["parameters"] = {n: {"value": v} for n, v in self.values.items()}
        props.pop("expressionEvaluationOptions", None)
        return {**body, "properties": props}

    # --- runtime hooks ------------------------------------------------------------------------

    def _resolve(self, target: str, api_version: str | None) -> tuple[str, str]:
        assert self.plan is not None
        found = self.plan.find(target)
        if found:
            res = found[0]
            return res.id, api_version or res.api_version
        if not target.startswith("/"):
            raise ExpressionError(
                f"The resource '{target}' is not defined in the template; refer to a resource "
                "outside it by its ID."
            )
        if api_version is None:
            raise ExpressionError(
                f"The reference to '{target}' needs an apiVersion: the resource is not in the "
                "template."
            )
        return target, api_version

    def _reference(self, target: str, api_version: str | None, full: bool) -> Any:
        rid, api = self._resolve(target, api_version)
        try:
            body = self.dispatcher.get(rid, api)
        except ProviderError as err:
            raise ExpressionError(
                f"The Resource '{rid}' referenced by reference() could not be read: "
                f"{err.error.get('code')}: {err.error.get('message')}"
            ) from None
        if full:
            return {**body, "apiVersion": api, "resourceId": rid}
        return body.get("properties", {}) if isinstance(body, dict) else body

    def _list_action(self, action: str, target: str, api_version: str, body: Any) -> Any:
        rid, api = self._resolve(target, api_version)
        try:
            return self.dispatcher.post(f"{rid}/{action}", api, body)
        except ProviderError as err:
            raise ExpressionError(
                f"{action}() on '{rid}' failed: {err.error.get('code')}: {err.error.get('message')}"
            ) from None

    def _complete_mode(self, target: Target) -> None:
        """Delete the group's resources the template does not deploy (reference §1.6)."""
        assert self.plan is not None and target.resource_group is not None
        keep = {r.id.lower() for r in self.plan.resources if r.condition or r.existing}
        docs = resource_groups.list_resources(
            self.store, subscription_id=target.subscription_id, name=target.resource_group
        )
        versions: dict[str, str] = {}
        for doc in docs:
            low = doc.id.lower()
            rtype = doc.type
            if rtype.lower().startswith("microsoft.resources/deployments"):
                continue
            if low in keep or any(low.startswith(k + "/") for k in keep):
                continue
            if any(k.startswith(low + "/") for k in keep):
                continue  # the parent of a kept child
            api = versions.get(rtype.lower()) or self._api_version(target, rtype)
            versions[rtype.lower()] = api
            op = self.store.meta.put(
                records.new_operation(self.id, doc.id, rtype, doc.id.rsplit("/", 1)[1], "Delete")
            )
            try:
                self.dispatcher.delete(doc.id, api)
            except ProviderError as err:
                self.store.meta.put(
                    records.finish_operation(
                        op, state="Failed", status_code=err.status_code, error=err.error
                    )
                )
                raise
            self.store.meta.put(records.finish_operation(op, state="Succeeded", status_code="OK"))

    def _api_version(self, target: Target, rtype: str) -> str:
        for r in self.plan.resources if self.plan else []:
            if r.type.lower() == rtype.lower():
                return r.api_version
        ns, _, rest = rtype.partition("/")
        path = f"/subscriptions/{target.subscription_id}/providers/{ns}"
        meta = self.dispatcher.get(path, PROVIDERS_API)
        for t in (meta or {}).get("resourceTypes", []):
            if str(t.get("resourceType", "")).lower() == rest.lower() and t.get("apiVersions"):
                return str(t["apiVersions"][0])
        raise ProviderError(
            400,
            {
                "code": "NoRegisteredProviderFound",
                "message": f"No api-version is known for '{rtype}'.",
            },
        )


def _error_of(err: BaseException) -> dict[str, Any]:
    if isinstance(err, ProviderError):
        return dict(err.error)
    if isinstance(err, PlatformError):
        body: dict[str, Any] = {"code": err.code, "message": err.message}
        if err.target:
            body["target"] = err.target
        return body
    message = f"Deployment template validation failed: '{err}'."
    return {"code": "InvalidTemplate", "message": message}


def service(settings: Settings, store: Store, jobs: Jobs) -> DeploymentService:
    """The registry's service factory for ``Microsoft.Resources/deployments``."""
    return DeploymentService(settings, store, jobs)
