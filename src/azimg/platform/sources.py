"""Where bytes come from: one model for every kind of source a new disk, image, version or VM
is made from (disk, snapshot, managed image, gallery version, a VM's OS disk; later data
disks and shared/community versions).

Each resource type that can be a source declares a ``Resolver`` in ``platform/registry.py``;
domain code calls ``resolve(store, rid, region=...)`` and never imports the module that owns
the source's type (that is what kept four resource modules in one import cycle). The registry
fills the table at import (``install``); nothing else writes it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from azimg.disk.clone import flatten
from azimg.errors import AzimgError
from azimg.platform.errors import DiskReadFailed, InvalidParameter
from azimg.platform.ids import ResourceId
from azimg.platform.store import BlobRef, Store

#: A VHD page blob is the disk's bytes followed by this footer.
VHD_FOOTER = 512


@dataclass(frozen=True)
class SourceDisk:
    """One disk image of a source: OS disk (``lun`` None) or a data disk."""

    lun: int | None
    blob: BlobRef  # a fixed VHD: ``size_bytes`` of data, then the 512-byte footer
    size_bytes: int  # the disk's size, footer excluded
    caching: str | None = None  # hostCaching, where the source says (gallery versions)
    source_id: str | None = None  # the disk/snapshot these bytes were taken from, if any
    # "qcow2": the OS disk of an allocated VM, a copy-on-write clone in use; copy it with
    # ``copy_disk`` (which flattens it), never byte for byte.
    format: str = "vhd"

    @property
    def blob_size(self) -> int:
        """The size of the fixed VHD these bytes are (or ``copy_disk`` makes of them)."""
        return self.size_bytes + VHD_FOOTER


def copy_disk(store: Store, disk: SourceDisk, dst: BlobRef) -> None:
    """``disk``'s bytes into ``dst`` as a fixed VHD: a blob copy, or a flatten of a VM's clone
    (read while the VM may run: crash-consistent, as a snapshot of a running disk on Azure).
    Raises ``DiskReadFailed`` when qemu-img cannot read the clone."""
    if disk.format == "vhd":
        store.blobs.copy(disk.blob, dst)
        return
    src_path, dst_path = store.blobs.local_path(disk.blob), store.blobs.local_path(dst)
    assert src_path is not None and dst_path is not None, "clones live in local blob stores"
    try:
        flatten(src_path, dst_path, in_use=True)
    except AzimgError as err:
        raise DiskReadFailed(disk=disk.source_id or disk.blob.key, reason=err) from None
    store.blobs.record_local_write(dst)


@dataclass(frozen=True)
class Source:
    """What a source holds: its bytes (in ``location``) and what it says about the OS.

    ``os_type`` / ``os_state`` / ``hyper_v_generation`` are None when the source does not say
    (a data disk; a disk has no OS state). ``id`` is the resource resolved (a concrete version
    for ``latest``); ``type`` its full type as registered, e.g. ``Microsoft.Compute/disks``.
    """

    id: str
    type: str
    location: str
    disks: tuple[SourceDisk, ...]  # OS disk first when there is one, then data disks by lun
    os_type: str | None = None
    os_state: str | None = None  # Generalized | Specialized
    hyper_v_generation: str | None = None
    unique_id: str | None = None  # a disk's or snapshot's uniqueId (Copy's sourceUniqueId)

    def disk(self, lun: int | None = None, *, target: str | None = None) -> SourceDisk:
        """The OS disk (``lun`` None) or the data disk at ``lun``; 400 when there is none."""
        for d in self.disks:
            if d.lun == lun:
                return d
        what = "an OS disk" if lun is None else f"a data disk at lun {lun}"
        raise InvalidParameter(f"The source '{self.id}' has no {what}.", target=target)


class Resolver(Protocol):
    """A type's answer for one of its resources: raise the usual 404 (``require_document``)
    when it does not exist, ``OperationNotAllowed`` when it cannot be read yet (Creating,
    ActiveUpload), and give the bytes in ``region`` when the type replicates (gallery
    versions); types that do not replicate ignore ``region``."""

    def __call__(self, store: Store, rid: str, *, region: str | None) -> Source: ...


_RESOLVERS: dict[str, Resolver] = {}


def install(resolvers: Mapping[str, Resolver]) -> None:
    """Called once by ``platform/registry.py``: the resolver of each full type (any case)."""
    _RESOLVERS.clear()
    _RESOLVERS.update({t.lower(): r for t, r in resolvers.items()})


def resolve(
    store: Store,
    rid: str,
    *,
    region: str | None = None,
    accept: Collection[str] | None = None,
    target: str | None = None,
) -> Source:
    """The source named by ``rid``. ``accept`` limits the types the caller takes (full type
    names, any case); a malformed id, a type outside ``accept`` or one no resolver serves is
    400 ``InvalidParameter`` on ``target``."""
    parsed = ResourceId.parse(rid, target=target)
    key = parsed.type.lower()
    allowed = {a.lower() for a in accept} if accept is not None else None
    resolver = _RESOLVERS.get(key)
    if resolver is None or (allowed is not None and key not in allowed):
        kinds = ", ".join(sorted(accept)) if accept else "a disk, snapshot, image or version"
        raise InvalidParameter(
            f"The source '{rid}' is of type '{parsed.type}'; expected {kinds}.", target=target
        )
    return resolver(store, rid, region=region)
