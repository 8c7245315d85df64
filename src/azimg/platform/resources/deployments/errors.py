"""Template and deployment errors, with ARM's codes.

They subclass the shared ``platform.errors`` classes whose HTTP status they take (the status
table in ``arm/errors.py`` walks the class hierarchy), so this package adds codes without
touching the shared table.
"""

from __future__ import annotations

from azimg.platform.errors import BadRequest, Conflict, ResourceNotFound


class InvalidTemplate(BadRequest):
    """A template or its parameters are not valid (ARM: 400 ``InvalidTemplate``)."""

    code = "InvalidTemplate"

    def __init__(self, message: str, *, target: str | None = None) -> None:
        if not message.startswith("Deployment template"):
            message = f"Deployment template validation failed: '{message}'."
        super().__init__(message, target=target)


class InvalidTemplateDeployment(BadRequest):
    code = "InvalidTemplateDeployment"


class InvalidDeploymentName(BadRequest):
    code = "InvalidDeploymentName"


class DeploymentNotFound(ResourceNotFound):
    code = "DeploymentNotFound"


class DeploymentActive(Conflict):
    code = "DeploymentActive"


class DeploymentCannotBeCancelled(Conflict):
    code = "DeploymentCannotBeCancelled"


class ExpressionError(Exception):
    """A problem inside one expression; the template layer wraps it as ``InvalidTemplate``
    with the place it occurred (the evaluator knows no template positions)."""
