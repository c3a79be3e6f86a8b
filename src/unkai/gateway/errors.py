"""The gateway's one table from error to HTTP status, and API Gateway's error bodies."""

from __future__ import annotations

from unkai.errors import (
    ConfigError,
    Conflict,
    InvalidRequest,
    InvocationFailed,
    LimitExceeded,
    NotFound,
    Throttled,
    UnkaiError,
)

STATUS_BY_ERROR: dict[type[UnkaiError], int] = {
    ConfigError: 400,
    InvalidRequest: 400,
    NotFound: 404,
    Conflict: 409,
    LimitExceeded: 413,
    Throttled: 429,
    InvocationFailed: 502,
}


def status_for(error: UnkaiError) -> int:
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


# API Gateway answers these with fixed messages; the function's details go to its log only.
NOT_FOUND_BODY = b'{"message":"Not Found"}'
METHOD_NOT_ALLOWED_BODY = b'{"message":"Method Not Allowed"}'
BAD_GATEWAY_BODY = b'{"message":"Internal Server Error"}'
THROTTLED_BODY = b'{"message":"Too Many Requests"}'
FORBIDDEN_BODY = b'{"message":"Forbidden"}'
UNAUTHORIZED_BODY = b'{"message":"Unauthorized"}'
QUOTA_BODY = b'{"message":"Limit Exceeded"}'
GATEWAY_TIMEOUT_BODY = b'{"message":"Endpoint request timed out"}'
TOO_LARGE_BODY = b'{"message":"Request Entity Too Large"}'
