"""The expression syntax: literals, escaping, access, and the JSONC request body."""

from __future__ import annotations

from typing import Any

import pytest

from azimg.platform.resources.deployments import jsonc
from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.expressions import (
    Access,
    Call,
    Lit,
    evaluate_string,
    evaluate_value,
    parse,
)
from azimg.platform.resources.deployments.functions.base import Context

CTX = Context(parameters={"obj": {"Name": "x", "list": [10, 20, 30]}, "s": "abc"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[literal]", "[literal]"),  # "[[" escapes the bracket (docs: template syntax)
        ("[x] y", "[x] y"),  # not ending in ']': a literal
        ("plain", "plain"),
        ("['it''s']", "it's"),  # '' escapes a quote
        ("[-5]", -5),
        ("[parameters('obj').Name]", "x"),
        ("[parameters('obj').name]", "x"),  # property look-up falls back to any case
        ("[parameters('obj')['list'][2]]", 30),
        ("[parameters('obj').list[0]]", 10),
        ("[parameters('s')[1]]", "b"),
        ("[parameters('obj').?missing]", None),
        ("[PARAMETERS('s')]", "abc"),  # function names are case-insensitive
        ("[ concat( 'a' , 'b' ) ]", "ab"),
    ],
)
def test_expression_values(text: str, expected: Any) -> None:
    assert evaluate_string(text, CTX) == expected


def test_parse_tree() -> None:
    assert parse("[concat('a', parameters('p').x)]") == Call(
        "concat", (Lit("a"), Access(Call("parameters", (Lit("p"),)), Lit("x")))
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[concat('a']", "ended unexpectedly"),
        ("[true]", "must be a function call"),
        ("[parameters('obj').missing]", "doesn't exist"),
        ("[parameters('obj').list[3]]", "out of bounds"),
        ("['unterminated]", "not valid"),
        ("[parameters('nope')]", "is not found"),
    ],
)
def test_bad_expressions(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate_string(text, CTX)


def test_values_and_keys_evaluate_recursively() -> None:
    value = {"[parameters('s')]": ["[parameters('obj').Name]", 1, {"k": "[[x]"}]}
    assert evaluate_value(value, CTX) == {"abc": ["x", 1, {"k": "[x]"}]}


def test_az_spliced_body_with_comments_and_a_bare_key() -> None:
    # The body az sends for `deployment group create -f x.json` (reference §1.3, captured).
    raw = (
        b'{"properties": {"parameters": {"p": {"value": "y // not a comment"}}, '
        b'"mode": "Incremental", template:{\n  // comment\n  "$schema": "https://x/#",'
        b' /* block */ "resources": []}\n}}'
    )
    assert jsonc.loads(raw) == {
        "properties": {
            "parameters": {"p": {"value": "y // not a comment"}},
            "mode": "Incremental",
            "template": {"$schema": "https://x/#", "resources": []},
        }
    }


def test_jsonc_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        jsonc.loads(b"{not json")
