"""`azimg info IMAGE`: format, sizes, footer fields and the container rules, pass or fail."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

import typer

from azimg.cli.output import OUTPUT_OPTION, OutputFormat, emit
from azimg.errors import AzimgError, InvalidArgument


def describe(path: Path) -> dict[str, Any]:
    """Everything `azimg info` shows, JSON-ready. Damage is reported in findings, not raised."""
    try:
        return _describe(path)
    except OSError as err:  # an I/O error part-way through reading
        raise AzimgError(f"reading {path} failed: {err.strerror or err}") from None


def _describe(path: Path) -> dict[str, Any]:
    from azimg.disk import qemu_img
    from azimg.disk.detect import ImageFormat, detect_format
    from azimg.disk.vhd import open_vhd, read_trailing_footer
    from azimg.image.rules.container import check_container

    try:
        if path.is_dir():
            raise InvalidArgument(f"{path} is a directory, not a disk image")
        fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as err:
        raise InvalidArgument(f"cannot open {path}: {err.strerror or err}") from None
    with fh:
        fmt = detect_format(fh)
        st = os.fstat(fh.fileno())
        out: dict[str, Any] = {
            "path": str(path),
            "format": str(fmt),
            "virtual_size": None,
            "file_size": st.st_size,
            "allocated_bytes": st.st_blocks * 512,
        }
        if fmt is ImageFormat.raw:
            out["virtual_size"] = st.st_size
        elif fmt.is_vhd:
            footer = read_trailing_footer(fh, verify=False)
            out["virtual_size"] = footer.current_size
            out["footer"] = footer.to_json()
            try:
                disk = open_vhd(fh)
            except AzimgError as err:
                out["problem"] = str(err)
            else:
                if disk.header is not None and disk.bat is not None:
                    out["dynamic_header"] = {
                        "table_offset": disk.header.table_offset,
                        "max_table_entries": disk.header.max_table_entries,
                        "block_size": disk.header.block_size,
                        "allocated_blocks": sum(1 for e in disk.bat.entries if e != 0xFFFFFFFF),
                    }
        else:
            try:
                facts = qemu_img.info(path, fmt.qemu_name)
            except AzimgError as err:
                out["problem"] = str(err)
            else:
                out["virtual_size"] = facts["virtual-size"]
                keep = ("cluster-size", "backing-filename", "encrypted", "dirty-flag")
                out["qemu_img_info"] = {k: facts[k] for k in keep if k in facts}
        findings = check_container(fh)
    out["findings"] = [f.to_json() for f in findings]
    out["azure_ready"] = not any(f.is_blocking for f in findings) and fmt.is_vhd
    return out


def render(info: dict[str, Any]) -> str:
    from azimg.cli.convert import human_size

    def sized(n: int | None) -> str:
        return "unknown" if n is None else f"{n} bytes ({human_size(n)})"

    lines = [
        f"{info['path']}: {info['format']}",
        f"  virtual size     {sized(info['virtual_size'])}",
        f"  file size        {sized(info['file_size'])}",
        f"  allocated        {sized(info['allocated_bytes'])}",
    ]
    if "problem" in info:
        lines.append(f"  problem          {info['problem']}")
    for section in ("footer", "dynamic_header", "qemu_img_info"):
        if section in info:
            lines.append(f"  {section.replace('_', ' ')}:")
            for key, value in info[section].items():
                lines.append(f"    {key:<20} {value}")
    lines.append("  container rules:")
    for f in info["findings"]:
        lines.append(
            f"    {f['status'].upper():<10} {f['rule']:<7} {f['severity']:<8} {f['title']}"
        )
        if f["status"] not in ("pass", "n/a"):
            for ev in f["evidence"]:
                lines.append(f"{'':<30}{ev['where']}: {ev['detail']}")
            if f["fix"]:
                lines.append(f"{'':<30}fix: {f['fix']}")
    verdict = "Azure-ready" if info["azure_ready"] else "NOT Azure-ready"
    lines.append(f"  verdict: {verdict}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command()
    def info(
        image: Path = typer.Argument(..., help="Disk image (format detected by content)."),
        output: OutputFormat = OUTPUT_OPTION,
    ) -> None:
        """Show an image's format, sizes, footer and the container rules Azure applies."""
        emit(describe(image), output, render)
