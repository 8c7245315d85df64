"""`azimg generalize IMAGE -o OUT | --in-place`: deprovision offline, every action reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from azimg.cli.output import OutputFormat, emit


def render(result: dict[str, Any]) -> str:
    where = "itself" if result["inPlace"] else result["output"]
    lines = [
        f"{result['source']} -> {where}: generalized ({result['root']}; "
        f"agents: {', '.join(result['agents']) or 'none'})"
    ]
    for a in result["actions"]:
        extra = f" ({a['entries']} entries)" if a["entries"] > 1 else ""
        lines.append(f"  {a['done']:<13} {a['path']}{extra}  — {a['why']}")
    for note in result["notes"]:
        lines.append(f"  note: {note}")
    lines.append(f"{len(result['actions'])} actions in {result['seconds']:.2f} s")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command()
    def generalize(
        image: Path = typer.Argument(..., help="image to deprovision (raw, VHD, qcow2, VMDK)"),
        out: Path | None = typer.Option(
            None, "-o", "--out", help="write the generalized image here (a fixed VHD)"
        ),
        in_place: bool = typer.Option(False, "--in-place", help="replace IMAGE itself"),
        remove_users: bool = typer.Option(
            False, "--remove-users", help="remove login users (UID >= 1000) and their homes"
        ),
        keep_user: list[str] = typer.Option(
            [], "--keep-user", help="with --remove-users: keep this user (repeatable)"
        ),
        force: bool = typer.Option(
            False, "--force", help="generalize even without a provisioning agent"
        ),
        output: OutputFormat = typer.Option(OutputFormat.text, "--output", help="text or json"),
    ) -> None:
        """Deprovision an image offline: what waagent -deprovision+user and cloud-init clean do.

        No boot, no mounts, no loop devices; ext4 is written with debugfs on a copy, which
        takes the output's name only when every action is verified.
        """
        from azimg.image.generalize import generalize as run

        result = run(
            image,
            out,
            in_place=in_place,
            remove_users=remove_users,
            keep_users=tuple(keep_user),
            force=force,
        )
        emit(result.to_json(), output, render)
