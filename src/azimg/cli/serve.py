"""`azimg serve` — not built yet (see the issues)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds nothing until this command is built."""
