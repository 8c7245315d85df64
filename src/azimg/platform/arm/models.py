"""Request-body parsing shared by routers: pydantic models in, ARM errors out."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Strict, ValidationError

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


# --- shared body building blocks (every router's models use these) ---------------------------

#: Strict leaves: a wrong JSON type is refused, never coerced (``"5"`` is not an int).
Str = Annotated[str, Strict()]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Tags = dict[str, Str]


class Body(BaseModel):
    """Every request object: an unknown property is refused by name (``parse``)."""

    model_config = ConfigDict(extra="forbid")


class Envelope(Body):
    """What every tracked resource's PUT may carry besides ``properties``."""

    location: Str | None = None
    tags: Tags | None = None
    id: Str | None = None
    name: Str | None = None
    type: Str | None = None
    systemData: dict[str, Any] | None = None  # read-only


class PatchEnvelope(Body):
    tags: Tags | None = None
    id: Str | None = None
    name: Str | None = None
    type: Str | None = None
