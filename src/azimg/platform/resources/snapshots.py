"""Snapshots: full copies of a disk (Copy), or of a blob (Import), or uploaded directly.

A snapshot is a disk-shaped resource with its own SKUs and no attachment, so every rule is
the disk module's, called with ``SNAPSHOT`` (see ``disks.py``). This module names the
operations for the snapshot type.
"""

from __future__ import annotations

from typing import Any

from azimg.platform.resources import disks
from azimg.platform.resources.disks import SNAPSHOT, AccessUri, Disk, Fill
from azimg.platform.store import Store

Snapshot = Disk
TYPE = SNAPSHOT.type


def create_or_update(store: Store, **kwargs: Any) -> tuple[Snapshot, Fill | None]:
    return disks.create_or_update(store, kind=SNAPSHOT, **kwargs)


def update(store: Store, **kwargs: Any) -> Snapshot:
    return disks.update(store, kind=SNAPSHOT, **kwargs)


def get(store: Store, *, subscription_id: str, resource_group: str, name: str) -> Snapshot:
    return disks.get(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        kind=SNAPSHOT,
    )


def get_by_id(store: Store, rid: str) -> Snapshot:
    return disks.get_by_id(store, rid, SNAPSHOT)


def list_by_resource_group(
    store: Store, *, subscription_id: str, resource_group: str
) -> list[Snapshot]:
    return disks.list_by_resource_group(
        store, subscription_id=subscription_id, resource_group=resource_group, kind=SNAPSHOT
    )


def grant_access(store: Store, **kwargs: Any) -> AccessUri:
    return disks.grant_access(store, kind=SNAPSHOT, **kwargs)


def revoke_access(store: Store, **kwargs: Any) -> Snapshot:
    return disks.revoke_access(store, kind=SNAPSHOT, **kwargs)


def delete(store: Store, *, subscription_id: str, resource_group: str, name: str) -> bool:
    return disks.delete(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        kind=SNAPSHOT,
    )
