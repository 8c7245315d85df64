"""Entry point: composes the command modules and turns ``AzimgError`` into one line + exit 2.

Each command module exposes ``register(app)`` and imports its heavy dependencies inside the
command body, so ``azimg check`` does not pay for FastAPI at start-up.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from azimg.errors import AzimgError

# The order is the order of `azimg --help`.
COMMAND_MODULES = (
    "convert",
    "info",
    "build",
    "check",
    "generalize",
    "upload",
    "publish",
    "serve",
    "credentials",
    "tenant",
    "subscription",
    "sp",
    "vm",
)


def build_app() -> Any:
    import typer

    app = typer.Typer(
        name="azimg",
        help="Azure's Linux imaging system, real and local.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def root() -> None:
        """Azure's Linux imaging system, real and local."""

    for name in COMMAND_MODULES:
        importlib.import_module(f"azimg.cli.{name}").register(app)

    @app.command()
    def version() -> None:
        """Print azimg's version."""
        from azimg import __version__

        print(__version__)

    return app


def main() -> None:
    from azimg.cli.fast import run_fast

    try:
        if run_fast(sys.argv[1:]):
            return
        build_app()()
    except AzimgError as err:
        print(f"azimg: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("azimg: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
