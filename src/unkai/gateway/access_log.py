"""Access logs: one line per request of a route whose service asks for them, in a format of
`$context` variables as API Gateway's access logging
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html).

The format is compiled once per deploy into literal and variable parts; a request then costs
one join. Variables with no value for a request print `-`, as API Gateway does.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping

from unkai.config.http_api import ACCESS_LOG_VARIABLE
from unkai.gateway.http1 import Headers, Request, Responder
from unkai.gateway.mapping import request_time


def access_log_name(service: str) -> str:
    """The log name of a service's access logs: `unkai logs --access SERVICE` reads it.
    Function names cannot contain '@', so it never meets a function's logs."""
    return f"@access.{service}"


@functools.lru_cache(maxsize=64)
def compile_format(text: str) -> tuple[tuple[bool, str], ...]:
    """[(is_variable, literal text or variable name)]."""
    parts: list[tuple[bool, str]] = []
    position = 0
    for match in ACCESS_LOG_VARIABLE.finditer(text):
        if match.start() > position:
            parts.append((False, text[position : match.start()]))
        parts.append((True, match.group(1)))
        position = match.end()
    if position < len(text):
        parts.append((False, text[position:]))
    return tuple(parts)


def format_line(text: str, values: Mapping[str, object]) -> str:
    out = []
    for is_variable, part in compile_format(text):
        if is_variable:
            value = values.get(part)
            out.append("-" if value is None or value == "" else str(value))
        else:
            out.append(part)
    return "".join(out)


class AccessRecorder:
    """Stands in for the connection of a request whose route has access logs: records the line
    when the response goes out, then passes it on. Routes without access logs never see one."""

    __slots__ = (
        "_connection",
        "_record",
        "format",
        "integration_started",
        "request",
        "route_key",
        "stage",
        "started",
    )

    def __init__(
        self,
        connection: Responder,
        record: Callable[[str, str | None], None],
        *,
        format: str,
        request: Request,
        route_key: str,
        stage: str,
    ) -> None:
        self._connection = connection
        self._record = record
        self.format = format
        self.request = request
        self.route_key = route_key
        self.stage = stage
        self.started = time.monotonic()
        self.integration_started: float | None = None

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        now = time.monotonic()
        request = self.request
        request_id = next((v.decode() for k, v in headers if k == b"apigw-requestid"), None)
        epoch = time.time()
        values: dict[str, object] = {
            "requestId": request_id,
            "httpMethod": request.method,
            # As received (percent-encoded): a decoded %0A would forge a line of the log.
            "path": request.raw_path.decode("latin-1"),
            "protocol": "HTTP/" + request.http_version,
            "routeKey": self.route_key,
            "stage": self.stage,
            "status": status,
            "responseLength": len(body),
            "requestTime": request_time(int(epoch)),
            "requestTimeEpoch": int(epoch),
            "responseLatency": int((now - self.started) * 1000),
            "identity.sourceIp": request.client[0] if request.client else None,
            "identity.userAgent": (request.header(b"user-agent") or b"").decode("latin-1"),
            "domainName": (request.header(b"host") or b"").decode("latin-1"),
            "apiId": "unkai",
        }
        if self.integration_started is not None:
            values["integrationLatency"] = int((now - self.integration_started) * 1000)
            values["integrationStatus"] = status
        self._record(format_line(self.format, values), request_id)
        self._connection.respond(status, headers, body)
