"""Date functions and the .NET date-format subset they need.

``utcNow`` is valid only in a parameter default and reads the deployment's clock from the
context (``ctx.now``), so evaluation stays pure and a test can fix the time. Formats follow .NET
(InvariantCulture): the standard single-letter formats and the custom tokens. Decision (the
docs only say "the format of the base value is used"): ``dateTimeAdd`` without a format writes
ISO 8601, with ``T`` or a space between date and time as the base had it.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from azimg.platform.resources.deployments.errors import ExpressionError
from azimg.platform.resources.deployments.functions.base import (
    Context,
    register,
    want_int,
    want_str,
)

STANDARD = {
    "d": "MM/dd/yyyy",
    "D": "dddd, dd MMMM yyyy",
    "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss",
    "g": "MM/dd/yyyy HH:mm",
    "G": "MM/dd/yyyy HH:mm:ss",
    "m": "MMMM dd",
    "M": "MMMM dd",
    "o": "yyyy-MM-ddTHH:mm:ss.fffffffK",
    "O": "yyyy-MM-ddTHH:mm:ss.fffffffK",
    "r": "ddd, dd MMM yyyy HH:mm:ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH:mm:ss 'GMT'",
    "s": "yyyy-MM-ddTHH:mm:ss",
    "t": "HH:mm",
    "T": "HH:mm:ss",
    "u": "yyyy-MM-dd HH:mm:ssZ",
    "y": "yyyy MMMM",
    "Y": "yyyy MMMM",
}
_TOKEN = re.compile(r"'[^']*'|\"[^\"]*\"|\\.|y+|M+|d+|H+|h+|m+|s+|f+|F+|t+|K|z+|.", re.DOTALL)


def _token(dt: datetime, tok: str) -> str:
    c, n = tok[0], len(tok)
    if c in "'\"":
        return tok[1:-1]
    if c == "\\":
        return tok[1:]
    if c == "y":
        return str(dt.year % 100).zfill(n) if n <= 2 else str(dt.year).zfill(n)
    if c == "M":
        if n >= 4:
            return calendar.month_name[dt.month]
        return calendar.month_abbr[dt.month] if n == 3 else str(dt.month).zfill(n)
    if c == "d":
        if n >= 4:
            return calendar.day_name[dt.weekday()]
        return calendar.day_abbr[dt.weekday()] if n == 3 else str(dt.day).zfill(n)
    if c == "H":
        return str(dt.hour).zfill(min(n, 2))
    if c == "h":
        return str(dt.hour % 12 or 12).zfill(min(n, 2))
    if c == "m":
        return str(dt.minute).zfill(min(n, 2))
    if c == "s":
        return str(dt.second).zfill(min(n, 2))
    if c in "fF":
        digits = f"{dt.microsecond:06d}0"[:n]
        return digits.rstrip("0") if c == "F" else digits
    if c == "t":
        return ("AM" if dt.hour < 12 else "PM")[:n]
    if c == "K":
        return "Z"
    if c == "z":
        return "+00:00" if n >= 3 else "+00" if n == 2 else "+0"
    return tok


def format_datetime(dt: datetime, fmt: str) -> str:
    pattern = STANDARD.get(fmt, fmt) if len(fmt) == 1 else fmt
    return "".join(_token(dt, m.group(0)) for m in _TOKEN.finditer(pattern))


def parse_datetime(fn: str, text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise ExpressionError(
            f"The template function '{fn}' could not parse the date-time '{text}'."
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


_DURATION = re.compile(
    r"^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def add_duration(dt: datetime, duration: str) -> datetime:
    m = _DURATION.match(duration)
    if m is None or duration in ("P", "-P") or duration.endswith("T"):
        raise ExpressionError(f"The duration '{duration}' is not a valid ISO 8601 duration.")
    sign = -1 if m.group(1) else 1
    years, months, weeks, days, hours, minutes = (int(g or 0) for g in m.groups()[1:7])
    seconds = float(m.group(8) or 0)
    total_months = dt.month - 1 + sign * (years * 12 + months)
    year, month = dt.year + total_months // 12, total_months % 12 + 1
    if not 1 <= year <= 9999:
        raise ExpressionError(f"Adding '{duration}' leaves the range of dates.")
    day = min(dt.day, calendar.monthrange(year, month)[1])
    shifted = dt.replace(year=year, month=month, day=day)
    delta = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    return shifted + sign * delta


@register("utcNow", min_args=0, max_args=1)
def _utc_now(ctx: Context, fmt: Any = "yyyyMMddTHHmmssZ") -> str:
    if not ctx.in_default:
        raise ExpressionError(
            "The template function 'utcNow' is only valid in the default value of a parameter."
        )
    now = ctx.now or datetime.now(UTC)
    return format_datetime(now, want_str("utcNow", fmt))


@register("dateTimeAdd", min_args=2, max_args=3)
def _date_time_add(_ctx: Context, base: Any, duration: Any, fmt: Any = None) -> str:
    text = want_str("dateTimeAdd", base)
    result = add_duration(parse_datetime("dateTimeAdd", text), want_str("dateTimeAdd", duration))
    if fmt is None:
        sep = " " if " " in text.strip() else "T"
        frac = ".fffffff" if "." in text else ""
        fmt = f"yyyy-MM-dd{sep}HH:mm:ss{frac}Z"
    return format_datetime(result, want_str("dateTimeAdd", fmt))


@register("dateTimeFromEpoch", min_args=1, max_args=1)
def _date_time_from_epoch(_ctx: Context, epoch: Any) -> str:
    dt = datetime.fromtimestamp(want_int("dateTimeFromEpoch", epoch), UTC)
    return format_datetime(dt, "yyyy-MM-ddTHH:mm:ssZ")


@register("dateTimeToEpoch", min_args=1, max_args=1)
def _date_time_to_epoch(_ctx: Context, text: Any) -> int:
    return int(parse_datetime("dateTimeToEpoch", want_str("dateTimeToEpoch", text)).timestamp())
