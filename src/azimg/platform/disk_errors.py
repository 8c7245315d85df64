"""Client-visible errors of disks and snapshots: one class per failure reason, each a
template filled at the raise site (``raise DiskSizeOutOfRange(size=n, max=MAX)``); code and
HTTP status come from the second base in ``errors.py`` (``arm/errors.py`` maps by MRO).
A leaf: it imports only ``errors``.
"""

from azimg.platform.errors import (
    BadRequest,
    InvalidParameter,
    NotImplementedFeature,
    OperationNotAllowed,
    TemplatedError,
)


class MissingRequiredParameter(TemplatedError, InvalidParameter):
    template = "Required parameter '{parameter}' is missing (null)."


class DiskSizeOutOfRange(TemplatedError, InvalidParameter):
    template = "The value {size} of diskSizeGB is out of range; it must be 1 to {max}."
    target = "properties.diskSizeGB"


class UploadSizeNotMiBAligned(TemplatedError, BadRequest):
    template = (
        "The upload size in bytes {size} - 512 bytes for the VHD footer ({data} in this case) "
        "must be a multiple of MiB."
    )
    target = "properties.creationData.uploadSizeBytes"


class UploadSizeOutOfRange(TemplatedError, BadRequest):
    template = (
        "The upload size in bytes {size} is outside the supported range {min} (20 MiB + 512) "
        "to {max} (32 TiB + 512)."
    )
    target = "properties.creationData.uploadSizeBytes"


class AttachOnlyForVirtualMachines(TemplatedError, InvalidParameter):
    template = "createOption 'Attach' is only valid for a virtual machine's disks."
    target = "properties.creationData.createOption"


class CreateOptionNotImplemented(TemplatedError, NotImplementedFeature):
    template = "createOption '{option}' is not implemented for {noun}s by azimg."
    target = "properties.creationData.createOption"


class ResizeWhileCopyingNotImplemented(TemplatedError, NotImplementedFeature):
    template = "Resizing a {noun} while copying it is not implemented by azimg; omit diskSizeGB."
    target = "properties.diskSizeGB"


class CopyAcrossRegions(TemplatedError, BadRequest):
    template = (
        "The source {noun} '{name}' is in region '{source_region}'; a Copy must be in the same "
        "region ('{region}'). Use CopyStart for a copy across regions."
    )
    target = "properties.creationData.sourceResourceId"


class ImageInAnotherRegion(TemplatedError, BadRequest):
    template = (
        "The image '{id}' is in region '{source_region}'; it can only be used in the same "
        "region, not '{region}'."
    )


class SnapshotSizeFixed(TemplatedError, OperationNotAllowed):
    template = "The size of a snapshot cannot be changed."
    target = "properties.diskSizeGB"


class DiskShrinkNotAllowed(TemplatedError, BadRequest):
    template = (
        "Disk '{name}' cannot be shrunk from {size} GB to {wanted} GB; only increasing the size "
        "is supported."
    )
    target = "properties.diskSizeGB"


class DiskResizeNeedsIdle(TemplatedError, OperationNotAllowed):
    template = (
        "Disk '{name}' can be resized only when it is unattached or its VM is deallocated; it "
        "is {state}."
    )
    target = "properties.diskSizeGB"
