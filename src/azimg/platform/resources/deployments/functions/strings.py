"""String functions. ``uniqueString`` and ``guid`` use Azure's exact algorithms, since
resource names are built from them and must come out the same as on Azure (reference §3.2):

* uniqueString: the arguments joined with ``-``, UTF-8, hashed by ResourceStack's MurmurHash64
  (seed 0, two 32-bit lanes over 8-byte blocks; *not* MurmurHash64A), written as 13 characters
  of ``a-z2-7``, five bits at a time from the top.
* guid: UUID v5 (SHA-1) under namespace ``11fb06fb-712d-4ddd-98c7-e71bbd588830`` over the same
  ``-``-joined string.

``format`` follows .NET composite formatting (``{i[,align][:spec]}``) for the specifiers
templates use: N, D, X, F, P, and the custom ``0``/``#``/``,``/``.`` patterns.
"""

from __future__ import annotations

import base64 as b64
import json
import re
import urllib.parse
import uuid
from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.functions.base import (
    Context,
    is_int,
    register,
    to_string,
    want,
    want_int,
    want_str,
)

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
GUID_NAMESPACE = uuid.UUID("11fb06fb-712d-4ddd-98c7-e71bbd588830")


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def _fmix(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def murmur64(data: bytes) -> int:
    """ResourceStack's MurmurHash64 (two 32-bit lanes), as uniqueString uses it."""
    c1, c2 = 0x239B961B, 0xAB0E9789
    h1 = h2 = 0
    n = len(data)
    i = 0
    while i + 8 <= n:
        k1 = int.from_bytes(data[i : i + 4], "little")
        k2 = int.from_bytes(data[i + 4 : i + 8], "little")
        h1 ^= (_rotl((k1 * c1) & _M32, 15) * c2) & _M32
        h1 = ((_rotl(h1, 19) + h2) * 5 + 0x561CCD1B) & _M32
        h2 ^= (_rotl((k2 * c2) & _M32, 17) * c1) & _M32
        h2 = ((_rotl(h2, 13) + h1) * 5 + 0x0BCAA747) & _M32
        i += 8
    if i < n:
        k1 = int.from_bytes(data[i : i + 4], "little")
        h1 ^= (_rotl((k1 * c1) & _M32, 15) * c2) & _M32
        if n - i > 4:
            k2 = int.from_bytes(data[i + 4 : n], "little")
            h2 ^= (_rotl((k2 * c2) & _M32, 17) * c1) & _M32
    h2 ^= n
    h1 ^= n
    h1 = (h1 + h2) & _M32
    h2 = (h2 + h1) & _M32
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _M32
    h2 = (h2 + h1) & _M32
    return (h2 << 32) | h1


def unique_string(*parts: str) -> str:
    h = murmur64("-".join(parts).encode("utf-8"))
    out = []
    for _ in range(13):
        out.append(_ALPHABET[h >> 59])
        h = (h << 5) & _M64
    return "".join(out)


def template_guid(*parts: str) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, "-".join(parts)))


@register("uniqueString", min_args=1)
def _unique_string(_ctx: Context, *args: Any) -> str:
    return unique_string(*(want_str("uniqueString", a) for a in args))


@register("guid", min_args=1)
def _guid(_ctx: Context, *args: Any) -> str:
    return template_guid(*(want_str("guid", a) for a in args))


@register("newGuid", min_args=0, max_args=0)
def _new_guid(ctx: Context) -> str:
    if not ctx.in_default:
        raise ExpressionError(
            "The template function 'newGuid' is only valid in the default value of a parameter."
        )
    return ctx.new_guid() if ctx.new_guid else str(uuid.uuid4())


@register("base64", min_args=1, max_args=1)
def _base64(_ctx: Context, s: Any) -> str:
    return b64.b64encode(want_str("base64", s).encode("utf-8")).decode("ascii")


def _b64decode(fn: str, s: Any) -> str:
    try:
        return b64.b64decode(want_str(fn, s), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise ExpressionError(f"The template function '{fn}' got invalid base64: '{s}'.") from None


@register("base64ToString", min_args=1, max_args=1)
def _base64_to_string(_ctx: Context, s: Any) -> str:
    return _b64decode("base64ToString", s)


@register("base64ToJson", min_args=1, max_args=1)
def _base64_to_json(_ctx: Context, s: Any) -> Any:
    return _parse_json("base64ToJson", _b64decode("base64ToJson", s))


def _parse_json(fn: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ExpressionError(
            f"The template function '{fn}' got a value that is not valid JSON: '{text}'."
        ) from None


@register("json", min_args=1, max_args=1)
def _json(_ctx: Context, s: Any) -> Any:
    return _parse_json("json", want_str("json", s))


@register("dataUri", min_args=1, max_args=1)
def _data_uri(_ctx: Context, s: Any) -> str:
    text = to_string(s) if not isinstance(s, str) else s
    return "data:text/plain;charset=utf8;base64," + b64.b64encode(text.encode()).decode()


@register("dataUriToString", min_args=1, max_args=1)
def _data_uri_to_string(_ctx: Context, s: Any) -> str:
    text = want_str("dataUriToString", s)
    m = re.match(r"^data:([^,]*),(.*)$", text, re.DOTALL)
    if m is None:
        raise ExpressionError(f"The value '{text}' is not a valid data URI.")
    meta, payload = m.groups()
    if meta.endswith(";base64"):
        return _b64decode("dataUriToString", payload)
    return urllib.parse.unquote(payload)


@register("startsWith", min_args=2, max_args=2)
def _starts_with(_ctx: Context, s: Any, prefix: Any) -> bool:
    return want_str("startsWith", s).lower().startswith(want_str("startsWith", prefix).lower())


@register("endsWith", min_args=2, max_args=2)
def _ends_with(_ctx: Context, s: Any, suffix: Any) -> bool:
    return want_str("endsWith", s).lower().endswith(want_str("endsWith", suffix).lower())


@register("toLower", min_args=1, max_args=1)
def _to_lower(_ctx: Context, s: Any) -> str:
    return want_str("toLower", s).lower()


@register("toUpper", min_args=1, max_args=1)
def _to_upper(_ctx: Context, s: Any) -> str:
    return want_str("toUpper", s).upper()


@register("trim", min_args=1, max_args=1)
def _trim(_ctx: Context, s: Any) -> str:
    return want_str("trim", s).strip()


@register("string", min_args=1, max_args=1)
def _string(_ctx: Context, v: Any) -> str:
    return to_string(v)


@register("replace", min_args=3, max_args=3)
def _replace(_ctx: Context, s: Any, old: Any, new: Any) -> str:
    old_s = want_str("replace", old)
    if not old_s:
        raise ExpressionError("The template function 'replace' needs a non-empty old string.")
    return want_str("replace", s).replace(old_s, want_str("replace", new))


@register("split", min_args=2, max_args=2)
def _split(_ctx: Context, s: Any, delim: Any) -> list[str]:
    text = want_str("split", s)
    delims = [delim] if isinstance(delim, str) else delim
    want("split", delims, "Array")
    if not delims or not all(isinstance(d, str) and d for d in delims):
        raise ExpressionError("The template function 'split' needs non-empty string delimiters.")
    return re.split("|".join(re.escape(d) for d in delims), text)


@register("join", min_args=2, max_args=2)
def _join(_ctx: Context, items: Any, delim: Any) -> str:
    want("join", items, "Array")
    if not all(isinstance(x, str) for x in items):
        raise ExpressionError("The template function 'join' joins an array of strings only.")
    return want_str("join", delim).join(items)


@register("substring", min_args=2, max_args=3)
def _substring(_ctx: Context, s: Any, start: Any, length: Any = None) -> str:
    text = want_str("substring", s)
    i = want_int("substring", start)
    n = len(text) - i if length is None else want_int("substring", length)
    if i < 0 or i > len(text):
        raise ExpressionError(
            f"The index parameter cannot be less than zero or greater than the length of the "
            f"string. Index: '{i}', string length: '{len(text)}'."
        )
    if n < 0 or i + n > len(text):
        raise ExpressionError(
            "The length parameter cannot be less than zero or exceed the remaining string. "
            f"Index: '{i}', length: '{n}', string length: '{len(text)}'."
        )
    return text[i : i + n]


@register("padLeft", min_args=2, max_args=3)
def _pad_left(_ctx: Context, v: Any, total: Any, pad: Any = " ") -> str:
    text = to_string(v) if is_int(v) else want_str("padLeft", v)
    pad_s = want_str("padLeft", pad)
    if len(pad_s) != 1:
        raise ExpressionError("The padding character of 'padLeft' must be one character.")
    return text.rjust(want_int("padLeft", total), pad_s)


@register("uri", min_args=2, max_args=2)
def _uri(_ctx: Context, base: Any, rel: Any) -> str:
    return urllib.parse.urljoin(want_str("uri", base), want_str("uri", rel))


@register("uriComponent", min_args=1, max_args=1)
def _uri_component(_ctx: Context, s: Any) -> str:
    # .NET Uri.EscapeDataString: everything but RFC 3986 unreserved characters.
    return urllib.parse.quote(want_str("uriComponent", s), safe="~")


@register("uriComponentToString", min_args=1, max_args=1)
def _uri_component_to_string(_ctx: Context, s: Any) -> str:
    return urllib.parse.unquote(want_str("uriComponentToString", s))


# --- format(): .NET composite formatting -------------------------------------------------

_ITEM = re.compile(r"\{(\d+)(?:,(-?\d+))?(?::([^}]*))?\}")


def _group(digits: str) -> str:
    return f"{int(digits):,}" if digits else "0"


def _fixed(value: float | int, decimals: int, grouped: bool) -> str:
    neg = value < 0
    text = f"{abs(value):.{decimals}f}"
    whole, _, frac = text.partition(".")
    whole = _group(whole) if grouped else whole
    return ("-" if neg else "") + whole + ("." + frac if frac else "")


def _custom(value: int | float, pattern: str) -> str:
    """The custom numeric patterns templates use: ``0``/``#`` digits, ``,`` grouping, ``.``."""
    int_pat, _, frac_pat = pattern.partition(".")
    grouped = "," in int_pat
    int_pat = int_pat.replace(",", "")
    min_int = int_pat.count("0")
    min_frac, max_frac = frac_pat.count("0"), len(frac_pat)
    text = f"{abs(value):.{max_frac}f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(min_frac, "0") if max_frac else ""
    whole = whole.lstrip("0").rjust(min_int, "0") if whole != "0" or min_int else ""
    if grouped and whole:
        whole = f"{int(whole):,}".rjust(min_int, "0")
    sign = "-" if value < 0 and (whole.strip("0") or frac.strip("0")) else ""
    return sign + whole + ("." + frac if frac else "")


def format_value(value: Any, spec: str) -> str:
    if not spec or not isinstance(value, (int, float)) or isinstance(value, bool):
        return to_string(value)
    kind, digits = spec[0], spec[1:]
    if digits.isdigit() or digits == "":
        n = int(digits) if digits else None
        up = kind.upper()
        if up == "N":
            return _fixed(value, 2 if n is None else n, True)
        if up == "F":
            return _fixed(value, 2 if n is None else n, False)
        if up == "P":
            return _fixed(value * 100, 2 if n is None else n, True) + " %"
        if up == "D" and is_int(value):
            text = str(abs(value)).rjust(n or 0, "0")
            return ("-" if value < 0 else "") + text
        if up == "X" and is_int(value):
            text = format(value & _M64 if value < 0 else value, "x" if kind == "x" else "X")
            return text.rjust(n or 0, "0")
        if up == "G":
            return to_string(value)
    if set(spec) <= set("0#,."):
        return _custom(value, spec)
    raise ExpressionError(f"The format specifier '{spec}' is not supported by 'format'.")


@register("format", min_args=1)
def _format(_ctx: Context, fmt: Any, *args: Any) -> str:
    text = want_str("format", fmt)
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "{" and text.startswith("{{", i):
            out.append("{")
            i += 2
        elif c == "}" and text.startswith("}}", i):
            out.append("}")
            i += 2
        elif c == "{":
            m = _ITEM.match(text, i)
            if m is None:
                raise ExpressionError(f"The format string '{text}' is not valid.")
            index = int(m.group(1))
            if index >= len(args):
                raise ExpressionError(
                    f"The format string '{text}' refers to argument {index}, but only "
                    f"{len(args)} were given."
                )
            piece = format_value(args[index], m.group(3) or "")
            if m.group(2):
                width = int(m.group(2))
                piece = piece.ljust(-width) if width < 0 else piece.rjust(width)
            out.append(piece)
            i = m.end()
        elif c == "}":
            raise ExpressionError(f"The format string '{text}' is not valid.")
        else:
            out.append(c)
            i += 1
    return "".join(out)
