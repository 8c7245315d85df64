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
