"""Every error a platform client can see: one small class each, with Azure's exact code.

This module imports nothing (STYLE.md house rule 3). The HTTP status of each class lives in one
table in ``azimg.platform.arm.errors``; domain code raises these and never thinks about HTTP.
ARM errors render as the ``{"error": {code, message, target}}`` envelope; ``StorageError``
subclasses render as the Storage XML ``<Error>`` document on the blob endpoint.
"""


class PlatformError(Exception):
    """Base of every client-visible error: ``code`` is the wire code, ``message`` the text."""

    code = "InternalServerError"

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.target = target


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


class InvalidRequestContent(PlatformError):
    """The body is not JSON, or not the shape the operation takes."""

    code = "InvalidRequestContent"


class InvalidParameter(PlatformError):
    code = "InvalidParameter"


class BadRequest(PlatformError):
    """Azure's generic 400 code, used where the service itself says ``BadRequest``."""

    code = "BadRequest"


class InvalidResourceName(PlatformError):
    code = "InvalidResourceName"


class InvalidResourceGroupLocation(PlatformError):
    code = "InvalidResourceGroupLocation"


class LocationNotAvailableForResourceType(PlatformError):
    code = "LocationNotAvailableForResourceType"


class PropertyChangeNotAllowed(PlatformError):
    code = "PropertyChangeNotAllowed"


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


class ResourceGroupNotFound(PlatformError):
    code = "ResourceGroupNotFound"


class ResourceNotFound(PlatformError):
    code = "ResourceNotFound"


class ParentResourceNotFound(PlatformError):
    code = "ParentResourceNotFound"


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


class DiskOperationFailed(PlatformError):
    """Bytes of a disk could not be made (a clone, a flatten): the operation fails with it."""

    code = "InternalDiskManagementError"


class VMStartFailed(PlatformError):
    """The fabric could not launch a VM (its QEMU did not start)."""

    code = "VMStartFailed"


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


class AuthorizationFailed(PlatformError):
    code = "AuthorizationFailed"


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
