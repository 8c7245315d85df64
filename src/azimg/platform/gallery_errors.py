"""Client-visible errors of galleries, image definitions, versions and managed images.

One class per failure reason, each a template filled at the raise site (moto's and
cloud-init's way); the code and HTTP status come from the second base in ``errors.py``
(``arm/errors.py`` maps it by MRO). Texts as the service words them (reference/arm-api.md
§6, §7). A leaf: it imports only ``errors``.
"""

from azimg.platform.errors import (
    BadRequest,
    CannotDeleteResource,
    Conflict,
    DeleteGalleryImageVersionBlockedBeforeEndOfLife,
    InvalidParameter,
    InvalidResourceName,
    NotImplementedFeature,
    OperationNotAllowed,
    ParentResourceNotFound,
    PropertyChangeNotAllowed,
    TemplatedError,
    UnsupportedProperty,
)


class RequiredParameterMissing(TemplatedError, InvalidParameter):
    template = "Required parameter '{name}' is missing (null)."


class ValueOutOfRange(TemplatedError, InvalidParameter):
    template = (
        "The value {value} of parameter {name} is out of range. The value must be between "
        "{low} and {high}, inclusive."
    )


class RegionNotAvailable(TemplatedError, InvalidParameter):
    template = (
        "The provided location '{name}' is not available for resource type '{rtype}'. List of "
        "available regions for the resource type is '{regions}'."
    )


class ResourceExistsElsewhere(TemplatedError, Conflict):
    template = (
        "The resource '{name}' already exists in location '{existing}'{where}. A resource with "
        "the same name cannot be created in location '{location}'. Please select a new "
        "resource name."
    )


class PropertyChange(TemplatedError, PropertyChangeNotAllowed):
    template = "Changing property '{prop}' is not allowed."


class NotSupportedByAzimg(TemplatedError, UnsupportedProperty):
    template = "{feature} {verb} not supported by azimg.{advice}"

    def __init__(
        self, *, feature: str, target: str, plural: bool = False, advice: str = ""
    ) -> None:
        super().__init__(
            target=target,
            feature=feature,
            verb="are" if plural else "is",
            advice=f" {advice}" if advice else "",
        )


class NotImplementedByAzimg(TemplatedError, NotImplementedFeature):
    template = "{feature} {verb} not implemented by azimg yet."

    def __init__(self, *, feature: str, target: str, plural: bool = False) -> None:
        super().__init__(target=target, feature=feature, verb="are" if plural else "is")


class NestedParentNotFound(TemplatedError, ParentResourceNotFound):
    template = (
        "Can not perform requested operation on nested resource. Parent resource '{label}' "
        "not found."
    )


class NestedResourcesExist(TemplatedError, CannotDeleteResource):
    template = (
        "Cannot delete resource while nested resources exist. Some existing nested resource "
        "IDs include: '{nested}'. Please delete all nested resources before deleting this "
        "resource."
    )


class InvalidGalleryName(TemplatedError, InvalidParameter):
    template = (
        "Gallery name is invalid. Allowed characters are English alphanumeric characters, with "
        "underscores, and periods allowed in the middle, up to 80 characters total. All other "
        "special characters, including dashes, are disallowed."
    )


class InvalidTrailingCharacters(TemplatedError, InvalidResourceName):
    template = (
        "The provided resource name '{name}' has these invalid trailing characters: '{char}'. "
        "The name can not end with characters: '{char}'"
    )


class GalleryNameNotUnique(TemplatedError, Conflict):
    template = (
        "The gallery name {name} is not unique within the subscription {subscription}. Please "
        "pick another gallery name."
    )


class SharingGroupsReadOnly(TemplatedError, InvalidParameter):
    template = "sharingProfile.groups is read-only; change it with POST .../share."


class InvalidDefinitionName(TemplatedError, InvalidResourceName):
    template = (
        "The entity name '{name}' is invalid according to its validation rule: "
        r"^[^_\W][\w-._]{{0,79}}(?<![-.])$."
    )


class InvalidIdentifierPart(TemplatedError, InvalidParameter):
    template = (
        "Asset name galleryImage.properties.identifier.{part} is not valid. It cannot be empty. "
        "Allowed characters are uppercase or lowercase letters, digits, hyphen(-), period (.), "
        "underscore (_). Names are not allowed to end with period(.). The length of the name "
        "cannot exceed {limit} characters."
    )


class InvalidDate(TemplatedError, InvalidParameter):
    template = "Could not convert string to DateTimeOffset: {value}. Path '{path}'."


class EndOfLifeInThePast(TemplatedError, InvalidParameter):
    template = "EndOfLifeDate must be set to a future date."


class RecommendedMinAboveMax(TemplatedError, InvalidParameter):
    template = (
        "The minimum value of {resource} must not be greater than the maximum value of {resource}."
    )


class FeaturesChangeNotAllowed(TemplatedError, PropertyChangeNotAllowed):
    template = (
        "Changing property 'galleryImage.properties.features' is not allowed unless "
        "'allowUpdateImage' is true."
    )


class DuplicateImageIdentifier(TemplatedError, Conflict):
    template = (
        "Gallery image: {name} identified by (publisher:{publisher}, offer:{offer}, sku:{sku}) "
        "already exists. Choose a different publisher, offer, sku combination."
    )


class InvalidVersionName(TemplatedError, InvalidParameter):
    template = (
        "The image version name is invalid. The image version name should follow "
        "Major(int).Minor(int).Patch(int) format, for e.g: 1.0.0, 2018.12.1 etc."
    )


class DuplicateTargetRegions(TemplatedError, InvalidParameter):
    template = "Duplicate regions are not allowed in target publishing regions."


class TargetRegionsMissLocation(TemplatedError, InvalidParameter):
    template = (
        "Gallery image version publishing profile regions '{regions}' must contain the "
        "location of image version '{location}'."
    )


class StorageTypeAndStrategy(TemplatedError, InvalidParameter):
    template = "storageAccountType and storageAccountStrategy cannot both be specified."


class ShallowReplicationSourceRegionOnly(TemplatedError, InvalidParameter):
    template = "Shallow replication mode only supports the source region as a target region."


class OneSourceTypeOnly(TemplatedError, InvalidParameter):
    template = (
        "The gallery artifact version source can only be specified either directly under "
        "storageProfile or within individual OS or data disks. One and only one source type "
        "(user image, snapshot, disk, virtual machine) can be provided."
    )


class SourceIdNotQualified(TemplatedError, InvalidParameter):
    template = (
        "Property id '{id}' at path 'properties.storageProfile.source.id' is invalid. Expect "
        "fully qualified resource Id that start with '/subscriptions/{{subscriptionId}}' or "
        "'/providers/{{resourceProviderNamespace}}/'."
    )


class SourceNotImageVmOrVersion(TemplatedError, InvalidParameter):
    template = (
        "The source id: {id} must either be a managed image, virtual machine or another "
        "gallery image version."
    )


class SourceNotDiskOrSnapshot(TemplatedError, InvalidParameter):
    template = "The source id: {id} must be a managed disk or snapshot."


class DuplicateLuns(TemplatedError, InvalidParameter):
    template = (
        "Duplicated lun numbers have been detected in the input data disks. Lun number must "
        "be unique for each data disk."
    )


class OsAndDataDiskSameBlob(TemplatedError, InvalidParameter):
    template = "OSDiskImage and DataDiskImage cannot point to same blob {id}."


class DuplicateSourceIds(TemplatedError, InvalidParameter):
    template = (
        "Duplicated source ids are found in the input disks. Source id should be unique for "
        "each disk."
    )


class SourceNotFound(TemplatedError, InvalidParameter):
    template = "Source was not found: {id}. Please make sure the source exists."


class SourceNotInRegion(TemplatedError, InvalidParameter):
    template = (
        "Source {id} is not found. Please check source exists, and is in the same region as "
        "gallery image version being created."
    )


class SourceDefinitionMismatch(TemplatedError, BadRequest):
    """Azure's texts for OS state, Hypervisor generation and OS type (sic: "OS type
    generation")."""

    template = (
        "The resource with id '{id}' has a different {what} ['{given}'] than the parent "
        "gallery image {what_parent} ['{expected}']."
    )


class DataDisksChangeNotAllowed(TemplatedError, InvalidParameter):
    template = (
        "Adding new Data Disks or changing the LUN of a Data Disk in an existing Image is not "
        "allowed."
    )


class VersionMarkedForDeletion(TemplatedError, OperationNotAllowed):
    template = (
        "Operation 'Update Gallery Image Version' is not allowed on {name} since it is marked "
        "for deletion. You can only retry the Delete operation (or wait for an ongoing one to "
        "complete)."
    )


class VersionReplicating(TemplatedError, OperationNotAllowed):
    template = (
        "Operation 'Update Gallery Image Version' is not allowed on {name} while its "
        "replication is in progress; wait for it to finish."
    )


class ReplicatedRegionsRemoval(TemplatedError, OperationNotAllowed):
    template = (
        "Removing replicated regions ({regions}) is not allowed because "
        "safetyProfile.allowDeletionOfReplicatedLocations is false."
    )


class VersionDeletedWhileReplicating(TemplatedError, Conflict):
    template = "The gallery image version '{name}' was deleted before its replication finished."


class GalleryImageNotInRegion(TemplatedError, InvalidParameter):
    template = (
        "The gallery image {id} is not available in {region} region. Please contact image "
        "owner to replicate to this region, or change your requested region."
    )


class NoLatestVersion(TemplatedError, InvalidParameter):
    template = 'There is no latest image version exists for "{id}"'


class DeletionBlockedBeforeEndOfLife(
    TemplatedError, DeleteGalleryImageVersionBlockedBeforeEndOfLife
):
    template = (
        "Deletion of Gallery image version is not allowed because the image is enabled for "
        "blockDeletionBeforeEndOfLife and its endOfLifeDate has not reached yet."
    )


class SourceNotReady(TemplatedError, OperationNotAllowed):
    template = "The {kind} '{name}' is {state}; it cannot be used yet."


class ValueNotAllowed(TemplatedError, InvalidParameter):
    template = (
        "The value '{value}' of parameter '{name}' is not allowed. Allowed values are {allowed}."
    )


class ExactlyOneImageSource(TemplatedError, InvalidParameter):
    template = (
        "Exactly one source must be given: sourceVirtualMachine, or one of "
        "storageProfile.osDisk.managedDisk, .snapshot, .blobUri."
    )


class ManagedImageNotGeneralized(TemplatedError, InvalidParameter):
    template = (
        "Managed images can only be created from a generalized source: osDisk.osState must be "
        "'Generalized'. Use an Azure Compute Gallery image definition for specialized images."
    )


class ImageSourceInOtherRegion(TemplatedError, BadRequest):
    template = (
        "The source '{id}' is in region '{region}'; a managed image must be created in the "
        "same region as its source ('{location}')."
    )


class ImageGenerationMismatch(TemplatedError, InvalidParameter):
    template = "The hyperVGeneration '{given}' of the image does not match the source's '{source}'."


class ImageFromSecurityTypeNotSupported(TemplatedError, OperationNotAllowed):
    template = (
        "Creation of managed images are not supported for disks with {security} security type."
    )


class VmNotGeneralized(TemplatedError, OperationNotAllowed):
    template = "The operation 'Create Image' requires the Virtual Machine '{vm}' to be Generalized."
