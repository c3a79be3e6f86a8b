"""How the CLI prints log records (shared by `logs` and `invoke --log`)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import click


def format_timestamp(timestamp_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp_ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def print_log_records(records: Iterable[dict[str, Any]]) -> None:
    for record in records:
        stamp = format_timestamp(record["timestamp_ms"])
        for line in record["message"].rstrip("\n").split("\n"):
            click.echo(f"{stamp} {line}")
