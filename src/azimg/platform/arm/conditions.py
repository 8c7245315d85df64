"""``If-Match`` / ``If-None-Match`` on ARM writes: parsed once, checked by one pure function.

ARM semantics (VM PUT carries them): ``If-Match: *`` — the resource must exist; ``If-Match:
"<etag>"`` — it must exist with that ETag; ``If-None-Match: *`` — it must not exist. A
failed condition is 412 ``PreconditionFailed``. Routers parse the headers with
``from_headers`` and hand ``if_match`` / ``if_none_match_any`` to the domain function as plain
keywords, which passes them to ``store.meta.put(if_match=..., if_none_match=...)``: the store
enforces them atomically with the write (``"*"`` included). ``check`` states the same rules
as a pure function (table-tested) for code that must decide before writing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from azimg.platform.errors import InvalidParameter, PreconditionFailed


@dataclass(frozen=True)
class Conditions:
    if_match: str | None = None  # "*" or an ETag without quotes
    if_none_match_any: bool = False


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def from_headers(headers: Mapping[str, str]) -> Conditions:
    if_match = headers.get("if-match")
    if_none = headers.get("if-none-match")
    if if_none is not None and if_none.strip() != "*":
        raise InvalidParameter(
            "Only 'If-None-Match: *' is supported on writes.", target="If-None-Match"
        )
    return Conditions(
        if_match=_unquote(if_match) if if_match is not None else None,
        if_none_match_any=if_none is not None,
    )


def check(conditions: Conditions, current_etag: str | None) -> None:
    """Raise ``PreconditionFailed`` unless the conditions hold for the current state."""
    if conditions.if_none_match_any and current_etag is not None:
        raise PreconditionFailed("The resource already exists (If-None-Match: *).")
    if conditions.if_match is not None:
        if current_etag is None:
            raise PreconditionFailed("The resource does not exist (If-Match).")
        if conditions.if_match != "*" and conditions.if_match != current_etag:
            raise PreconditionFailed(
                f"The ETag '{conditions.if_match}' does not match the current ETag "
                f"'{current_etag}' (If-Match)."
            )
