"""`azimg build debian`: make an Azure-ready Debian image (fixed VHD), Gen1, Gen2 or both."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from azimg.cli.output import OutputFormat, emit

MiB = 1024 * 1024
# `-o` names the image (as the issue's `azimg build debian -o IMAGE.vhd`), so the shared
# OUTPUT_OPTION's `-o` short form cannot be used here; `--output text|json` stays the same.
FORMAT_OPTION = typer.Option(OutputFormat.text, "--output", help="text or json")


def _render(result: dict[str, Any]) -> str:
    parts = ", ".join(f"{p['role']} {p['size'] // MiB} MiB" for p in result["partitions"])
    cache = "hit" if result["cache"]["hit"] else "miss (bootstrapped)"
    total = sum(result["seconds"].values())
    return "\n".join(
        [
            f"built {result['output']}",
            f"  Debian {result['release']}, generation {result['generation']}, "
            f"agent {result['agent']}{', specialized' if result['specialized'] else ''}",
            f"  kernel {result['kernel']}",
            f"  {result['virtual_size'] // MiB} MiB virtual ({result['partition_table']}: {parts}),"
            f" {result['allocated_bytes'] // MiB} MiB on disk",
            f"  bootstrap cache {cache}; {total:.1f} s",
        ]
    )


def register(app: typer.Typer) -> None:
    build_app = typer.Typer(help="Build Azure-ready Linux images.", no_args_is_help=True)
    app.add_typer(build_app, name="build")

    @build_app.command("debian")
    def debian(
        output_path: Path = typer.Option(..., "-o", "--out", help="the .vhd to write"),
        release: str = typer.Option("bookworm", "--release", help="Debian suite"),
        generation: str = typer.Option("both", "--generation", help="1, 2 or both"),
        agent: str = typer.Option("cloud-init", "--agent", help="cloud-init, waagent or none"),
        size: str = typer.Option("4G", "--size", help="virtual size, whole MiB (e.g. 4G)"),
        packages: list[str] = typer.Option(
            [], "--packages", help="extra packages (repeat or comma-separate)"
        ),
        specialized: bool = typer.Option(
            False, "--specialized", help="bake hostname, user and key; no provisioning"
        ),
        hostname: str | None = typer.Option(None, "--hostname", help="with --specialized"),
        user: str | None = typer.Option(None, "--user", help="with --specialized"),
        ssh_key: str | None = typer.Option(
            None, "--ssh-key", help="with --specialized: a public key line or a .pub file"
        ),
        mirror: str | None = typer.Option(
            None, "--mirror", help="Debian archive URI (default: the host's apt sources)"
        ),
        cache_dir: Path | None = typer.Option(
            None, "--cache-dir", help="bootstrap cache (default $AZIMG_CACHE or ~/.cache/azimg)"
        ),
        refresh: bool = typer.Option(False, "--refresh", help="bootstrap again, update cache"),
        fmt: OutputFormat = FORMAT_OPTION,
    ) -> None:
        """Build a Debian image for Azure: cloud kernel, agent, GRUB for BIOS and/or UEFI."""
        from azimg.errors import InvalidArgument
        from azimg.image.build.builder import build
        from azimg.image.build.spec import Account, Agent, BuildSpec, Generation, parse_size

        try:
            gen = Generation(generation)
        except ValueError:
            raise InvalidArgument(f"--generation {generation!r}: use 1, 2 or both") from None
        try:
            agt = Agent(agent)
        except ValueError:
            raise InvalidArgument(f"--agent {agent!r}: use cloud-init, waagent or none") from None
        account = None
        given = {"--hostname": hostname, "--user": user, "--ssh-key": ssh_key}
        if specialized:
            missing = [k for k, v in given.items() if not v]
            if missing:
                raise InvalidArgument(f"--specialized needs {', '.join(missing)}")
            assert hostname and user and ssh_key
            key_text = ssh_key
            if Path(ssh_key).is_file():
                key_text = Path(ssh_key).read_text().strip()
            account = Account(hostname, user, key_text)
        elif any(given.values()):
            raise InvalidArgument("--hostname, --user and --ssh-key only go with --specialized")
        extra = tuple(p.strip() for item in packages for p in item.split(",") if p.strip())
        spec = BuildSpec(
            output=output_path.absolute(),
            release=release,
            generation=gen,
            agent=agt,
            size=parse_size(size),
            packages=extra,
            specialized=account,
            mirror=mirror,
            cache_dir=cache_dir,
        )
        show = fmt is OutputFormat.text or sys.stderr.isatty()

        def report(stage: str) -> None:
            if show and stage != "done":
                print(f"azimg build: {stage} ...", file=sys.stderr, flush=True)

        result = build(spec, report=report, refresh=refresh)
        emit(result.to_json(), fmt, _render)
