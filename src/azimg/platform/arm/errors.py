"""The only class-to-status table, and the renderers of the ARM and Storage error shapes.

Anything that is not a ``PlatformError`` becomes a logged 500 ``InternalServerError`` (never a
4xx and never a traceback on the wire). Request-validation failures from FastAPI become 400
``InvalidRequestContent`` in the ARM envelope.
"""

from __future__ import annotations

import logging
from typing import Any
from xml.sax.saxutils import escape

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from azimg.platform import errors as e

log = logging.getLogger(__name__)

STATUS: dict[type[e.PlatformError], int] = {
    e.MissingApiVersionParameter: 400,
    e.InvalidApiVersionParameter: 400,
    e.InvalidRequestContent: 400,
    e.InvalidParameter: 400,
    e.RequestEntityTooLarge: 413,
    e.MethodNotAllowed: 405,
    e.BadRequest: 400,
    e.InvalidResourceName: 400,
    e.InvalidResourceGroupLocation: 409,
    e.LocationNotAvailableForResourceType: 400,
    e.PropertyChangeNotAllowed: 400,
    e.InvalidVhd: 400,
    e.UnsupportedProperty: 400,
    e.NotImplementedFeature: 501,
    e.RouteNotFound: 404,
    e.SubscriptionNotFound: 404,
    e.LinkedAuthorizationFailed: 403,
    e.RoleAssignmentExists: 409,
    e.RoleAssignmentUpdateNotPermitted: 400,
    e.PrincipalNotFound: 400,
    e.RoleDefinitionDoesNotExist: 400,
    e.RoleAssignmentNotFound: 404,
    e.RoleDefinitionNotFound: 404,
    e.InvalidRoleAssignmentId: 400,
    e.InvalidRoleDefinitionId: 400,
    e.InvalidAssignableScope: 400,
    e.RoleDefinitionWithSameNameExists: 409,
    e.RoleDefinitionHasAssignments: 409,
    e.CannotModifyBuiltInRole: 403,
    e.ResourceGroupNotFound: 404,
    e.ResourceNotFound: 404,
    e.ParentResourceNotFound: 404,
    e.OperationNotFound: 404,
    e.OperationNotAllowed: 409,
    e.Conflict: 409,
    e.CannotDeleteResource: 409,
    e.PreconditionFailed: 412,
    e.ResourceGroupBeingDeleted: 409,
    e.ReplicationFailed: 400,
    e.DiskOperationFailed: 500,
    e.VMStartFailed: 500,
    e.AuthenticationFailed: 401,
    e.InvalidAuthenticationToken: 401,
    e.ExpiredAuthenticationToken: 401,
    e.InvalidAuthenticationTokenTenant: 401,
    e.AuthorizationFailed: 403,
    e.NetworkBadRequest: 400,
    # Storage (blob/SAS endpoint)
    e.StorageError: 500,
    e.StorageAuthenticationFailed: 403,
    e.StorageAuthorizationPermissionMismatch: 403,
    e.BlobNotFound: 404,
    e.InvalidPageRange: 416,
    e.InvalidHeaderValue: 400,
    e.MissingRequiredHeader: 400,
    e.RequestBodyTooLarge: 413,
    e.StorageInvalidRange: 416,
    e.UnsupportedStorageOperation: 501,
    e.BlobWriteNotAllowed: 409,
    # OAuth2
    e.OAuthError: 400,
    e.InvalidClient: 401,
    e.UnsupportedGrantType: 400,
    e.InvalidTenant: 400,
    e.InvalidResource: 400,
    e.ClientThrottled: 429,
}


def status_of(err: e.PlatformError) -> int:
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def arm_envelope(err: e.PlatformError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.target:
        body["target"] = err.target
    return {"error": body}


def _request_id(request: Request) -> str:
    return request.headers.get("x-ms-client-request-id", "")


def render(request: Request, err: e.PlatformError) -> Response:
    status = status_of(err)
    if isinstance(err, e.StorageError):
        xml = (
            '<?xml version="1.0" encoding="utf-8"?><Error>'
            f"<Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message></Error>"
        )
        headers = {"x-ms-error-code": err.code}
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        return Response(xml, status_code=status, media_type="application/xml", headers=headers)
    if isinstance(err, e.OAuthError):
        retry_after = getattr(err, "retry_after", None)
        return JSONResponse(
            {
                "error": err.code,
                "error_description": err.message,
                "error_codes": [err.aadsts],
            },
            status_code=status,
            headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
        )
    headers = {"x-ms-failure-cause": "gateway"} if status == 404 else {}
    if status == 401:
        headers["WWW-Authenticate"] = (
            'Bearer authorization_uri="/common/oauth2/authorize", error="invalid_token", '
            f'error_description="{err.message}"'
        )
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return JSONResponse(arm_envelope(err), status_code=status, headers=headers)


async def platform_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.PlatformError)
    return render(request, exc)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    target = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        err: e.PlatformError = e.InvalidRequestContent(
            "The request content was invalid and could not be deserialized: the body is not "
            "valid JSON."
        )
    else:
        msg = first.get("msg", "invalid value")
        err = e.InvalidRequestContent(
            f"The request content was invalid and could not be deserialized: "
            f"{target or 'body'}: {msg}.",
            target=target,
        )
    return render(request, err)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        err: e.PlatformError = e.RouteNotFound(
            f"The requested path '{request.url.path}' was not found."
        )
    elif exc.status_code == 405:
        err = e.MethodNotAllowed(
            f"The HTTP method '{request.method}' is not supported at '{request.url.path}'."
        )
        headers = dict(exc.headers or {})  # Starlette names the allowed methods (Allow)
        return JSONResponse(arm_envelope(err), status_code=405, headers=headers)
    else:
        err = e.BadRequest(str(exc.detail))
        return JSONResponse(arm_envelope(err), status_code=exc.status_code)
    return render(request, err)


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Starlette re-raises after this response and uvicorn then drops the connection: say so,
    # so a keep-alive client opens a new one instead of failing its next request.
    return JSONResponse(
        {"error": {"code": "InternalServerError", "message": "An internal error occurred."}},
        status_code=500,
        headers={"Connection": "close"},
    )
