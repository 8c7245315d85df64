"""Which RBAC action an ARM request needs, and over which scope, derived from its method and
path as ARM does (reference/rbac-sharing.md §3.7): GET/HEAD → ``{type}/read``, PUT/PATCH →
``{type}/write``, DELETE → ``{type}/delete``, POST ``…/{verb}`` → ``{type}/{verb}/action``;
``{type}`` is the namespace and types without names; a collection is read at its parent.
Pure: paths come in canonical form (keywords lower-cased by ``arm/routing.py``).
"""

from __future__ import annotations

_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}

# ARM's casing of the keywords the canonical path lower-cases (for Azure-like messages;
# matching itself is case-insensitive).
_CASING = {
    k.lower(): k
    for k in (
        "Microsoft.Compute", "Microsoft.Network", "Microsoft.Resources", "Microsoft.Authorization",
        "virtualMachines", "virtualMachineScaleSets", "networkInterfaces", "publicIPAddresses",
        "networkSecurityGroups", "virtualNetworks", "securityRules", "defaultSecurityRules",
        "ipConfigurations", "roleAssignments", "roleDefinitions", "resourceGroups",
        "beginGetAccess", "endGetAccess", "diskOperations", "capsOperations", "powerOff",
        "runCommand", "instanceView", "sharedGalleries", "communityGalleries",
        "retrieveBootDiagnosticsData", "performMaintenance", "simulateEviction",
        "convertToManagedDisks", "reimage", "exportTemplate", "operationStatuses",
    )
}  # fmt: skip


def _arm(word: str) -> str:
    return _CASING.get(word.lower(), word)


def required(method: str, path: str) -> tuple[str, str] | None:
    """(action, scope) for an ARM request under ``/subscriptions/{s}``; None elsewhere (the
    tenant-level ``/subscriptions``, ``/tenants``, ``/providers`` need no role)."""
    segs = [s for s in path.split("/") if s]
    if len(segs) < 2 or segs[0].lower() != "subscriptions":
        return None
    verb = _VERBS.get(method.upper())
    base = f"/subscriptions/{segs[1]}"
    rest = segs[2:]
    if not rest:
        return f"Microsoft.Resources/subscriptions/{verb or 'read'}", base
    if rest[0].lower() == "resourcegroups":
        rg_type = "Microsoft.Resources/subscriptions/resourceGroups"
        if len(rest) == 1:  # the list
            return f"{rg_type}/read", base
        scope = f"{base}/resourceGroups/{rest[1]}"
        if len(rest) == 2:
            return f"{rg_type}/{verb or 'read'}", scope
        if rest[2].lower() != "providers":
            tail = "/".join(_arm(s) for s in rest[2:])
            if verb is None:
                return f"{rg_type}/{tail}/action", scope
            return f"{rg_type}/{tail}/read", scope
        return _provider(method, verb, scope, rest[3:])
    if rest[0].lower() == "providers":
        return _provider(method, verb, base, rest[1:])
    return f"Microsoft.Resources/subscriptions/{'/'.join(_arm(s) for s in rest[::2])}/read", base


def _provider(method: str, verb: str | None, scope: str, segs: list[str]) -> tuple[str, str] | None:
    """``segs`` = namespace, type, name, type, name, … [, collection | verb]; a nested
    ``providers/Microsoft.Authorization/…`` after a resource is that resource's extension."""
    low = [s.lower() for s in segs]
    if "providers" in low[1:]:  # {resource}/providers/{ns}/… : scope is the resource
        i = low.index("providers", 1)
        inner = _provider(method, verb, scope, segs[:i])
        resource_scope = inner[1] if inner is not None else scope
        return _provider(method, verb, resource_scope, segs[i + 1 :])
    if not segs:
        return None
    ns = _arm(segs[0])
    pairs = segs[1:]
    types = [_arm(t) for t in pairs[0::2]]
    names = pairs[1::2]
    resource = (
        scope
        + f"/providers/{ns}"
        + "".join(f"/{t}/{n}" for t, n in zip(types, names, strict=False))
    )
    if ns == "Microsoft.Authorization":  # assignments/definitions act on the scope above
        resource = scope
    if not types:  # POST …/providers/{ns}/register has a verb here
        return (f"{ns}/{verb or 'read'}", scope) if verb else None
    if len(pairs) % 2 == 0:  # ends with a name: the resource itself
        return f"{ns}/{'/'.join(types)}/{verb or 'read'}", resource
    if verb is None and method.upper() == "POST":  # …/{name}/{verb}: an action
        action_type = "/".join(types[:-1])
        prefix = f"{ns}/{action_type}/" if action_type else f"{ns}/"
        return f"{prefix}{types[-1]}/action", resource if names else scope
    return f"{ns}/{'/'.join(types)}/{verb or 'read'}", resource if names else scope
