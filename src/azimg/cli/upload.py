"""`azimg upload IMAGE --resource-group RG --name DISK`: an image to a managed disk, resumably."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import typer

from azimg.cli.output import OutputFormat, emit, progress_later


class HyperVGeneration(enum.StrEnum):
    v1 = "V1"
    v2 = "V2"


DATA_DIR = typer.Option(None, "--data-dir", help="local platform data directory")
PORT = typer.Option(None, "--port", help="local platform HTTPS port")
OUTPUT = typer.Option(OutputFormat.text, "--output", "-o", help="text or json")


def render(r: dict[str, Any]) -> str:
    mib = r["bytesSent"] / 2**20
    rate = mib / r["seconds"] if r["seconds"] else 0.0
    lines = []
    if r["converted"]:
        lines.append(f"note: {r['converted']}")
    lines += [f"warning: {w}" for w in r["warnings"]]
    verb = "resumed: sent" if r["resumed"] else "sent"
    lines.append(
        f"{verb} {mib:.1f} MiB of {r['uploadSizeBytes'] / 2**20:.1f} MiB "
        f"in {r['seconds']:.2f} s ({rate:.1f} MiB/s)"
    )
    lines.append(r["id"])
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command()
    def upload(
        image: Path = typer.Argument(..., help="raw, VHD, qcow2, VMDK or VHDX image"),
        resource_group: str = typer.Option(..., "--resource-group", "-g"),
        name: str = typer.Option(..., "--name", "-n", help="managed disk name"),
        location: str | None = typer.Option(None, "--location", "-l"),
        hyper_v_generation: HyperVGeneration | None = typer.Option(
            None, "--hyper-v-generation", help="default: V2 if the image boots UEFI, else V1"
        ),
        os_type: str = typer.Option("Linux", "--os-type"),
        force: bool = typer.Option(False, "--force", help="upload despite check's blockers"),
        threads: int = typer.Option(4, "--threads", help="parallel Put Page requests"),
        data_dir: Path | None = DATA_DIR,
        port: int | None = PORT,
        output: OutputFormat = OUTPUT,
    ) -> None:
        """Upload an image as a managed disk: check, create (Upload), send the allocated pages,
        revoke. Re-running after an interruption continues where it stopped."""
        from azimg.cli.arm_client import connect
        from azimg.cli.uploader import upload as run

        conn = connect(data_dir, port)
        with progress_later("uploading", enabled=output is OutputFormat.text) as start:
            result = run(
                conn,
                image,
                resource_group=resource_group,
                name=name,
                location=location,
                hyper_v_generation=hyper_v_generation.value if hyper_v_generation else None,
                os_type=os_type,
                force=force,
                threads=threads,
                progress=start,
            )
        emit(result.to_json(), output, render)
