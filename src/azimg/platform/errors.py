"""Every error a platform client can see: one small class each, with Azure's exact code.

This module imports nothing (STYLE.md house rule 3). The HTTP status of each class lives in one
table in ``azimg.platform.arm.errors``; domain code raises these and never thinks about HTTP.
ARM errors render as the ``{"error": {code, message, target}}`` envelope; ``StorageError``
subclasses render as the Storage XML ``<Error>`` document on the blob endpoint.

Messages are declared with the class, as templates (moto's and cloud-init's way): a class
sets ``template`` (``str.format`` fields) and, where it always names the same property,
``target``; code raises ``ClassName.of(field=value, ...)``. Where one Azure code carries
several messages, each message is a subclass with the same ``code`` (see the disk errors).
Plain ``ClassName(message, target=...)`` still works for classes not converted yet.
"""


class PlatformError(Exception):
    """Base of every client-visible error: ``code`` is the wire code, ``message`` the text."""

    code = "InternalServerError"
    template = "An internal error occurred."
    target: str | None = None

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if target is not None:
            self.target = target

    @classmethod
    def of(cls, *, target: str | None = None, **fields: object) -> "PlatformError":
        """The error with its message rendered from ``template``."""
        return cls(cls.template.format(**fields), target=target)


# --- ARM: request shape --------------------------------------------------------------------


class MissingApiVersionParameter(PlatformError):
    code = "MissingApiVersionParameter"

    def __init__(self) -> None:
        super().__init__(
            "The api-version query parameter (?api-version=) is required for all requests.",
            target="api-version",
        )


class InvalidApiVersionParameter(PlatformError):
    code = "InvalidApiVersionParameter"
    template = "The api-version '{version}' is invalid. The supported versions are '{supported}'."
    target = "api-version"


class MissingSubscriptionRegistration(PlatformError):
    """The SDK's auto-registration policy reads the last quoted token: the namespace."""

    code = "MissingSubscriptionRegistration"
    template = (
        "The subscription is not registered to use namespace '{namespace}'. See "
        "https://aka.ms/rps-not-found for how to register subscriptions."
    )


class InvalidFilterInQueryString(PlatformError):
    code = "InvalidFilterInQueryString"
    template = "Invalid $filter '{filter}' specified in the query string. {reason}"
    target = "$filter"


class InvalidRequestContent(PlatformError):
    """The body is not JSON, or not the shape the operation takes."""

    code = "InvalidRequestContent"


class InvalidParameter(PlatformError):
    code = "InvalidParameter"


class RequestEntityTooLarge(PlatformError):
    """A request body above ARM's request size limit (refused before it is parsed)."""

    code = "RequestEntityTooLarge"


class MethodNotAllowed(PlatformError):
    code = "MethodNotAllowed"


class BadRequest(PlatformError):
    """Azure's generic 400 code, used where the service itself says ``BadRequest``."""

    code = "BadRequest"


class FileTooLargeForHost(BadRequest):
    """A size Azure allows that this host's filesystem cannot hold as one blob file."""

    code = "FileTooLargeForHost"


class InvalidResourceName(PlatformError):
    code = "InvalidResourceName"


class InvalidResourceGroupLocation(PlatformError):
    code = "InvalidResourceGroupLocation"


class LocationNotAvailableForResourceType(PlatformError):
    code = "LocationNotAvailableForResourceType"


class PropertyChangeNotAllowed(PlatformError):
    code = "PropertyChangeNotAllowed"
    template = "Changing property '{property}' is not allowed."


class InvalidVhd(PlatformError):
    code = "InvalidVhd"


class UnsupportedProperty(PlatformError):
    """A property azimg does not implement: refused by name, never dropped (house rule 9)."""

    code = "NotSupported"


class NotImplementedFeature(PlatformError):
    """An operation or option azimg does not implement yet (501)."""

    code = "NotImplemented"


# --- ARM: lookup -----------------------------------------------------------------------------


class RouteNotFound(PlatformError):
    code = "NotFound"


class SubscriptionNotFound(PlatformError):
    code = "SubscriptionNotFound"
    template = "The subscription '{subscription}' could not be found."


class ResourceGroupNotFound(PlatformError):
    code = "ResourceGroupNotFound"
    template = "Resource group '{resource_group}' could not be found."


class ResourceNotFound(PlatformError):
    code = "ResourceNotFound"
    template = (
        "The Resource '{type}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )


class ParentResourceNotFound(PlatformError):
    code = "ParentResourceNotFound"
    template = (
        "Can not perform requested operation on nested resource. Parent resource '{parent}' "
        "not found."
    )


class ProviderNotFound(RouteNotFound):
    code = "InvalidResourceNamespace"
    template = "The resource namespace '{namespace}' is invalid."


class OperationNotFound(PlatformError):
    code = "OperationNotFound"


# --- ARM: state ------------------------------------------------------------------------------


class OperationNotAllowed(PlatformError):
    code = "OperationNotAllowed"


class Conflict(PlatformError):
    code = "Conflict"


class CannotDeleteResource(PlatformError):
    code = "CannotDeleteResource"


class PreconditionFailed(PlatformError):
    """An ``If-Match``/``If-None-Match`` condition did not hold."""

    code = "PreconditionFailed"


class ResourceGroupBeingDeleted(PlatformError):
    code = "ResourceGroupBeingDeleted"


class DeleteGalleryImageVersionBlockedBeforeEndOfLife(OperationNotAllowed):
    """A version with ``safetyProfile.blockDeletionBeforeEndOfLife`` before its EOL date."""

    code = "DeleteGalleryImageVersionBlockedBeforeEndOfLife"


class ReplicationFailed(PlatformError):
    """A gallery image version's replication failed in at least one region."""

    code = "ReplicationFailed"


# --- ARM: identity ---------------------------------------------------------------------------


class AuthenticationFailed(PlatformError):
    code = "AuthenticationFailed"


class InvalidAuthenticationToken(PlatformError):
    code = "InvalidAuthenticationToken"


class ExpiredAuthenticationToken(PlatformError):
    code = "ExpiredAuthenticationToken"


class InvalidAuthenticationTokenTenant(PlatformError):
    """A valid token from a tenant that does not own the subscription in the path."""

    code = "InvalidAuthenticationTokenTenant"


class AuthorizationFailed(PlatformError):
    code = "AuthorizationFailed"


# --- Microsoft.Authorization (reference/rbac-sharing.md §3.6, §3.9: Azure's codes) ------------


class LinkedAuthorizationFailed(PlatformError):
    code = "LinkedAuthorizationFailed"


class RoleAssignmentExists(PlatformError):
    code = "RoleAssignmentExists"


class RoleAssignmentUpdateNotPermitted(PlatformError):
    code = "RoleAssignmentUpdateNotPermitted"


class PrincipalNotFound(PlatformError):
    code = "PrincipalNotFound"


class RoleDefinitionDoesNotExist(PlatformError):
    code = "RoleDefinitionDoesNotExist"


class RoleAssignmentNotFound(PlatformError):
    code = "RoleAssignmentNotFound"


class RoleDefinitionNotFound(PlatformError):
    code = "RoleDefinitionNotFound"


class InvalidRoleAssignmentId(PlatformError):
    code = "InvalidRoleAssignmentId"


class InvalidRoleDefinitionId(PlatformError):
    code = "InvalidRoleDefinitionId"


class InvalidAssignableScope(PlatformError):
    code = "InvalidAssignableScope"


class RoleDefinitionWithSameNameExists(PlatformError):
    code = "RoleDefinitionWithSameNameExists"


class RoleDefinitionHasAssignments(PlatformError):
    code = "RoleDefinitionHasAssignments"


class CannotModifyBuiltInRole(PlatformError):
    code = "CannotModifyBuiltInRole"


# --- Templated errors; the Network family (its classes: network_errors.py) -------------------


class TemplatedError(PlatformError):
    """An error whose message is its class's ``template`` filled with keyword fields."""

    template = ""

    def __init__(self, *, target: str | None = None, **fields: object) -> None:
        super().__init__(self.template.format(**fields), target=target)


class NetworkBadRequest(TemplatedError):
    """Network validation failures: all 400, as Network's resource provider answers them."""


# --- Storage (blob/SAS endpoint) -------------------------------------------------------------


class StorageError(PlatformError):
    """Base of errors rendered as Storage XML with ``x-ms-error-code``."""

    code = "InternalError"


class StorageAuthenticationFailed(StorageError):
    code = "AuthenticationFailed"


class StorageAuthorizationPermissionMismatch(StorageError):
    code = "AuthorizationPermissionMismatch"


class BlobNotFound(StorageError):
    code = "BlobNotFound"


class InvalidPageRange(StorageError):
    code = "InvalidPageRange"


class InvalidHeaderValue(StorageError):
    code = "InvalidHeaderValue"


class MissingRequiredHeader(StorageError):
    code = "MissingRequiredHeader"


class RequestBodyTooLarge(StorageError):
    code = "RequestBodyTooLarge"


class StorageInvalidRange(StorageError):
    code = "InvalidRange"


class UnsupportedStorageOperation(StorageError):
    """A blob operation or header the SAS endpoint does not implement (501)."""

    code = "NotImplemented"


class BlobWriteNotAllowed(StorageError):
    """A write to a blob whose disk is not accepting uploads (no ActiveUpload)."""

    code = "OperationNotAllowed"


# --- OAuth2 (token endpoint) -----------------------------------------------------------------


class OAuthError(PlatformError):
    """Rendered as the OAuth2 JSON shape ``{"error", "error_description", "error_codes"}``."""

    code = "invalid_request"
    aadsts = 900144


class InvalidClient(OAuthError):
    code = "invalid_client"
    aadsts = 7000215


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"
    aadsts = 70003


class InvalidTenant(OAuthError):
    code = "invalid_tenant"
    aadsts = 90002


class InvalidResource(OAuthError):
    """A token asked for a resource (audience) this platform does not serve."""

    code = "invalid_resource"
    aadsts = 500011


class ClientThrottled(OAuthError):
    """Too many wrong secrets for one client in a window: 429 with Retry-After."""

    code = "temporarily_unavailable"
    aadsts = 50196

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- Microsoft.Compute/virtualMachines (reference/arm-api.md §8: Azure's texts) ----------------


class VmInvalidParameter(TemplatedError, InvalidParameter):
    """400 InvalidParameter with one of the VM service's texts."""


class OsProfileRequired(VmInvalidParameter):
    template = "Required parameter 'osProfile' is missing (null)."


class OsProfileNotAllowed(VmInvalidParameter):
    template = "Parameter 'osProfile' is not allowed."


class RequiredVmParameter(VmInvalidParameter):
    template = "Required parameter '{name}' is missing (null)."


class WindowsConfigurationNotAllowed(VmInvalidParameter):
    template = "The image is a Linux image; 'osProfile.windowsConfiguration' is not allowed."


class ComputerNameInvalid(VmInvalidParameter):
    template = (
        "Computer name '{name}' is invalid. It must be 1-64 letters, digits or '-', and cannot "
        "start or end with '-'."
    )


class AdminUsernameNotAllowed(VmInvalidParameter):
    template = "The Admin Username specified is not allowed: '{user}'."


class AdminPasswordWithoutPasswordAuth(VmInvalidParameter):
    template = "Admin password cannot be specified when password authentication is disabled."


class LinuxAuthenticationRequired(VmInvalidParameter):
    template = (
        "Authentication using either SSH or by user name and password must be enabled in Linux "
        "profile."
    )


class SshKeyPathNotAllowed(VmInvalidParameter):
    template = (
        "Destination path for SSH public keys is currently limited to its default value {path} "
        "due to a known issue in Linux provisioning agent."
    )


class SshKeyDataInvalid(VmInvalidParameter):
    template = "The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid."


class CustomDataNotBase64(VmInvalidParameter):
    template = "Custom data is not valid base64."


class CustomDataTooLarge(VmInvalidParameter):
    template = "Custom data in OSProfile must be at most {limit} bytes."


class PasswordNotComplex(VmInvalidParameter):
    template = (
        "The supplied password must be between 6-72 characters long and must satisfy at least 3 "
        "of password complexity requirements from the following:\n1) Contains an uppercase "
        "character\n2) Contains a lowercase character\n3) Contains a numeric digit\n4) Contains "
        "a special character\n5) Control characters are not allowed"
    )


class AttachWithImage(VmInvalidParameter):
    template = (
        "Cannot attach an existing OS disk if the VM is created from a platform, user or a "
        "shared gallery image."
    )


class AttachedDiskRegion(VmInvalidParameter):
    template = (
        "Disk '{disk}' is in region '{region}'; the VM is in '{vm_region}'. An attached disk "
        "must be in the VM's region."
    )


class AttachedDiskNotLinux(VmInvalidParameter):
    template = "The osDisk.osType of an attached OS disk must be 'Linux' in azimg."


class ImageRegion(VmInvalidParameter):
    template = (
        "The image '{image}' is in region '{region}'; a VM can only be created from an image in "
        "its own region ('{vm_region}')."
    )


class VmSourceRegion(VmInvalidParameter):
    template = (
        "The virtual machine '{vm}' is in region '{region}'; it can only be a source in its own "
        "region, not '{wanted}'."
    )


class OsDiskNameTaken(VmInvalidParameter):
    template = "A disk named '{disk}' already exists in resource group '{resource_group}'."


class VmNotImplemented(TemplatedError, NotImplementedFeature):
    """501: a VM feature azimg refuses by name (house rule 9)."""


class ImageReferenceKindNotImplemented(VmNotImplemented):
    template = (
        "Only imageReference.id (a gallery image, version or managed image) is implemented by "
        "azimg; marketplace, shared and community references are not."
    )


class VmDataDisksNotImplemented(VmNotImplemented):
    template = "Data disks are not implemented by azimg for VMs."


class VmKeyVaultSecretsNotImplemented(VmNotImplemented):
    template = "Key Vault secrets in osProfile are not implemented by azimg."


class VmFeatureNotImplemented(VmNotImplemented):
    template = "{feature} is not implemented by azimg."


class VmOperationNotAllowed(TemplatedError, OperationNotAllowed):
    """409 OperationNotAllowed with one of the VM service's texts."""


class VmActionNotAllowed(VmOperationNotAllowed):
    template = "Operation '{action}' is not allowed on VM '{vm}' since the VM is {state}."


class DiskNotAttachable(VmOperationNotAllowed):
    template = "Disk '{disk}' cannot be attached: it is already attached to {owner}."


class BootDiagnosticsNotReady(VmOperationNotAllowed):
    template = "Boot diagnostics of VM '{vm}' are not available: the VM has not booted yet."


class VmPropertyChangeNotAllowed(TemplatedError, PropertyChangeNotAllowed):
    template = "Changing property '{name}' is not allowed."


class VmCreateInProgress(TemplatedError, Conflict):
    template = "The virtual machine '{vm}' is being created already."


class DiskOperationFailed(TemplatedError):
    """Bytes of a disk could not be made (a clone, a flatten): its operation fails with it."""

    code = "InternalDiskManagementError"
    template = "The OS disk of VM '{vm}' could not be {what}: {reason}"


class DiskReadFailed(TemplatedError):
    """A clone's bytes could not be read into a copy (a snapshot of a running VM's disk)."""

    code = "InternalDiskManagementError"
    template = "The bytes of disk '{disk}' could not be read: {reason}"


class VMStartFailed(TemplatedError):
    """The fabric could not launch a VM (its QEMU did not start)."""

    code = "VMStartFailed"
    template = "The VM '{vm}' could not be started: {reason}"


class VmStoppedDuringProvisioning(TemplatedError):
    code = "VMStoppedDuringProvisioning"
    template = "The VM stopped during provisioning (exit code {exit_code})."
