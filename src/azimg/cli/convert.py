"""`azimg convert SRC DST` and `azimg convert --in-place IMAGE`: any image → Azure-ready VHD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azimg.cli.output import OutputFormat, emit, progress_later
from azimg.errors import InvalidArgument


def human_size(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} bytes"


def render(result: dict[str, Any]) -> str:
    size = result["virtual_size"]
    lines = [
        f"{result['source']} ({result['input_format']}) -> "
        + ("itself" if result["in_place"] else result["destination"])
        + f": fixed VHD, virtual size {size} bytes ({human_size(size)})"
    ]
    if result["rounded_up"]:
        lines.append(
            f"  rounded up from {result['input_size']} bytes to a whole MiB "
            f"(+{size - result['input_size']} bytes of zeros at the end)"
        )
    lines.append(
        f"  {result['method']}: {human_size(result['bytes_copied'])} copied in "
        f"{result['seconds']:.3f} s; file {result['file_size']} bytes, "
        f"{human_size(result['allocated_bytes'])} allocated"
    )
    for problem in result["azure_problems"]:
        lines.append(f"  Azure would refuse it: {problem}")
    return "\n".join(lines)


def convert_in_place(src: Path, output: OutputFormat) -> None:
    """``convert --in-place``: shared by the typer command and the typer-free fast path."""
    from azimg.disk.convert import make_fixed_in_place

    emit(make_fixed_in_place(src).to_json(), output, render)


def register(app: Any) -> None:
    import typer

    from azimg.cli.output import OUTPUT_OPTION

    @app.command()
    def convert(
        src: Path = typer.Argument(
            ..., help="Input image: raw, VHD, qcow2, VMDK or VHDX (detected by content)."
        ),
        dst: Path | None = typer.Argument(None, help="Output fixed VHD (omit with --in-place)."),
        in_place: bool = typer.Option(
            False,
            "--in-place",
            help="Make a raw file or mis-sized fixed VHD Azure-ready without copying.",
        ),
        sync: bool = typer.Option(
            False, "--sync", help="Flush the output to disk before it takes its name."
        ),
        output: OutputFormat = OUTPUT_OPTION,
    ) -> None:
        """Convert a disk image into an Azure-ready fixed VHD (size rounded up to a whole MiB)."""
        from azimg.disk.convert import convert as convert_image

        if in_place:
            if dst is not None:
                raise InvalidArgument("--in-place changes SRC itself; give no DST")
            convert_in_place(src, output)
            return
        if dst is None:
            raise InvalidArgument("name the output: azimg convert SRC DST (or use --in-place)")
        with progress_later("converting", enabled=output is OutputFormat.text) as start:
            result = convert_image(src, dst, progress=start, sync=sync)
        emit(result.to_json(), output, render)
