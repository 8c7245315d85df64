"""Snapshots over HTTP: the disk routes (same verbs, bodies and LRO codes) for snapshots."""

from __future__ import annotations

from typing import Any

from azimg.platform.arm.disks import build_router, public
from azimg.platform.resources import snapshots
from azimg.platform.resources.disks import SNAPSHOT
from azimg.platform.store import Store


def render(store: Store, rid: str) -> dict[str, Any]:
    return public(snapshots.get_by_id(store, rid))


router = build_router(SNAPSHOT, "snapshots")
