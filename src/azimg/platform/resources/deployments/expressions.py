"""ARM template expressions: tokenizer, parser and evaluator (pure; no store, no HTTP).

A JSON string is an expression only when it starts with ``[`` and ends with ``]``; a leading
``[[`` escapes the bracket (``"[[x]"`` is the literal ``[x]``). Inside: single-quoted strings
with ``''`` for a quote, 64-bit integers (a leading ``-`` belongs to the number), function
calls (names case-insensitive; ``ns.f(...)`` calls a user-defined function), and access by
``.name``, ``['name']``, ``[index]``, and the 2.0 safe forms ``.?name`` / ``[?...]``.
There are no boolean or null literals: ``true()``, ``false()``, ``null()``.

Nodes are frozen dataclasses so a parsed expression can be cached and scanned (the template
layer scans for ``reference('name')`` to add implicit dependencies) without evaluating it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.functions import FUNCTIONS
from azimg.platform.resources.deployments.functions.base import (
    Context,
    arity,
    get_property,
    is_int,
    type_name,
)

INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Call:
    name: str  # as written; looked up lower-cased
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Access:
    target: Node
    key: Node  # a Lit(str) for ``.name``
    safe: bool = False


Node = Lit | Call | Access

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<num>-?\d+)
    | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
    | (?P<punct>\.\?|\[\?|[()\[\],.])
    )""",
    re.VERBOSE,
)


def is_expression(s: str) -> bool:
    return len(s) >= 2 and s[0] == "[" and s[-1] == "]" and not s.startswith("[[")


def unescape_literal(s: str) -> str:
    """``[[x]`` → ``[x]``; any other literal string is returned unchanged."""
    if s.startswith("[[") and s.endswith("]"):
        return s[1:]
    return s


def _tokens(src: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(src):
        if src[pos:].strip() == "":
            break
        m = _TOKEN.match(src, pos)
        if m is None or m.end() == pos:
            raise ExpressionError(
                f"The language expression '{src}' is not valid: unexpected character "
                f"'{src[pos:].lstrip()[:1]}' at position {pos}."
            )
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = _tokens(src)
        self.i = 0

    def fail(self, why: str) -> ExpressionError:
        return ExpressionError(f"The language expression '{self.src}' is not valid: {why}.")

    def peek(self, k: int = 0) -> tuple[str, str] | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.fail("the expression ended unexpectedly")
        if value is not None and tok[1] != value:
            raise self.fail(f"expected '{value}' but found '{tok[1]}'")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected '{self.peek()[1]}' after the expression")  # type: ignore[index]
        return node

    def expr(self) -> Node:
        node = self.primary()
        while (tok := self.peek()) is not None and tok[1] in (".", ".?", "[", "[?"):
            self.take()
            safe = tok[1].endswith("?")
            if tok[1].startswith("."):
                kind, name = self.take()
                if kind != "ident":
                    raise self.fail(f"expected a property name after '.', found '{name}'")
                node = Access(node, Lit(name), safe)
            else:
                key = self.expr()
                self.take("]")
                node = Access(node, key, safe)
        return node

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "str":
            return Lit(text[1:-1].replace("''", "'"))
        if kind == "num":
            value = int(text)
            if not INT64[0] <= value <= INT64[1]:
                raise self.fail(f"the integer '{text}' is outside the 64-bit range")
            return Lit(value)
        if kind == "ident":
            name = text
            nxt = self.peek()
            if nxt is not None and nxt[1] == "." and (self.peek(1) or ("", ""))[0] == "ident":
                after = self.peek(2)
                if after is not None and after[1] == "(":  # namespace.function(
                    self.take(".")
                    name = f"{text}.{self.take()[1]}"
            if (self.peek() or ("", ""))[1] != "(":
                raise self.fail(
                    f"'{text}' must be a function call: literal values are written "
                    "'text', 42, true(), false() or null()"
                )
            self.take("(")
            args: list[Node] = []
            if (self.peek() or ("", ""))[1] != ")":
                args.append(self.expr())
                while (self.peek() or ("", ""))[1] == ",":
                    self.take(",")
                    args.append(self.expr())
            self.take(")")
            return Call(name, tuple(args))
        raise self.fail(f"unexpected '{text}'")


@lru_cache(maxsize=4096)
def parse(expression: str) -> Node:
    """Parse the text between the outer brackets of ``"[...]"`` (or a whole ``"[...]"``)."""
    src = expression[1:-1] if is_expression(expression) else expression
    if not src.strip():
        raise ExpressionError(f"The language expression '{expression}' is empty.")
    return _Parser(src).parse()


def evaluate(node: Node, ctx: Context) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Access):
        return _access(evaluate(node.target, ctx), evaluate(node.key, ctx), node.safe)
    low = node.name.lower()
    if "." in low:
        return _user_function(node, ctx)
    fn = FUNCTIONS.get(low)
    if fn is None:
        if low.startswith("list"):
            fn = FUNCTIONS["list*"]
            args = [evaluate(a, ctx) for a in node.args]
            arity(node.name, args, fn.min_args, fn.max_args)
            return fn.fn(ctx, node.name, *args)
        raise ExpressionError(f"The template function '{node.name}' is not valid.")
    if fn.lazy:
        arity(fn.name, node.args, fn.min_args, fn.max_args)
        return fn.fn(ctx, node.args, evaluate)
    args = [evaluate(a, ctx) for a in node.args]
    arity(fn.name, args, fn.min_args, fn.max_args)
    return fn.fn(ctx, *args)


def _access(target: Any, key: Any, safe: bool) -> Any:
    if target is None and safe:
        return None
    if isinstance(target, dict):
        if not isinstance(key, str):
            raise ExpressionError(f"An object property name must be a string, not {key!r}.")
        found, value = get_property(target, key)
        if found:
            return value
        if safe:
            return None
        names = ", ".join(f"'{k}'" for k in target)
        raise ExpressionError(
            f"The language expression property '{key}' doesn't exist, available properties "
            f"are {names}."
        )
    if isinstance(target, (list, str)):
        if not is_int(key):
            raise ExpressionError(
                f"The language expression property '{key}' can't be evaluated: a "
                f"{type_name(target)} is indexed by integers."
            )
        if 0 <= key < len(target):
            return target[key]
        if safe:
            return None
        raise ExpressionError(
            f"The language expression property array index '{key}' is out of bounds."
        )
    if safe:
        return None
    raise ExpressionError(
        f"The language expression property '{key}' can't be evaluated: the value is of type "
        f"'{type_name(target)}'."
    )


def _user_function(node: Call, ctx: Context) -> Any:
    """``ns.f(args)``: a user function sees only its own parameters (reference §2.1)."""
    ns, _, member = node.name.partition(".")
    found_ns, members = get_property(dict(ctx.user_functions), ns)
    found, spec = get_property(members, member) if found_ns else (False, None)
    if not found:
        raise ExpressionError(f"The template function '{node.name}' is not valid.")
    params = spec.get("parameters", [])
    args = [evaluate(a, ctx) for a in node.args]
    if len(args) != len(params):
        raise ExpressionError(
            f"The user function '{node.name}' takes {len(params)} parameter(s); {len(args)} given."
        )
    inner = Context(
        parameters={p["name"]: v for p, v in zip(params, args, strict=True)},
        subscription_id=ctx.subscription_id,
        tenant_id=ctx.tenant_id,
        user_functions=ctx.user_functions,
    )
    return evaluate_value(spec.get("output", {}).get("value"), inner)


def evaluate_string(s: str, ctx: Context) -> Any:
    if is_expression(s):
        return evaluate(parse(s), ctx)
    return unescape_literal(s)


def evaluate_value(value: Any, ctx: Context) -> Any:
    """Evaluate every expression string in a JSON value (objects and arrays recursively)."""
    if isinstance(value, str):
        return evaluate_string(value, ctx)
    if isinstance(value, list):
        return [evaluate_value(v, ctx) for v in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = evaluate_string(k, ctx) if is_expression(k) else unescape_literal(k)
            if not isinstance(key, str):
                raise ExpressionError(f"The property name '{k}' must evaluate to a string.")
            out[key] = evaluate_value(v, ctx)
        return out
    return value


def calls_in(value: Any) -> Iterator[Call]:
    """Every function call in every expression of a JSON value (for dependency scanning);
    strings that do not parse are skipped here and reported when evaluated."""
    if isinstance(value, str):
        if is_expression(value):
            try:
                node = parse(value)
            except ExpressionError:
                return
            yield from _walk(node)
    elif isinstance(value, list):
        for v in value:
            yield from calls_in(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from calls_in(k)
            yield from calls_in(v)


def _walk(node: Node) -> Iterator[Call]:
    if isinstance(node, Call):
        yield node
        for a in node.args:
            yield from _walk(a)
    elif isinstance(node, Access):
        yield from _walk(node.target)
        yield from _walk(node.key)
