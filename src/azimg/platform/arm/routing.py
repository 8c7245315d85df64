"""Case-insensitive ARM routing: keywords are lower-cased before routing, names are kept.

ARM paths alternate keyword and value (``/subscriptions/{s}/resourceGroups/{rg}/providers/
{Namespace}/{type}/{name}/...``), with the provider namespace as a second keyword after
``providers`` and an optional trailing action (``beginGetAccess``). ``canonical_path`` lower-
cases exactly the keyword positions, so every route is declared once in lower case while
resource names keep the caller's casing. Paths outside ARM (the blob endpoint, OAuth2) pass
through untouched.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.types import ASGIApp, Receive, Scope, Send

ARM_ROOTS = frozenset({"subscriptions", "providers", "tenants", "metadata", "resources"})


def canonical_path(path: str) -> str:
    """``path`` with ARM keyword segments lower-cased and any trailing slash removed."""
    segs = [s for s in path.split("/") if s]  # az sends "Microsoft.Network//virtualNetworks"
    if not segs or segs[0].lower() not in ARM_ROOTS:
        return path
    out: list[str] = []
    i = 0
    expect_key = True
    while i < len(segs):
        seg = segs[i]
        if expect_key:
            low = seg.lower()
            out.append(low)
            if low == "providers" and i + 1 < len(segs):
                out.append(segs[i + 1].lower())
                i += 2
                continue
            expect_key = False
        else:
            out.append(seg)
            expect_key = True
        i += 1
    return "/" + "/".join(out)


class CanonicalPathMiddleware:
    """Rewrites ``scope["path"]`` with ``canonical_path`` before the router sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            new = canonical_path(path)
            if new != path:
                scope = dict(scope)
                scope["path"] = new
                scope["raw_path"] = quote(new, safe="/:@!$&'()*+,;=-._~").encode()
        await self.app(scope, receive, send)
