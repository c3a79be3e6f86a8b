"""Access log formats: `$context` variables, `-` for what a request lacks, unknown names."""

from __future__ import annotations

from unkai.config.http_api import DEFAULT_ACCESS_LOG_FORMAT as DEFAULT_FORMAT
from unkai.config.http_api import unknown_access_log_variables as unknown_variables
from unkai.gateway.access_log import format_line


def test_variables_are_filled_and_missing_ones_print_a_dash() -> None:
    line = format_line(
        '{"id":"$context.requestId","ip":"$context.identity.sourceIp","lat":$context.integrationLatency}',
        {"requestId": "r-1", "identity.sourceIp": "127.0.0.1"},
    )
    assert line == '{"id":"r-1","ip":"127.0.0.1","lat":-}'


def test_the_default_format_is_the_common_log_format_plus_the_request_id() -> None:
    line = format_line(
        DEFAULT_FORMAT,
        {
            "identity.sourceIp": "10.0.0.1",
            "requestTime": "01/Dec/2026:08:00:00 +0000",
            "httpMethod": "GET",
            "routeKey": "GET /hello",
            "protocol": "HTTP/1.1",
            "status": 200,
            "responseLength": 5,
            "requestId": "r-2",
        },
    )
    assert line == '10.0.0.1 - - [01/Dec/2026:08:00:00 +0000] "GET GET /hello HTTP/1.1" 200 5 r-2'


def test_unknown_variables_are_named() -> None:
    assert unknown_variables("$context.requestId $context.nope $context.stage.x") == [
        "nope",
        "stage.x",
    ]
    assert unknown_variables(DEFAULT_FORMAT) == []
