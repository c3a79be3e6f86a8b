"""The one error hierarchy of unkai.

Every front door (gateway, control API, CLI, later the AWS endpoints) maps these exactly once:
the gateway and control API through `unkai.gateway.errors.STATUS_BY_ERROR`, the CLI by printing
`str(error)` plus its `hint`. Core code raises these and nothing else for expected failures.
"""

from __future__ import annotations


class UnkaiError(Exception):
    """Base class: an expected failure whose message is fit to show to a user."""

    #: Lambda-style error name, used as `errorType`/`__type` by the front doors.
    code = "ServiceException"

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            #: The AWS name of this failure where the service has its own (SQS's
            #: `QueueDoesNotExist`, SNS's `InvalidParameter`); the class keeps the status.
            self.code = code


class ConfigError(UnkaiError):
    """A manifest or setting is invalid; names the file, line and field."""

    code = "InvalidParameterValueException"

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        if field:
            where += f"{field}: "
        super().__init__(where + message, hint=hint)
        self.path = path
        self.line = line
        self.field = field


class InvalidRequest(UnkaiError):
    """A request's parameter is wrong (HTTP 400); `code` carries the service's error name."""

    code = "InvalidParameterValue"


class NotFound(UnkaiError):
    """A function, version, route or stage does not exist."""

    code = "ResourceNotFoundException"


class Conflict(UnkaiError):
    """The request conflicts with the current state (a name owned by another service)."""

    code = "ResourceConflictException"


class LimitExceeded(UnkaiError):
    """A documented limit was crossed; carries the limit's name, value and the actual value."""

    code = "LimitExceededException"

    def __init__(self, name: str, limit: int | float, actual: int | float) -> None:
        super().__init__(f"{name} must be at most {limit}, got {actual}")
        self.name = name
        self.limit = limit
        self.actual = actual


class Throttled(UnkaiError):
    """The function's concurrency is used up (Lambda: TooManyRequestsException, HTTP 429)."""

    code = "TooManyRequestsException"

    def __init__(
        self, message: str, *, reason: str = "ReservedFunctionConcurrentInvocationLimitExceeded"
    ) -> None:
        super().__init__(message)
        self.reason = reason


class InvocationFailed(UnkaiError):
    """The platform could not run the invocation at all (not a handler error)."""

    code = "ServiceException"

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
