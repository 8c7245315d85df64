"""The platform checks every image it is given (issue 11): `azimg check`'s rules on the bytes.

``record(store, rid)`` runs from the job that finishes a resource — endGetAccess of an upload
disk, the copy of a managed image, the replication of a gallery version — never in a request.
It resolves the resource's bytes through ``sources`` and keeps the report beside it, so
"no provisioning agent" is visible at upload time, not after a 20-minute
OSProvisioningTimedOut.

Decisions:
- The findings document lives at ``/azimg/imagechecks<resource id>``, outside
  ``/subscriptions/...``: generic listings, resource-group contents and RG delete never see it.
  A resource re-created under the same id gets a new check that replaces the old one.
- ``record`` never raises: a check that cannot run (bytes not on a local path, an unreadable
  image) is recorded with its reason, and the job that called it carries on.
- Generalized unless the source says Specialized (an uploaded disk has no OS state; a
  generalized image is what most uploads become).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azimg.image.check import check_image
from azimg.image.rules import CheckContext
from azimg.platform.ids import utc_now
from azimg.platform.sources import resolve
from azimg.platform.store import Document, Store

log = logging.getLogger(__name__)

TYPE = "Azimg/imageChecks"
PREFIX = "/azimg/imagechecks"


def doc_id(resource_id: str) -> str:
    return PREFIX + resource_id.lower()


@dataclass(frozen=True)
class ImageCheck:
    resource_id: str
    checked_at: str
    generalized: bool
    summary: Mapping[str, Any] = field(default_factory=dict)
    findings: tuple[Mapping[str, Any], ...] = ()
    error: str | None = None  # why the check could not run

    @property
    def blockers(self) -> list[Mapping[str, Any]]:
        return [f for f in self.findings if f["severity"] == "blocker" and f["status"] == "fail"]

    def to_json(self) -> dict[str, Any]:
        return {
            "resourceId": self.resource_id,
            "checkedAt": self.checked_at,
            "generalized": self.generalized,
            "summary": dict(self.summary),
            "error": self.error,
            "findings": [dict(f) for f in self.findings],
        }


def record(store: Store, resource_id: str, *, region: str | None = None) -> ImageCheck:
    """Check the resource's OS disk bytes and keep the findings (never raises)."""
    generalized = True
    try:
        source = resolve(store, resource_id, region=region)
        generalized = source.os_state != "Specialized"
        disk = source.disk()
        path = store.blobs.local_path(disk.blob) if disk.format == "vhd" else None
        if path is None:
            raise RuntimeError("the bytes are not in a local blob store")
        gen = (source.hyper_v_generation or "")[-1:] or None
        report = check_image(path, CheckContext(generalized=generalized, generation=gen))
        doc = report.to_json()
        result = ImageCheck(
            resource_id, utc_now(), generalized, doc["summary"], tuple(doc["findings"])
        )
    except Exception as err:  # a check must never fail the job that finishes the resource
        log.warning("image check of %s could not run: %s", resource_id, err)
        result = ImageCheck(resource_id, utc_now(), generalized, error=f"{err}")
    store.meta.put(Document(id=doc_id(resource_id), type=TYPE, body=result.to_json()))
    return result


def get(store: Store, resource_id: str) -> ImageCheck | None:
    doc = store.meta.get(doc_id(resource_id))
    if doc is None:
        return None
    b = doc.body
    return ImageCheck(
        resource_id=b["resourceId"],
        checked_at=b["checkedAt"],
        generalized=b["generalized"],
        summary=b.get("summary") or {},
        findings=tuple(b.get("findings") or ()),
        error=b.get("error"),
    )
