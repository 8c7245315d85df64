"""`azimg check IMAGE`: say offline, in about a second, why Azure would reject an image."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Any

import typer

from azimg.cli.output import OutputFormat, emit
from azimg.errors import InvalidArgument


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


def render_resource_check(doc: dict[str, Any]) -> str:
    lines = [f"{doc['resourceId']}", f"checked {doc['checkedAt']} by the platform"]
    if doc["error"]:
        lines.append(f"could not be checked: {doc['error']}")
    for f in doc["findings"]:
        if f["status"] in ("fail", "unreadable"):
            where = f["evidence"][0]["where"] if f["evidence"] else ""
            lines.append(f"  {f['severity']:<8} {f['rule']:<8} {f['title']}  ({where})")
    s = doc["summary"]
    if s:
        lines.append(
            f"{s['blockers']} blockers, {s['warnings']} warnings, {s['advice']} advice, "
            f"{s['unreadable']} unreadable, {s['passed']} passed"
        )
    return "\n".join(lines)


def show_resource_check(
    resource: str, data_dir: Path | None, port: int | None, output: CheckOutput
) -> int:
    """The findings the platform keeps for a resource (read from its store, as `azimg
    credentials` finds it); exit 1 with blockers, 2 when none were recorded or it could not
    run."""
    from azimg.platform.resources import image_checks
    from azimg.platform.settings import Settings
    from azimg.platform.store import open_store

    store = open_store(Settings.from_env(data_dir=data_dir, port=port))
    try:
        found = image_checks.get(store, resource)
    finally:
        store.close()
    if found is None:
        raise InvalidArgument(
            f"no check recorded for {resource}",
            hint="the platform checks upload disks at endGetAccess, images and gallery "
            "versions when they are created",
        )
    fmt = OutputFormat.json if output is not CheckOutput.text else OutputFormat.text
    emit(found.to_json(), fmt, render_resource_check)
    if found.error:
        return 2
    return 1 if found.blockers else 0


def register(app: typer.Typer) -> None:
    @app.command()
    def check(
        image: Path | None = typer.Argument(
            None, help="raw, VHD (fixed/dynamic), qcow2 or VMDK image (or --resource)"
        ),
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
        resource: str | None = typer.Option(
            None, "--resource", help="ARM id: print what the platform found in its bytes"
        ),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="with --resource"),
        port: int | None = typer.Option(None, "--port", help="with --resource"),
    ) -> None:
        """Check an image against Azure's Linux image rules without booting it.

        Exit code 0: no blockers; 1: blockers found; 2: the image could not be read.
        """
        if resource is not None:
            if image is not None:
                raise InvalidArgument("give IMAGE or --resource, not both")
            code = show_resource_check(resource, data_dir, port, output)
            raise typer.Exit(code)
        if image is None:
            raise InvalidArgument("name an IMAGE (or --resource ARM_ID)")
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
