"""`unkai schedules ls | enable | disable`: the functions that run on a schedule."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from unkai.cli.client import control_client
from unkai.cli.functions import stage_option, url_option
from unkai.cli.output import format_timestamp

console = Console(highlight=False)


@click.group()
def schedules() -> None:
    """Schedules from `- schedule:` events (rate(...) or cron(...))."""


@schedules.command("ls")
@stage_option
@url_option
def ls(stage: str | None, url: str | None) -> None:
    """List schedules with their next and last runs."""
    listed = control_client(url).call("GET", "/_unkai/api/schedules", params={"stage": stage})
    table = Table("stage", "name", "function", "expression", "enabled", "next", "last")
    for s in listed["schedules"]:
        table.add_row(
            s["stage"],
            s["name"],
            s["function"],
            f"{s['expression']} ({s['timezone']})",
            "yes" if s["enabled"] else "no",
            format_timestamp(s["next_ms"]) if s["next_ms"] else "-",
            format_timestamp(s["last_ms"]) if s["last_ms"] else "-",
        )
    console.print(table if listed["schedules"] else "no schedules")


@schedules.command("enable")
@click.argument("name")
@stage_option
@url_option
def enable(name: str, stage: str | None, url: str | None) -> None:
    """Run schedule NAME again (from its next time on)."""
    _switch(name, stage, url, "enable")


@schedules.command("disable")
@click.argument("name")
@stage_option
@url_option
def disable(name: str, stage: str | None, url: str | None) -> None:
    """Stop running schedule NAME until it is enabled (or redeployed enabled)."""
    _switch(name, stage, url, "disable")


def _switch(name: str, stage: str | None, url: str | None, action: str) -> None:
    path = f"/_unkai/api/schedules/{name}/{action}"
    result = control_client(url).call("POST", path, params={"stage": stage})
    console.print(f"schedule {result['name']} @ {result['stage']}: {action}d")
