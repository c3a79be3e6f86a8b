"""`unkai logs`: query a function's logs by time, text and request id, or follow them live.

The control API answers in pages of at most PAGE_RECORDS records, ascending by id, with a cursor
(`after_id`) for the next page. Three ways to read them:
  no --since, no --tail   the newest page only (the API's `newest` answer), like `aws logs
                          tail`, with a notice when older records were left out;
  --since                 every record from then on, page by page, like `aws logs tail
                          --since`; at most MAX_PRINTED_RECORDS, with a notice if more exist;
  --tail                  the same from --since (default 10 minutes ago), then forever: a full
                          page is followed at once, an empty or short one by a TAIL_POLL_S wait.
"""

from __future__ import annotations

import datetime
import re
import time
from typing import Any, NoReturn

import click

from unkai.cli.client import CliError, ControlClient, control_client
from unkai.cli.output import format_timestamp, print_log_records

#: The query parameters of the logs endpoint that stay the same from page to page.
Params = dict[str, Any]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The last millisecond `datetime` can print (the end of year 9999); the control API refuses
#: time bounds past it, and a later --since would match nothing anyway.
_LAST_MS = (
    datetime.datetime.max.replace(tzinfo=datetime.UTC)
    - datetime.datetime.fromtimestamp(0, datetime.UTC)
) // datetime.timedelta(milliseconds=1)
#: How often `--tail` asks for new records.
TAIL_POLL_S = 0.5
#: Records asked for per request. The API allows up to 10,000; a record holds a whole
#: invocation's output, so smaller pages keep each answer (and the CLI's memory) small.
PAGE_RECORDS = 1000
#: Without --tail, `--since` prints at most this many records (a window too wide to read
#: anyway); a notice says so and how to narrow it.
MAX_PRINTED_RECORDS = 100_000


def parse_since(value: str, now_s: float) -> int:
    """`10m`, `2h`, `1d` ago, or an ISO 8601 time, as epoch milliseconds.

    A time before 1970 (`9999999999999w` ago) means from the oldest record, 0, as the control
    API takes no negative bound; one past the year 9999 is clamped to its end. Raises CliError
    naming the option and the accepted forms for anything else.
    """
    match = _DURATION.match(value.strip())
    if match:
        ago_s = float(match.group(1)) * _UNIT_S[match.group(2)]
        return _clamp_ms((now_s - ago_s) * 1000)
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"--since {value!r} is neither a duration nor an ISO time",
            hint="give a number and s, m, h, d or w (10m, 2h, 1d), or e.g. 2026-11-22T10:00:00",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return _clamp_ms(moment.timestamp() * 1000)


def _clamp_ms(epoch_ms: float) -> int:
    """`epoch_ms` within [0, _LAST_MS]; also maps -inf (a duration too long for a float)."""
    if not epoch_ms > 0:
        return 0
    return int(min(epoch_ms, _LAST_MS))


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
    params = {"stage": stage, "filter": contains, "request_id": request_id}
    path = f"/_unkai/api/functions/{name}/logs"
    if tail:
        start_ms = since_ms if since_ms is not None else int((time.time() - 600) * 1000)
        follow(client, path, {**params, "since_ms": start_ms})
    elif since_ms is None:
        print_newest(client, path, params)
    else:
        print_window(client, path, {**params, "since_ms": since_ms})


def fetch_page(
    client: ControlClient, path: str, params: Params, after_id: int, limit: int = PAGE_RECORDS
) -> tuple[list[dict[str, Any]], int]:
    """The records after `after_id` (at most `limit`, oldest first) and the next cursor."""
    body = client.call("GET", path, params={**params, "after_id": after_id, "limit": limit})
    return body["records"], body["cursor"]


def print_newest(client: ControlClient, path: str, params: Params) -> None:
    """The newest PAGE_RECORDS records; one more is asked for to know whether to say that
    older ones were left out (with no start time the API answers the newest, not the oldest)."""
    records, _ = fetch_page(client, path, params, 0, PAGE_RECORDS + 1)
    if len(records) > PAGE_RECORDS:
        records = records[1:]
        click.echo(
            f"note: showing the newest {PAGE_RECORDS} records; older ones were left out"
            " (see them all with --since, e.g. --since 1h)",
            err=True,
        )
    print_log_records(records)


def print_window(client: ControlClient, path: str, params: Params) -> None:
    """Every record from `since_ms` on, page by page, up to MAX_PRINTED_RECORDS.

    A short page is the last one: the API answers `limit` records whenever that many exist.
    """
    cursor = printed = 0
    while printed < MAX_PRINTED_RECORDS:
        records, cursor = fetch_page(client, path, params, cursor)
        print_log_records(records)
        printed += len(records)
        if len(records) < PAGE_RECORDS:
            return
    if fetch_page(client, path, params, cursor, limit=1)[0]:
        click.echo(
            f"note: showing the first {printed} records since"
            f" {format_timestamp(params['since_ms'])}; newer ones were left out"
            " (narrow --since, or use --filter or --request-id)",
            err=True,
        )


def follow(client: ControlClient, path: str, params: Params) -> NoReturn:
    """Print every record from `since_ms` on, then new ones as they come, until Ctrl-C."""
    cursor = 0
    while True:
        records, cursor = fetch_page(client, path, params, cursor)
        print_log_records(records)
        if len(records) < PAGE_RECORDS:
            time.sleep(TAIL_POLL_S)
