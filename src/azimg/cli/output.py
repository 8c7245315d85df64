"""Shared output plumbing for commands: ``--output text|json`` and a progress bar on terminals.

Importing this module does not import typer (``OUTPUT_OPTION`` is made on first use), so the
fast paths of ``cli/fast.py`` can render through ``emit`` without paying typer's start-up.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any


class OutputFormat(enum.StrEnum):
    text = "text"
    json = "json"


def __getattr__(name: str) -> Any:
    if name == "OUTPUT_OPTION":  # typer only when a command module declares its options
        import typer

        return typer.Option(OutputFormat.text, "--output", "-o", help="text or json")
    raise AttributeError(name)


def emit(result: Any, fmt: OutputFormat, render_text: Callable[[Any], str]) -> None:
    """Print ``result`` as JSON (it must be JSON-ready) or through ``render_text``."""
    if fmt is OutputFormat.json:
        json.dump(result, sys.stdout, indent=2, sort_keys=False, default=str)
        sys.stdout.write("\n")
    else:
        text = render_text(result)
        if text:
            print(text)


@contextmanager
def progress(
    description: str, total: int | None, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callback; draws a bar only when stderr is a terminal."""
    if not (enabled and sys.stderr.isatty()):
        yield lambda _n: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=__import__("rich.console").console.Console(stderr=True),
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def progress_later(
    description: str, *, enabled: bool = True
) -> Iterator[Callable[[int | None], Callable[[int], None]]]:
    """Yield ``start(total) -> advance`` for work that learns its total late (after a check,
    a conversion); the bar it starts closes when the block ends."""
    with ExitStack() as stack:
        yield lambda total: stack.enter_context(progress(description, total, enabled=enabled))
