"""Typer-free paths for the commands whose whole run is shorter than typer's import.

typer (with click, rich and pydantic behind it) costs ~130-300 ms before a command starts;
``azimg version`` and ``azimg convert --in-place`` finish their work in a few milliseconds.
For exactly those argument shapes this module runs the same functions the typer commands
call (``cli/convert.py``'s ``convert_in_place``), so output and errors are identical; any
other shape — ``--help``, an unknown option, a typo — returns False and typer handles it.
"""

from __future__ import annotations

from pathlib import Path


def _output(args: list[str]) -> tuple[str | None, list[str]] | None:
    """Split ``--output X`` / ``-o X`` / ``--output=X`` off; None when malformed."""
    rest: list[str] = []
    fmt = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--output", "-o"):
            if i + 1 >= len(args) or fmt is not None:
                return None
            fmt = args[i + 1]
            i += 2
            continue
        if a.startswith("--output="):
            if fmt is not None:
                return None
            fmt = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    if fmt not in (None, "text", "json"):
        return None
    return fmt, rest


def run_fast(argv: list[str]) -> bool:
    """Run ``argv`` if it is a fast shape; True when it ran."""
    if argv == ["version"]:
        from azimg import __version__

        print(__version__)
        return True
    if len(argv) >= 3 and argv[0] == "convert" and "--in-place" in argv:
        split = _output([a for a in argv[1:] if a != "--in-place"])
        if split is None or argv.count("--in-place") != 1:
            return False
        fmt, rest = split
        if len(rest) != 1 or rest[0].startswith("-"):
            return False
        from azimg.cli.convert import convert_in_place
        from azimg.cli.output import OutputFormat

        convert_in_place(Path(rest[0]), OutputFormat(fmt or "text"))
        return True
    return False
