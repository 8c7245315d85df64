"""`azimg publish IMAGE -g RG --gallery G --definition D --version X.Y.Z`: image → gallery version.

Order matters, so a mistake costs seconds, not an upload: the definition is read (or created
with ``--create-definition``) and its rules are checked against the image *before a byte is
sent* — the definition's osState against check's verdict for that state (a Generalized
definition with deprovision blockers is refused), its hyperVGeneration against the boot modes
check found, osType Linux. Then upload (``azimg upload``'s resumable flow, disk
``<definition>-<version>``), the version from that disk, and one progress line per replicating
region until every region is Completed. ``--from-vm NAME`` captures a VM instead: deallocate,
generalize through the API, then the version from the VM.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import typer

from azimg.cli.output import OutputFormat, emit, progress_later
from azimg.cli.upload import DATA_DIR, OUTPUT, PORT
from azimg.errors import AzimgError, InvalidArgument

VERSION = re.compile(r"^\d+\.\d+\.\d+$")
REGION = re.compile(r"^([A-Za-z0-9]+)(?:=(\d+))?$")
REPLICATION_TIMEOUT = 3600.0


class Refused(AzimgError):
    """The image breaks the definition's rules; nothing was uploaded."""

    exit_code = 1


def target_regions(specs: list[str]) -> list[dict[str, Any]]:
    """``eastus westus=2`` → targetRegions entries (name, regionalReplicaCount)."""
    out = []
    for spec in specs:
        for part in spec.replace(",", " ").split():
            m = REGION.match(part)
            if m is None:
                raise InvalidArgument(f"--target-regions: {part!r} is not REGION or REGION=COUNT")
            entry: dict[str, Any] = {"name": m.group(1)}
            if m.group(2):
                entry["regionalReplicaCount"] = int(m.group(2))
            out.append(entry)
    return out


def check_against_definition(image: Path, definition: Any, *, force: bool) -> list[str]:
    """The definition's rules against check's verdict; raises Refused before any upload."""
    from azimg.image.check import check_image
    from azimg.image.rules import CheckContext

    if (definition.os_type or "Linux") != "Linux":
        raise Refused(f"definition is for {definition.os_type}; azimg publishes Linux images")
    generalized = (definition.os_state or "Generalized") == "Generalized"
    gen = definition.hyper_v_generation or "V1"
    report = check_image(image, CheckContext(generalized=generalized, generation=gen[-1]))
    problems = []
    gens = report.generations
    if gens is not None and not (gens.gen2 if gen == "V2" else gens.gen1):
        why = gens.gen2_why if gen == "V2" else gens.gen1_why
        problems.append(f"the definition is {gen} but the image does not boot it ({why})")
    blockers = [f"{f.rule} {f.title}" for f in report.blockers]
    if blockers:
        state = "Generalized" if generalized else "Specialized"
        problems.append(f"check as {state}: " + "; ".join(blockers[:6]))
    if problems and not force:
        raise Refused(
            "the image does not fit definition "
            f"'{definition.name}' (nothing uploaded): " + " | ".join(problems)
        )
    return [f"published despite: {p} (--force)" for p in problems]


def _definition(
    compute: Any,
    rg: str,
    gallery: str,
    name: str,
    *,
    create: bool,
    identifier: tuple[str | None, str | None, str | None],
    generation: str | None,
    os_state: str,
    location: str,
) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return compute.gallery_images.get(rg, gallery, name)
    except ResourceNotFoundError:
        if not create:
            raise InvalidArgument(
                f"gallery image definition '{name}' not found in gallery '{gallery}'; "
                "pass --create-definition --publisher P --offer O --sku S to create it"
            ) from None
    if not all(identifier):
        raise InvalidArgument("--create-definition needs --publisher, --offer and --sku")
    try:
        compute.galleries.get(rg, gallery)
    except ResourceNotFoundError:
        compute.galleries.begin_create_or_update(rg, gallery, {"location": location}).result()
    publisher, offer, sku = identifier
    body = {
        "location": location,
        "properties": {
            "osType": "Linux",
            "osState": os_state,
            "hyperVGeneration": generation or "V2",
            "identifier": {"publisher": publisher, "offer": offer, "sku": sku},
        },
    }
    return compute.gallery_images.begin_create_or_update(rg, gallery, name, body).result()


def _wait_replication(
    compute: Any, rg: str, gallery: str, definition: str, version: str, *, show: bool
) -> dict[str, str]:
    """Poll the version's replication status, one bar per region on a terminal."""
    deadline = time.monotonic() + REPLICATION_TIMEOUT
    bar = None
    tasks: dict[str, Any] = {}
    if show and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn

        bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            TaskProgressColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        bar.start()
    try:
        while True:
            got = compute.gallery_image_versions.get(
                rg, gallery, definition, version, expand="ReplicationStatus"
            )
            status = got.replication_status
            states = {s.region: s.state for s in status.summary}
            if bar is not None:
                for s in status.summary:
                    if s.region not in tasks:
                        tasks[s.region] = bar.add_task(f"replicating to {s.region}", total=100)
                    bar.update(tasks[s.region], completed=s.progress or 0)
            if status.aggregated_state in ("Completed", "Failed"):
                return states
            if time.monotonic() > deadline:
                raise AzimgError(f"replication still {status.aggregated_state}: {states}")
            time.sleep(0.5)
    finally:
        if bar is not None:
            bar.stop()


def publish(
    conn: Any,
    image: Path | None,
    *,
    resource_group: str,
    gallery: str,
    definition: str,
    version: str,
    regions: list[dict[str, Any]],
    create_definition: bool,
    identifier: tuple[str | None, str | None, str | None],
    from_vm: str | None,
    force: bool,
    threads: int,
    show_progress: bool,
    progress: Any = None,
    location: str | None = None,
) -> dict[str, Any]:
    from azure.core.exceptions import ResourceNotFoundError

    from azimg.cli import uploader

    started = time.monotonic()
    if not VERSION.match(version):
        raise InvalidArgument(f"version {version!r} must be MAJOR.MINOR.PATCH (e.g. 1.0.0)")
    if (image is None) == (from_vm is None):
        raise InvalidArgument("give IMAGE or --from-vm NAME (one of them)")
    compute = conn.compute()
    group_at = conn.resource_group_location(compute, resource_group, create_in=location)
    location = location or group_at
    generation = None
    if image is not None and create_definition:
        generation, _ = uploader.preflight(image, None, force=True)
    d = _definition(
        compute,
        resource_group,
        gallery,
        definition,
        create=create_definition,
        identifier=identifier,
        generation=generation,
        os_state="Generalized",
        location=location,
    )
    try:
        existing = compute.gallery_image_versions.get(resource_group, gallery, definition, version)
    except ResourceNotFoundError:
        existing = None
    if existing is not None:
        raise InvalidArgument(
            f"version {version} of '{definition}' already exists ({existing.id}); "
            "publish a new version number"
        )
    warnings: list[str] = []
    bytes_sent = 0
    if image is not None:
        warnings = check_against_definition(image, d, force=force)
        up = uploader.upload(
            conn,
            image,
            resource_group=resource_group,
            name=f"{definition}-{version}",
            location=location,
            hyper_v_generation=d.hyper_v_generation or "V1",
            force=True,
            threads=threads,
            progress=progress,
            checked=False,
        )
        bytes_sent = up.bytes_sent
        storage: dict[str, Any] = {"osDiskImage": {"source": {"id": up.id}}}
        source_id = up.id
    else:
        assert from_vm is not None
        vm = compute.virtual_machines.get(resource_group, from_vm)
        compute.virtual_machines.begin_deallocate(resource_group, from_vm).result()
        compute.virtual_machines.generalize(resource_group, from_vm)
        storage = {"source": {"id": vm.id}}
        source_id = vm.id
    profile: dict[str, Any] = {"targetRegions": regions} if regions else {}
    body = {
        "location": d.location,
        "properties": {"publishingProfile": profile, "storageProfile": storage},
    }
    made = compute.gallery_image_versions.begin_create_or_update(
        resource_group, gallery, definition, version, body
    ).result()
    states = _wait_replication(
        compute, resource_group, gallery, definition, version, show=show_progress
    )
    failed = [r for r, s in states.items() if s != "Completed"]
    if failed:
        raise AzimgError(f"replication failed in {', '.join(failed)}: {states} ({made.id})")
    return {
        "id": made.id,
        "source": source_id,
        "regions": states,
        "bytesSent": bytes_sent,
        "seconds": round(time.monotonic() - started, 3),
        "warnings": warnings,
    }


def render(r: dict[str, Any]) -> str:
    lines = [f"warning: {w}" for w in r["warnings"]]
    regions = ", ".join(f"{k} {v}" for k, v in r["regions"].items())
    lines.append(f"replicas: {regions}; {r['seconds']:.1f} s")
    lines.append(r["id"])
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("publish", context_settings={"allow_extra_args": True})
    def publish_cmd(
        ctx: typer.Context,
        image: Path | None = typer.Argument(None, help="image to publish (omit with --from-vm)"),
        resource_group: str = typer.Option(..., "--resource-group", "-g"),
        gallery: str = typer.Option(..., "--gallery"),
        definition: str = typer.Option(..., "--definition", help="gallery image definition"),
        version: str = typer.Option(..., "--version", help="MAJOR.MINOR.PATCH"),
        target_region: list[str] = typer.Option(
            [],
            "--target-regions",
            help="REGION or REGION=REPLICAS, several after one flag (eastus westus=2)",
        ),
        create_definition: bool = typer.Option(False, "--create-definition"),
        publisher: str | None = typer.Option(None, "--publisher"),
        offer: str | None = typer.Option(None, "--offer"),
        sku: str | None = typer.Option(None, "--sku"),
        from_vm: str | None = typer.Option(None, "--from-vm", help="capture this VM instead"),
        location: str | None = typer.Option(
            None,
            "--location",
            "-l",
            help="default: the group's; creates a missing group",
        ),
        force: bool = typer.Option(False, "--force", help="publish despite check's findings"),
        threads: int = typer.Option(4, "--threads", help="parallel Put Page requests"),
        data_dir: Path | None = DATA_DIR,
        port: int | None = PORT,
        output: OutputFormat = OUTPUT,
    ) -> None:
        """Publish an image (or a VM) as a gallery image version, replicated and checked."""
        from azimg.cli.arm_client import connect

        if ctx.args and not target_region:
            raise InvalidArgument(f"unexpected arguments: {' '.join(ctx.args)}")
        regions = target_regions([*target_region, *ctx.args])  # eastus westus=2 after one flag
        conn = connect(data_dir, port)
        with progress_later("uploading", enabled=output is OutputFormat.text) as start:
            result = publish(
                conn,
                image,
                resource_group=resource_group,
                gallery=gallery,
                definition=definition,
                version=version,
                regions=regions,
                create_definition=create_definition,
                identifier=(publisher, offer, sku),
                from_vm=from_vm,
                force=force,
                threads=threads,
                show_progress=output is OutputFormat.text,
                progress=start,
                location=location,
            )
        emit(result, output, render)
