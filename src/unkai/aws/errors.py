"""AWS error shapes, one per wire protocol, as botocore's parsers read them:
- rest-json (Lambda): the code in `x-amzn-ErrorType` and the body
  (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors);
- json (CloudWatch Logs, SQS): `__type` in the body;
- query (SNS, STS, SQS's older protocol): an `<ErrorResponse>` XML document.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from unkai.errors import Throttled, UnkaiError
from unkai.events.xml_chars import escape
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


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def json_error(error: AwsError, request_id: str, *, namespace: str = "") -> Answer:
    """awsJson1_0 / 1_1: `{"__type": "<namespace>#<code>", "message": ...}`."""
    kind = f"{namespace}#{error.code}" if namespace else error.code
    headers = [
        (b"content-type", b"application/x-amz-json-1.1"),
        (b"x-amzn-requestid", request_id.encode()),
    ]
    return error.status, headers, orjson.dumps({"__type": kind, "message": error.message})


def query_error(error: AwsError, request_id: str) -> Answer:
    """The query protocol's `<ErrorResponse>` document."""
    fault = "Sender" if error.sender_fault else "Receiver"
    body = (
        "<ErrorResponse><Error>"
        f"<Type>{fault}</Type><Code>{escape(error.code)}</Code>"
        f"<Message>{escape(error.message)}</Message>"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    headers = [(b"content-type", b"text/xml"), (b"x-amzn-requestid", request_id.encode())]
    return error.status, headers, body.encode()
