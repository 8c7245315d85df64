"""The deployment request body as az sends it: JSON with comments and a bare key.

``az deployment group create -f x.json`` splices the raw template file into the body as
``, template:<file text>}}`` (reference §1.3): the key is unquoted and the file's ``//`` and
``/* */`` comments are kept. ARM accepts that (templates may carry comments), so this parser
drops comments outside strings, quotes bare object keys, and reads the rest with
``json.loads(strict=False)`` (control characters inside strings are allowed, as in ARM).
"""

from __future__ import annotations

import json
import re
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def _normalise(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    expect_key = False  # just after '{' or ',' (outside strings)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
            expect_key = False
            continue
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if c in "{,":
            expect_key = True
            out.append(c)
            i += 1
            continue
        if expect_key and not c.isspace():
            m = _BARE_KEY.match(text, i)
            if m is not None and text[m.end() :].lstrip().startswith(":"):
                out.append(json.dumps(m.group(0)))
                i = m.end()
                expect_key = False
                continue
            expect_key = False
        out.append(c)
        i += 1
    return "".join(out)


def loads(raw: bytes | str) -> Any:
    """Parse a body that may be JSONC; raises ``ValueError`` when it is neither."""
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(_normalise(text), strict=False)
