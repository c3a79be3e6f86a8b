"""`unkai logs`: query a function's logs by time, text and request id, or follow them live."""

from __future__ import annotations

import datetime
import re
import time

import click

from unkai.cli.client import CliError, control_client
from unkai.cli.output import print_log_records

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: How often `--tail` asks for new records.
TAIL_POLL_S = 0.5


def parse_since(value: str, now_s: float) -> int:
    """`10m`, `2h`, `1d` ago, or an ISO 8601 time, as epoch milliseconds."""
    match = _DURATION.match(value.strip())
    if match:
        return int((now_s - float(match.group(1)) * _UNIT_S[match.group(2)]) * 1000)
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"--since {value!r} is neither a duration nor an ISO time",
            hint="use e.g. --since 10m, 2h, 1d or 2026-11-22T10:00:00",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


@click.command()
@click.option("--function", "-f", "function", default=None, help="Function name.")
@click.option(
    "--access", "access", default=None, metavar="SERVICE", help="A service's access logs instead."
)
@click.option("--tail", "-t", is_flag=True, help="Keep printing new records until Ctrl-C.")
@click.option("--since", default=None, help="Start at a duration ago (10m, 2h) or an ISO time.")
@click.option("--filter", "contains", default=None, help="Only records containing TEXT.")
@click.option("--request-id", default=None, help="Only one invocation's records.")
@click.option("--stage", "-s", default=None, help="Stage (default: the platform's).")
@click.option("--url", default=None, help="Platform URL [env: UNKAI_URL].")
def logs(
    function: str | None,
    access: str | None,
    tail: bool,
    since: str | None,
    contains: str | None,
    request_id: str | None,
    stage: str | None,
    url: str | None,
) -> None:
    """Print a function's logs (START, output, END, REPORT per invocation), or with --access a
    service's access logs (one line per request)."""
    if (function is None) == (access is None):
        raise CliError(
            "give either -f/--function NAME or --access SERVICE", hint="unkai logs -f hello"
        )
    name = function if function is not None else f"@access.{access}"
    client = control_client(url)
    since_ms = parse_since(since, time.time()) if since else None
    if since_ms is None and tail:
        since_ms = int((time.time() - 600) * 1000)
    params = {
        "stage": stage,
        "since_ms": since_ms,
        "filter": contains,
        "request_id": request_id,
        "after_id": 0,
    }
    path = f"/_unkai/api/functions/{name}/logs"
    body = client.call("GET", path, params=params)
    print_log_records(body["records"])
    while tail:
        time.sleep(TAIL_POLL_S)
        params["after_id"] = body["cursor"]
        body = client.call("GET", path, params=params)
        print_log_records(body["records"])
