"""The function registry and the evaluation context every template function sees.

Values are plain JSON data: dict, list, str, int, bool, None (and float, passed through).
Python's bool is an int, so every numeric check goes through ``is_int``. A function is
registered under its lower-cased name (ARM function names are case-insensitive); an *eager*
function receives evaluated arguments, a *lazy* one (``if``, ``and``, ``or``, the lambda
functions) receives the argument nodes and the evaluator, so it can skip a branch.

The context is frozen: a copy loop or a lambda derives a child with ``replace`` instead of
mutating a shared object, so parallel evaluation of resources cannot see each other's indexes.
The runtime hooks (``reference``, ``list_action``, ``resource_ids``) are plain callables the
deployment engine supplies; with none supplied (validation), calling ``reference()`` is an
error, which is how the evaluator stays pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError

Eager = Callable[..., Any]
Lazy = Callable[..., Any]  # (ctx, nodes, evaluate) -> value


@dataclass(frozen=True)
class Function:
    name: str
    fn: Callable[..., Any]
    lazy: bool = False
    min_args: int = 0
    max_args: int | None = None


FUNCTIONS: dict[str, Function] = {}


def register(
    name: str, *, min_args: int = 0, max_args: int | None = None, lazy: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        FUNCTIONS[name.lower()] = Function(name, fn, lazy, min_args, max_args)
        return fn

    return deco


ReferenceHook = Callable[[str, str | None, bool], Any]  # (name or id, apiVersion, full)
ListHook = Callable[[str, str, str, Any], Any]  # (action, id, apiVersion, body)


@dataclass(frozen=True)
class Context:
    """What an expression can see. Scope objects are as ARM returns them (see scope.py)."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    variables: Callable[[str], Any] | None = None
    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    tenant_id: str = "00000000-0000-0000-0000-000000000000"
    resource_group: Mapping[str, Any] | None = None  # None: subscription scope
    location: str = ""
    deployment: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    subscription_name: str = "azimg"
    deployer: Mapping[str, Any] = field(default_factory=dict)
    copy_indexes: Mapping[str, int] = field(default_factory=dict)
    current_loop: str | None = None
    lambda_vars: Mapping[str, Any] = field(default_factory=dict)
    in_default: bool = False  # newGuid/utcNow are allowed only in parameter defaults
    allow_reference: bool = False
    reference: ReferenceHook | None = None
    list_action: ListHook | None = None
    now: datetime | None = None
    new_guid: Callable[[], str] | None = None
    user_functions: Mapping[str, Any] = field(default_factory=dict)

    def child(self, **changes: Any) -> Context:
        return replace(self, **changes)

    @property
    def resource_group_id(self) -> str | None:
        return None if self.resource_group is None else str(self.resource_group["id"])

    @property
    def resource_group_name(self) -> str | None:
        return None if self.resource_group is None else str(self.resource_group["name"])


# --- value helpers shared by the families ----------------------------------------------------


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def type_name(v: Any) -> str:
    """ARM's (JToken) name of a value's type, as its messages print it."""
    if v is None:
        return "Null"
    if isinstance(v, bool):
        return "Boolean"
    if is_int(v):
        return "Integer"
    if isinstance(v, float):
        return "Float"
    if isinstance(v, str):
        return "String"
    if isinstance(v, list):
        return "Array"
    if isinstance(v, dict):
        return "Object"
    return type(v).__name__


def want(fn: str, v: Any, *kinds: str) -> None:
    """Raise unless ``v`` is one of ``kinds`` (ARM type names)."""
    if type_name(v) not in kinds:
        raise ExpressionError(
            f"The template language function '{fn}' expects its parameter to be of type "
            f"'{' or '.join(kinds)}'. The provided value is of type '{type_name(v)}'."
        )


def want_int(fn: str, v: Any) -> int:
    want(fn, v, "Integer")
    return int(v)


def want_str(fn: str, v: Any) -> str:
    want(fn, v, "String")
    return str(v)


def to_string(v: Any) -> str:
    """``string()``: booleans as True/False, objects and arrays as compact JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "True" if v else "False"
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return str(v)


def deep_equal(a: Any, b: Any) -> bool:
    """Template equality: deep, case-sensitive, numbers by value, bool never equals int."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def get_property(obj: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """Exact key first, then any case (reference §2.3)."""
    if name in obj:
        return True, obj[name]
    low = name.lower()
    for k in obj:
        if k.lower() == low:
            return True, obj[k]
    return False, None


def arity(name: str, args: Sequence[Any], lo: int, hi: int | None) -> None:
    if len(args) < lo or (hi is not None and len(args) > hi):
        expected = str(lo) if hi == lo else f"{lo}" + (f" to {hi}" if hi else " or more")
        raise ExpressionError(
            f"The template language function '{name}' must have {expected} parameter(s); "
            f"{len(args)} given."
        )
