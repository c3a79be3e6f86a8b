"""AWS error shapes. rest-json (Lambda) puts the code in `x-amzn-ErrorType` and the body.

https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from unkai.errors import Throttled, UnkaiError
from unkai.gateway.errors import status_for


@dataclass(frozen=True, slots=True)
class AwsError:
    code: str
    message: str
    status: int
    sender_fault: bool = True

    @classmethod
    def from_unkai(cls, error: UnkaiError) -> AwsError:
        status = status_for(error)
        return cls(error.code, error.message, status, sender_fault=status < 500)

    def rest_json(self, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """(status, headers, body) in the rest-json protocol's shape."""
        body: dict[str, str] = {
            "Type": "User" if self.sender_fault else "Service",
            "message": self.message,
        }
        headers = [
            (b"content-type", b"application/json"),
            (b"x-amzn-errortype", self.code.encode()),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        return self.status, headers, orjson.dumps(body)


def throttled_error(error: Throttled) -> AwsError:
    return AwsError("TooManyRequestsException", error.message, 429)
