"""List responses: ``{"value": [...], "nextLink": ...}`` with an absolute, verbatim nextLink.

SDK v39 GETs ``nextLink`` as is, so the link keeps every query parameter (api-version included)
and adds ``$skiptoken`` (the offset of the next page).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request

from azimg.platform.errors import InvalidParameter

PAGE_SIZE = 100


def page(request: Request, items: Sequence[Any], *, size: int = PAGE_SIZE) -> dict[str, Any]:
    raw = request.query_params.get("$skiptoken", "0")
    try:
        start = int(raw)
    except ValueError:
        raise InvalidParameter(f"The $skiptoken '{raw}' is invalid.", target="$skiptoken") from None
    top = request.query_params.get("$top")
    if top is not None:
        try:
            size = max(1, min(size, int(top)))
        except ValueError:
            raise InvalidParameter(f"The $top '{top}' is invalid.", target="$top") from None
    chunk = list(items[start : start + size])
    body: dict[str, Any] = {"value": chunk}
    if start + size < len(items):
        url = request.url.include_query_params(**{"$skiptoken": str(start + size)})
        body["nextLink"] = str(url)
    return body
