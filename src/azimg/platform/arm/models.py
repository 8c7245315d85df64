"""Request-body parsing shared by routers: pydantic models in, ARM errors out."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from azimg.platform.errors import InvalidRequestContent, UnsupportedProperty

M = TypeVar("M", bound=BaseModel)


def _path(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as Azure writes a JSON path: ``a.b[0].c``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(model: type[M], body: dict[str, Any]) -> M:
    """``body`` as ``model``; an unknown property is refused by name (house rule 9)."""
    try:
        return model.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        target = _path(first["loc"])
        if first["type"] == "extra_forbidden":
            raise UnsupportedProperty(
                f"The property '{target}' is not supported by azimg.", target=target
            ) from None
        raise InvalidRequestContent(
            f"The request content was invalid and could not be deserialized: "
            f"'{target}': {first['msg']}.",
            target=target,
        ) from None
