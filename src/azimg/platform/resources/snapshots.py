"""Snapshots: full copies of a disk (Copy), or of a blob (Import), or uploaded directly.

A snapshot is a disk-shaped resource with its own SKUs and no attachment, so every rule is
the disk module's, called with ``SNAPSHOT`` (see ``disks.py``); this module names what the
registry declares for the snapshot type. Its jobs are the disk jobs (``disks.JOBS``), which
read the kind from the operation's resource id.
"""

from __future__ import annotations

from collections.abc import Mapping

from azimg.platform.jobs import JobSpec
from azimg.platform.resources import disks
from azimg.platform.resources.disks import SNAPSHOT, Disk
from azimg.platform.store import Store

Snapshot = Disk
TYPE = SNAPSHOT.type
JOBS: Mapping[str, JobSpec] = {}
resolve_snapshot = disks.resolve_snapshot


def get_by_id(store: Store, rid: str) -> Snapshot:
    return disks.get_by_id(store, rid, SNAPSHOT)
