"""Builders shared by the API tests: VHDs made by `azimg convert`, page-blob uploads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
PAGE_CHUNK = 4 * MIB


def make_vhd(directory: Path, *, mib: int = 24, seed: int = 1, name: str = "disk") -> Path:
    """A fixed VHD (``mib`` MiB of data + footer) converted by azimg from a raw image with
    recognisable, partly sparse content."""
    from azimg.disk.convert import convert

    raw = directory / f"{name}.raw"
    with open(raw, "wb") as fh:
        fh.truncate(mib * MIB)
        for i in range(0, mib, 3):  # every third MiB has data; the rest stays a hole
            fh.seek(i * MIB)
            fh.write(bytes([(seed + i) % 251 + 1]) * 4096 + os.urandom(4096))
    vhd = directory / f"{name}.vhd"
    convert(raw, vhd)
    raw.unlink()
    return vhd


def upload_pages(sas_url: str, path: Path, *, skip_zero: bool = True) -> int:
    """Upload ``path`` with azure-storage-blob's BlobClient page-blob calls, 4 MiB per Put
    Page, skipping all-zero chunks as azcopy does. Returns the bytes sent."""
    from azure.storage.blob import BlobClient

    client = BlobClient.from_blob_url(sas_url)
    sent = 0
    with open(path, "rb") as fh:
        offset = 0
        while chunk := fh.read(PAGE_CHUNK):
            if not (skip_zero and not any(chunk)):
                client.upload_page(chunk, offset=offset, length=len(chunk))
                sent += len(chunk)
            offset += len(chunk)
    return sent


def download(sas_url: str) -> bytes:
    from azure.storage.blob import BlobClient

    return BlobClient.from_blob_url(sas_url).download_blob(max_concurrency=2).readall()


def upload_disk(compute: Any, resource_group: str, name: str, vhd: Path, **props: Any) -> Any:
    """The whole direct-upload flow: create (Upload), grant Write, Put Pages, revoke."""
    size = vhd.stat().st_size
    compute.disks.begin_create_or_update(
        resource_group,
        name,
        {
            "location": "eastus",
            "sku": {"name": "Standard_LRS"},
            "properties": {
                "osType": "Linux",
                "hyperVGeneration": "V2",
                **props,
                "creationData": {"createOption": "Upload", "uploadSizeBytes": size},
            },
        },
    ).result()
    access = compute.disks.begin_grant_access(
        resource_group, name, {"access": "Write", "durationInSeconds": 3600}
    ).result()
    upload_pages(access.access_sas, vhd)
    compute.disks.begin_revoke_access(resource_group, name).result()
    return compute.disks.get(resource_group, name)
