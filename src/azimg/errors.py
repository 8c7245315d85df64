"""Errors a user can act on, shared by the image-maker's tools (disk/, image/, fabric/, cli/).

Three outcomes for trouble (STYLE.md rule 8): ``CorruptImage`` for bad bytes, ``InvalidArgument``
for an impossible request, and assertions for our own bugs. The CLI prints any ``AzimgError`` as
one line and exits 2. ARM-visible errors live apart, in ``azimg.platform.errors``.
"""

from __future__ import annotations


class AzimgError(Exception):
    """Base of every error the CLI reports in one line (exit code 2)."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class CorruptImage(AzimgError):
    """The bytes break the format: names where (byte offset) and which field."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = []
        if field is not None:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"at byte {offset}")
        full = f"{message} [{', '.join(where)}]" if where else message
        super().__init__(full, hint=hint)
        self.offset = offset
        self.field = field


class UnsupportedFormat(AzimgError):
    """A format we recognise but do not handle (say which), or do not recognise at all."""


class InvalidArgument(AzimgError):
    """The caller asked for something impossible (bad size, bad path, conflicting flags)."""


class ToolMissing(AzimgError):
    """A host tool azimg drives is not installed."""

    def __init__(self, tool: str, package: str) -> None:
        super().__init__(
            f"{tool} is not installed", hint=f"run ./setup.sh or apt-get install {package}"
        )
        self.tool = tool
        self.package = package
