"""`azimg check IMAGE`: say offline, in about a second, why Azure would reject an image."""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer

from azimg.cli.output import OutputFormat, emit


class ImageType(enum.StrEnum):
    generalized = "generalized"
    specialized = "specialized"


class CheckOutput(enum.StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"  # SARIF 2.1.0, for CI code scanning


class Generation(enum.StrEnum):
    v1 = "1"
    v2 = "2"


def register(app: typer.Typer) -> None:
    @app.command()
    def check(
        image: Path = typer.Argument(..., help="raw, VHD (fixed/dynamic), qcow2 or VMDK image"),
        generalized: bool = typer.Option(
            True,
            "--generalized/--specialized",
            help="image type: generalized (provisioned on first boot) or specialized (attached)",
        ),
        generation: Generation | None = typer.Option(
            None, "--generation", "-g", help="the --hyper-v-generation you will upload it as"
        ),
        marketplace: bool = typer.Option(
            False, "--marketplace", help="apply Marketplace certification severities"
        ),
        nvme: bool = typer.Option(
            False, "--nvme", help="the VM size uses remote NVMe for the OS disk (Gen2 only)"
        ),
        show_all: bool = typer.Option(False, "--all", help="list passed rules too"),
        output: CheckOutput = typer.Option(
            CheckOutput.text, "--output", "-o", help="text, json or sarif"
        ),
    ) -> None:
        """Check an image against Azure's Linux image rules without booting it.

        Exit code 0: no blockers; 1: blockers found; 2: the image could not be read.
        """
        from azimg.image.check import check_image, render_text
        from azimg.image.rules import CheckContext

        ctx = CheckContext(
            generalized=generalized,
            generation=generation.value if generation else None,
            marketplace=marketplace,
            nvme=nvme,
        )
        report = check_image(image, ctx)
        if output is CheckOutput.sarif:
            from azimg import __version__
            from azimg.image.check import render_sarif

            emit(render_sarif(report, tool_version=__version__), OutputFormat.json, str)
        else:
            fmt = OutputFormat(output.value)
            emit(report.to_json(), fmt, lambda _r: render_text(report, show_passed=show_all))
        if report.exit_code == 2:
            print(f"azimg: error: {report.why_unreadable}", file=sys.stderr)
        raise typer.Exit(report.exit_code)
