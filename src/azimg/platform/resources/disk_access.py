"""Disk and snapshot access: beginGetAccess (a SAS for reading, or writing an Upload disk)
and endGetAccess (the SAS ends; an upload ends only with a VHD Azure would accept).

diskState (reference §4.4): ReadyToUpload → (grant Write) ActiveUpload → (revoke, valid
footer) Unattached; Unattached → (grant Read) ActiveSAS → (revoke) Unattached; a deallocated
VM's disk stays Reserved while read. State changes go through ``disks.change_if_unchanged``
(compare-and-set: a grant racing an attach loses with 409, never overwrites it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azimg.disk.vhd import FOOTER_COOKIE, Footer, azure_footer_problems
from azimg.platform import sas
from azimg.platform.errors import Conflict, InvalidParameter, InvalidVhd, OperationNotAllowed
from azimg.platform.ids import ResourceId
from azimg.platform.jobs import Jobs, JobSpec
from azimg.platform.resources import image_checks
from azimg.platform.resources.common import enum_value
from azimg.platform.resources.disks import (
    DISK,
    FOOTER,
    SNAPSHOT,
    Disk,
    Kind,
    change_if_unchanged,
    get,
)
from azimg.platform.store import Operation, Store

JOB_REVOKE = "disks.revoke"
JOB_GRANT = "disks.grant"


# --- access ----------------------------------------------------------------------------------


def grant_access(
    store: Store,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    access: Any,
    duration_seconds: Any,
    blob_base_url: str,
    jobs: Jobs,
    kind: Kind = DISK,
) -> Operation:
    """beginGetAccess: a SAS URL for reading (any idle disk) or writing (an Upload disk),
    as a finished operation whose output is the ``accessSAS``."""
    d = get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name, kind=kind
    )
    level = enum_value(access, ("None", "Read", "Write"), target="access")
    if level == "None":
        raise InvalidParameter("The access level 'None' cannot be granted.", target="access")
    sas.check_duration(duration_seconds)
    if d.provisioning_state != "Succeeded":
        raise OperationNotAllowed(
            f"The {kind.noun} '{d.name}' is {d.provisioning_state}; access cannot be granted."
        )
    if level == "Write":
        if d.disk_state not in ("ReadyToUpload", "ActiveUpload"):
            raise OperationNotAllowed(
                f"Write access can only be granted to a {kind.noun} created for upload "
                f"(diskState ReadyToUpload); '{d.name}' is {d.disk_state}.",
                target="access",
            )
        new_state, perms = "ActiveUpload", "rw"
    else:
        if d.disk_state in ("ReadyToUpload", "ActiveUpload"):
            raise OperationNotAllowed(
                f"Read access cannot be granted to '{d.name}' while it is {d.disk_state}; "
                "upload it and call endGetAccess first.",
                target="access",
            )
        if d.disk_state in ("Attached", "Frozen", "ActiveSASFrozen"):
            raise OperationNotAllowed(
                f"The {kind.noun} '{d.name}' is attached to a running VM ({d.managed_by}); "
                "stop (deallocate) the VM first."
            )
        new_state, perms = ("ActiveSAS" if d.disk_state != "Reserved" else "Reserved"), "r"
    sas.revoke_grant(store, d.grant_id)
    grant = sas.create_grant(
        store,
        resource_id=d.id,
        blob=d.blob,
        permissions=perms,
        duration_seconds=duration_seconds,
    )
    try:
        change_if_unchanged(store, d, disk_state=new_state, grant_id=grant.id)
    except Conflict:
        sas.revoke_grant(store, grant.id)
        raise
    return jobs.record_done(
        JOB_GRANT,
        action="post",
        resource_id=d.id,
        location=d.location,
        output={"accessSAS": sas.url(store, grant, blob_base_url=blob_base_url)},
    )


def _vhd_problem(store: Store, d: Disk) -> str | None:
    size = store.blobs.size(d.blob)
    raw = store.blobs.read(d.blob, size - FOOTER, FOOTER)
    if raw[:8] != FOOTER_COOKIE:
        return (
            f"The specified cookie value in VHD footer indicates that disk '{d.name}' with blob "
            f"'{d.blob.key}' is not a supported VHD. Disk is expected to have cookie value "
            "'conectix'."
        )
    footer = Footer.unpack(raw, at=size - FOOTER, verify=False)
    problems = azure_footer_problems(footer, size)
    if problems:
        return f"The VHD uploaded to disk '{d.name}' is not a supported VHD: " + "; ".join(problems)
    return None


def revoke_access(
    store: Store, *, subscription_id: str, resource_group: str, name: str, kind: Kind = DISK
) -> Disk:
    """endGetAccess: end the SAS; an upload ends only with a VHD Azure would accept."""
    d = get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name, kind=kind
    )
    # Writes admitted before this point land before the footer check; later ones are refused.
    with sas.WRITES.closed(d.id):
        if d.disk_state == "ActiveUpload":
            problem = _vhd_problem(store, d)
            if problem:
                raise InvalidVhd(problem)
            new_state = "Unattached"
        elif d.disk_state == "ActiveSAS":
            new_state = "Unattached"
        else:
            new_state = d.disk_state
        sas.revoke_grant(store, d.grant_id)
        return change_if_unchanged(store, d, disk_state=new_state, grant_id=None)


def run_revoke(store: Store, op: Operation) -> None:
    """endGetAccess as a job: the footer check reads the blob, and Azure reports InvalidVhd
    through the operation."""
    parts = ResourceId.parse(op.resource_id)
    kind = DISK if parts.type.lower() == DISK.type.lower() else SNAPSHOT
    where = {"subscription_id": parts.subscription, "resource_group": parts.resource_group}
    upload_ends = get(store, **where, name=parts.name, kind=kind).disk_state == "ActiveUpload"
    d = revoke_access(store, **where, name=parts.name, kind=kind)
    if upload_ends:  # the platform checks every image it is given (image_checks.py)
        image_checks.record(store, d.id)
    return None


def begin_revoke_access(
    store: Store,
    *,
    jobs: Jobs,
    subscription_id: str,
    resource_group: str,
    name: str,
    kind: Kind = DISK,
) -> Operation:
    """endGetAccess as an operation (the footer check reads the whole upload's end)."""
    d = get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=name, kind=kind
    )
    return jobs.submit(JOB_REVOKE, action="post", resource_id=d.id, location=d.location)


#: Declared with the disk and snapshot types in ``platform/registry.py``.
JOBS: Mapping[str, JobSpec] = {JOB_REVOKE: JobSpec(run=run_revoke, resumable=True)}
