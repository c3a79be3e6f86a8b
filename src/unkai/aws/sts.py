"""STS's query protocol, for the one call that asks who the caller is: `GetCallerIdentity`
(https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html), which
`aws sts get-caller-identity`, SDK credential checks and deploy tools use.

The caller is the access key the call was signed with (`AwsCall.access_key`), acting in the
account configured for that key (`--aws-credentials KEY:SECRET:ACCOUNT`), else in the
platform's (`AwsCall.account_id` carries the result). unkai has no IAM users, so the identity is
an IAM user named after the access key: `arn:aws:iam::<account>:user/<access key>`, whose
UserId is the access key. Other STS actions answer 501 and name themselves.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from unkai.aws.endpoint import AwsCall
from unkai.aws.errors import AwsError, query_error
from unkai.events.xml_chars import escape
from unkai.gateway.http1 import Headers, HttpConnection, Request

XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
SUPPORTED = ("GetCallerIdentity",)
_FORM = b"application/x-www-form-urlencoded"


class StsApi:
    """The `AwsService` of STS (query protocol: `Action=...&Version=2011-06-15`)."""

    def handle_call(self, request: Request, connection: HttpConnection, call: AwsCall) -> None:
        action = _params(request).get("Action", "")
        if action != "GetCallerIdentity":
            connection.respond(*query_error(unsupported(action), call.request_id))
            return
        headers: Headers = [
            (b"content-type", b"text/xml"),
            (b"x-amzn-requestid", call.request_id.encode()),
        ]
        connection.respond(200, headers, caller_identity(call).encode())


def caller_identity(call: AwsCall) -> str:
    """The `GetCallerIdentityResponse` document, as botocore's `QueryParser` reads it."""
    user = call.access_key or "anonymous"
    arn = f"arn:aws:iam::{call.account_id}:user/{user}"
    if call.function is not None:
        # A function's own key: its execution role's session, as a Lambda function sees it.
        stage, _, function = call.function.partition("/")
        arn = f"arn:aws:sts::{call.account_id}:assumed-role/unkai-{stage}-{function}/{function}"
    return (
        f'<GetCallerIdentityResponse xmlns="{XMLNS}"><GetCallerIdentityResult>'
        f"<Arn>{escape(arn)}</Arn><UserId>{escape(user)}</UserId>"
        f"<Account>{escape(call.account_id)}</Account>"
        "</GetCallerIdentityResult>"
        f"<ResponseMetadata><RequestId>{call.request_id}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    )


def _params(request: Request) -> dict[str, str]:
    """The query string's and the form body's parameters (the body's win)."""
    pairs = parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
    if (request.header(b"content-type") or b"").startswith(_FORM):
        pairs += parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def unsupported(action: str) -> AwsError:
    if not action:
        return AwsError("MissingAction", "The request must contain the parameter Action.", 400)
    return AwsError(
        "InvalidAction",
        f"unkai's STS does not support {action}; it supports {', '.join(SUPPORTED)}",
        501,
    )
