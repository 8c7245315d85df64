"""Gallery image versions (``Microsoft.Compute/galleries/images/versions``).

One module per reason to change:

- ``commands``  the typed requests (PUT, PATCH) the router builds from a body
- ``rules``     pure rules: names, target regions, source shape and match, latest, deletion
- ``model``     the resource dataclass, its stored document, reads and ``latest``
- ``capture``   what a new version captures from its source (via platform/sources.py)
- ``service``   create or update, PATCH, delete
- ``runner``    the replication run and the delete job (threads, progress, ETag writes)
- ``serving``   a version as the source of a disk or VM (the Completed replica in a region)

Replication's state machine is ``resources/replication.py``.
"""

from azimg.platform.resources.gallery_versions.commands import (
    DiskImageSpec,
    PublishingSpec,
    SafetySpec,
    StorageSpec,
    TargetRegionSpec,
    VersionPatch,
    VersionSpec,
)
from azimg.platform.resources.gallery_versions.model import (
    JOB_DELETE,
    JOB_REPLICATE,
    VERSION_TYPE,
    GalleryImageVersion,
    SourceDisk,
    display_region,
    get,
    get_by_id,
    latest,
    list_by_image,
    version_id,
)
from azimg.platform.resources.gallery_versions.runner import JOBS
from azimg.platform.resources.gallery_versions.service import (
    Put,
    begin_delete,
    create_or_update,
    finish_delete,
    update,
)
from azimg.platform.resources.gallery_versions.serving import resolve_version

__all__ = [
    "JOBS",
    "JOB_DELETE",
    "JOB_REPLICATE",
    "VERSION_TYPE",
    "DiskImageSpec",
    "GalleryImageVersion",
    "PublishingSpec",
    "Put",
    "SafetySpec",
    "SourceDisk",
    "StorageSpec",
    "TargetRegionSpec",
    "VersionPatch",
    "VersionSpec",
    "begin_delete",
    "create_or_update",
    "display_region",
    "finish_delete",
    "get",
    "get_by_id",
    "latest",
    "list_by_image",
    "resolve_version",
    "update",
    "version_id",
]
