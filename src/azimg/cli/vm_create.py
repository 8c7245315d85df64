"""`azimg vm create NAME -g RG --image ID`: a VM from a gallery version (or managed image)
through the same client as `upload`/`publish` — the last step of the image-maker's loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azimg.cli.output import OutputFormat, emit
from azimg.errors import InvalidArgument


def image_id(conn: Any, resource_group: str, image: str) -> str:
    """A full ARM id as is; ``GALLERY/DEFINITION[/VERSION]`` in the VM's group otherwise."""
    if image.startswith("/subscriptions/"):
        return image
    parts = image.split("/")
    if len(parts) not in (2, 3):
        raise InvalidArgument(f"--image {image!r}: give an ARM id or GALLERY/DEFINITION[/VERSION]")
    base = (
        f"/subscriptions/{conn.subscription_id}/resourceGroups/{resource_group}/providers/"
        f"Microsoft.Compute/galleries/{parts[0]}/images/{parts[1]}"
    )
    return base + (f"/versions/{parts[2]}" if len(parts) == 3 else "")


def create(
    conn: Any,
    name: str,
    *,
    resource_group: str,
    image: str,
    admin_username: str,
    ssh_public_key: Path,
    computer_name: str | None,
    size: str,
    location: str | None,
) -> dict[str, Any]:
    compute = conn.compute()
    where = location or conn.resource_group_location(compute, resource_group)
    try:
        key = ssh_public_key.read_text().strip()
    except OSError as err:
        raise InvalidArgument(f"--ssh-key-value {ssh_public_key}: {err.strerror}") from None
    body = {
        "location": where,
        "properties": {
            "hardwareProfile": {"vmSize": size},
            "storageProfile": {
                "imageReference": {"id": image_id(conn, resource_group, image)},
                "osDisk": {"createOption": "FromImage", "deleteOption": "Delete"},
            },
            "osProfile": {
                "computerName": computer_name or name,
                "adminUsername": admin_username,
                "linuxConfiguration": {
                    "disablePasswordAuthentication": True,
                    "ssh": {
                        "publicKeys": [
                            {
                                "path": f"/home/{admin_username}/.ssh/authorized_keys",
                                "keyData": key,
                            }
                        ]
                    },
                },
            },
        },
    }
    vm = compute.virtual_machines.begin_create_or_update(resource_group, name, body).result()
    view = compute.virtual_machines.instance_view(resource_group, name)
    return {
        "id": vm.id,
        "provisioningState": vm.provisioning_state,
        "statuses": [s.code for s in view.statuses or []],
    }


def register_create(vm_app: Any) -> None:
    import typer

    @vm_app.command("create")
    def create_cmd(
        name: str = typer.Argument(..., help="VM name"),
        resource_group: str = typer.Option(..., "--resource-group", "-g"),
        image: str = typer.Option(
            ...,
            "--image",
            help="an ARM id (gallery version or definition, managed image), or "
            "GALLERY/DEFINITION or GALLERY/DEFINITION/VERSION in the VM's group",
        ),
        admin_username: str = typer.Option(..., "--admin-username"),
        ssh_key_value: Path = typer.Option(..., "--ssh-key-value", help="public key file"),
        computer_name: str | None = typer.Option(None, "--computer-name"),
        size: str = typer.Option("Standard_B2s", "--size"),
        location: str | None = typer.Option(None, "--location", "-l"),
        data_dir: Path | None = typer.Option(None, "--data-dir"),
        port: int | None = typer.Option(None, "--port"),
        output: OutputFormat = typer.Option(OutputFormat.text, "--output", "-o"),
    ) -> None:
        """Create a VM from an image and wait until it is provisioned."""
        from azimg.cli.arm_client import connect

        result = create(
            connect(data_dir, port),
            name,
            resource_group=resource_group,
            image=image,
            admin_username=admin_username,
            ssh_public_key=ssh_key_value,
            computer_name=computer_name,
            size=size,
            location=location,
        )
        emit(result, output, lambda r: f"{r['provisioningState']}: {r['id']}")
