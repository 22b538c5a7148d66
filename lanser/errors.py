"""One exception root and one subclass per contract error code (CONTRACT.md section 4).

Library code raises these; only the CLI's error handler turns them into an
error bundle, a stderr line and an exit code.  Nothing in the library calls
``sys.exit``.
"""

from __future__ import annotations

from typing import Any


class LanserError(Exception):
    """Base of every error a user can cause or meet; carries its contract code."""

    code: str = "E/INTERNAL"
    exit_code: int = 1
    retryable: bool | str = False

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_json(self) -> dict[str, Any]:
        """The bundle's ``error`` object (deterministic: no volatile fields)."""
        out: dict[str, Any] = {
            "code": self.code,
            "exitCode": self.exit_code,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.details:
            out["details"] = self.details
        return out


class InternalError(LanserError):
    code = "E/INTERNAL"
    exit_code = 1


class BadSelectorSyntax(LanserError):
    code = "E/BAD_SELECTOR_SYNTAX"
    exit_code = 2

    def __init__(self, message: str, *, text: str = "", column: int | None = None) -> None:
        details: dict[str, Any] = {}
        if text:
            details["selector"] = text
        if column is not None:
            details["column"] = column  # 1-based column of the first bad character
            message = f"{message} (at column {column})"
        super().__init__(message, details=details)
        self.column = column


class BadInput(LanserError):
    """An argument or input line that cannot be valid and is not a selector: a STEPS or
    batch line that is not a step, a new name that is not an identifier, an option value
    given through the SDK or a daemon request.  A usage error: exit 2, like click's own,
    with its own code so it is never mistaken for a selector parse error."""

    code = "E/BAD_INPUT"
    exit_code = 2


class NotFound(LanserError):
    code = "E/NOT_FOUND"
    exit_code = 3
    retryable = "sometimes"


class Ambiguous(LanserError):
    code = "E/AMBIGUOUS"
    exit_code = 4
    retryable = True

    def __init__(self, message: str, *, candidates: list[dict[str, Any]] | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.candidates = candidates or []


class VersionSkew(LanserError):
    code = "E/VERSION_SKEW"
    exit_code = 10
    retryable = True


class LsTimeout(LanserError):
    code = "E/LS_TIMEOUT"
    exit_code = 64
    retryable = True


class LsCrash(LanserError):
    code = "E/LS_CRASH"
    exit_code = 65
    retryable = True


class ApplyConflict(LanserError):
    code = "E/APPLY_CONFLICT"
    exit_code = 70
    retryable = "manual"


class FsPermissions(LanserError):
    code = "E/FS_PERMISSIONS"
    exit_code = 71


class UnsupportedCap(LanserError):
    code = "E/UNSUPPORTED_CAP"
    exit_code = 72


class RequestCancelled(LanserError):
    code = "E/REQUEST_CANCELLED"
    exit_code = 73
    retryable = True


class ContentModified(LanserError):
    code = "E/CONTENT_MODIFIED"
    exit_code = 74
    retryable = True


class IndexingUnsupported(LanserError):
    code = "E/INDEXING_UNSUPPORTED"
    exit_code = 75


class ReplayMismatch(LanserError):
    code = "E/REPLAY_MISMATCH"
    exit_code = 76


ALL_ERRORS: tuple[type[LanserError], ...] = (
    InternalError, BadSelectorSyntax, BadInput, NotFound, Ambiguous, VersionSkew, LsTimeout, LsCrash,
    ApplyConflict, FsPermissions, UnsupportedCap, RequestCancelled, ContentModified,
    IndexingUnsupported, ReplayMismatch,
)

BY_CODE: dict[str, type[LanserError]] = {cls.code: cls for cls in ALL_ERRORS}
