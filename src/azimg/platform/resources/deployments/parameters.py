"""Template parameters: binding supplied values and defaults, and checking them (pure).

Supplied values are literal, never evaluated (reference §2.1). Defaults are expressions,
evaluated lazily so one default can use another parameter declared later; a cycle is an
error. ``newGuid``/``utcNow`` are allowed only while a default is being evaluated (the
context's ``in_default``). Every failure is a 400 ``InvalidTemplate`` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError, InvalidTemplate
from azimg.platform.resources.deployments.expressions import evaluate_value
from azimg.platform.resources.deployments.functions.base import (
    Context,
    deep_equal,
    is_int,
    type_name,
)

#: Declared type (lower-cased) → (the JSON type names it accepts, the name ARM echoes).
TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "string": (("String",), "String"),
    "securestring": (("String",), "SecureString"),
    "int": (("Integer",), "Int"),
    "bool": (("Boolean",), "Bool"),
    "object": (("Object",), "Object"),
    "secureobject": (("Object",), "SecureObject"),
    "array": (("Array",), "Array"),
}
SECURE = {"securestring", "secureobject"}
_EXPECTED = {"String": "String", "Integer": "Integer", "Boolean": "Boolean"}
MAX_PARAMETERS = 256


def declared_type(name: str, decl: Mapping[str, Any]) -> str:
    t = decl.get("type")
    if not isinstance(t, str) or t.lower() not in TYPES:
        raise InvalidTemplate(
            f"The template parameter '{name}' has type '{t}', which is not one of "
            f"{', '.join(sorted(TYPES))}.",
            target=name,
        )
    return t.lower()


def supplied_values(
    declared: Mapping[str, Any], supplied: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``{p: {value}}`` → ``{p: value}`` under the template's spelling of each name."""
    out: dict[str, Any] = {}
    unknown = []
    for name, entry in (supplied or {}).items():
        found = next((d for d in declared if d.lower() == name.lower()), None)
        if found is None:
            unknown.append(name)
            continue
        if not isinstance(entry, dict) or ("value" not in entry and "reference" not in entry):
            raise InvalidTemplate(
                f"The value of the template parameter '{name}' must be an object with a "
                "'value' property.",
                target=name,
            )
        if "reference" in entry:
            raise InvalidTemplate(
                f"The template parameter '{name}' refers to a Key Vault secret; azimg has no "
                "Key Vault, so pass the value itself.",
                target=name,
            )
        out[found] = entry["value"]
    if unknown:
        allowed = ", ".join(declared)
        raise InvalidTemplate(
            f"The template parameters '{', '.join(unknown)}' in the parameters file are not "
            "valid; they are not present in the original template and can therefore not be "
            f"provided at deployment time. The only supported parameters for this template are "
            f"'{allowed}'.",
            target=unknown[0],
        )
    return out


def check_value(name: str, decl: Mapping[str, Any], value: Any) -> Any:
    """The value if it fits the declaration, else ``InvalidTemplate`` saying why."""
    ptype = declared_type(name, decl)
    if value is None and decl.get("nullable"):
        return None
    accepted, _ = TYPES[ptype]
    if type_name(value) not in accepted:
        raise InvalidTemplate(
            f"Template parameter JToken type is not valid. Expected '{accepted[0]}'. Actual "
            f"'{type_name(value)}'. Please see https://aka.ms/arm-create-parameter-file for "
            f"usage details. (parameter '{name}')",
            target=name,
        )
    allowed = decl.get("allowedValues")
    if isinstance(allowed, list):
        candidates = value if ptype == "array" else [value]
        for v in candidates:
            if not any(deep_equal(v, a) for a in allowed):
                shown = ",".join(
                    a if isinstance(a, str) else str(a).lower() if isinstance(a, bool) else str(a)
                    for a in allowed
                )
                raise InvalidTemplate(
                    f"The provided value '{v}' for the template parameter '{name}' is not "
                    f"valid. The parameter value is not part of the allowed value(s): "
                    f"'{shown}'.",
                    target=name,
                )
    if is_int(value):
        lo, hi = decl.get("minValue"), decl.get("maxValue")
        if is_int(lo) and value < lo:
            raise InvalidTemplate(
                f"The provided value for the template parameter '{name}' is not valid. The "
                f"parameter value is less than the minimum value of '{lo}'.",
                target=name,
            )
        if is_int(hi) and value > hi:
            raise InvalidTemplate(
                f"The provided value for the template parameter '{name}' is not valid. The "
                f"parameter value is greater than the maximum value of '{hi}'.",
                target=name,
            )
    if isinstance(value, (str, list)):
        lo, hi = decl.get("minLength"), decl.get("maxLength")
        if is_int(lo) and len(value) < lo:
            raise InvalidTemplate(
                f"The provided value for the template parameter '{name}' is not valid. Length "
                f"of the value should be greater than or equal to '{lo}'.",
                target=name,
            )
        if is_int(hi) and len(value) > hi:
            raise InvalidTemplate(
                f"The provided value for the template parameter '{name}' is not valid. Length "
                f"of the value should be less than or equal to '{hi}'.",
                target=name,
            )
    return value


def bind(
    template: Mapping[str, Any], supplied: Mapping[str, Any] | None, base: Context
) -> dict[str, Any]:
    """Every declared parameter's value: the supplied one, else the evaluated default."""
    declared = template.get("parameters") or {}
    if not isinstance(declared, dict):
        raise InvalidTemplate("The template 'parameters' section must be an object.")
    if len(declared) > MAX_PARAMETERS:
        raise InvalidTemplate(
            f"The template has {len(declared)} parameters; at most {MAX_PARAMETERS} are allowed."
        )
    given = supplied_values(declared, supplied)
    values: dict[str, Any] = {}
    resolving: list[str] = []

    class _Lazy(Mapping[str, Any]):
        """The parameters a default sees, each resolved on first use."""

        def __getitem__(self, key: str) -> Any:
            return resolve(key)

        def __iter__(self) -> Iterator[str]:
            return iter(declared)

        def __len__(self) -> int:
            return len(declared)

    lazy = _Lazy()
    ctx = base.child(parameters=lazy, variables=None, in_default=True, allow_reference=False)

    def resolve(name: str) -> Any:
        if name in values:
            return values[name]
        decl = declared[name]
        if not isinstance(decl, dict):
            raise InvalidTemplate(f"The template parameter '{name}' must be an object.")
        declared_type(name, decl)
        if name in given:
            value = given[name]
        elif "defaultValue" in decl:
            if name in resolving:
                raise InvalidTemplate(
                    f"The default values of the template parameters "
                    f"'{', '.join([*resolving, name])}' refer to each other in a cycle."
                )
            resolving.append(name)
            try:
                value = evaluate_value(decl["defaultValue"], ctx)
            except ExpressionError as err:
                raise InvalidTemplate(
                    f"The template parameter '{name}' default value is not valid: {err}",
                    target=name,
                ) from None
            finally:
                resolving.pop()
        elif decl.get("nullable"):
            value = None
        else:
            raise InvalidTemplate(
                f"The value for the template parameter '{name}' is not provided. Please see "
                "https://aka.ms/arm-create-parameter-file for usage details.",
                target=name,
            )
        values[name] = check_value(name, decl, value)
        return values[name]

    for name in declared:
        resolve(name)
    return {name: values[name] for name in declared}


def echo(template: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The deployment's ``properties.parameters``: typed, secure values left out."""
    declared = template.get("parameters") or {}
    out: dict[str, Any] = {}
    for name, value in values.items():
        ptype = declared_type(name, declared[name])
        shown = TYPES[ptype][1]
        out[name] = {"type": shown} if ptype in SECURE else {"type": shown, "value": value}
    return out
