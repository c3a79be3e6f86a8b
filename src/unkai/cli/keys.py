"""`unkai keys create | ls | revoke`: API keys for routes with `apiKeyRequired`."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from unkai.cli.client import control_client
from unkai.cli.functions import stage_option, url_option
from unkai.cli.output import format_timestamp

console = Console(highlight=False)


@click.group()
def keys() -> None:
    """API keys (sent as `x-api-key`) and the usage plan each one is on."""


@keys.command("create")
@click.argument("name")
@click.option("--plan", required=True, help="Usage plan (from provider.httpApi.usagePlans).")
@click.option("--value", default=None, help="Use this value (20+ characters) instead of a new one.")
@stage_option
@url_option
def create(name: str, plan: str, value: str | None, stage: str | None, url: str | None) -> None:
    """Create key NAME on PLAN and print its value: it is stored hashed and never shown again."""
    result = control_client(url).call(
        "POST",
        "/_unkai/api/keys",
        json={"name": name, "plan": plan, "stage": stage, "value": value},
    )
    console.print(
        f"key [bold]{result['name']}[/] ({result['id']}) @ {result['stage']}, plan {plan}"
    )
    click.echo(result["value"])


@keys.command("ls")
@stage_option
@url_option
def ls(stage: str | None, url: str | None) -> None:
    """List keys (names, plans and ids; never values)."""
    listed = control_client(url).call("GET", "/_unkai/api/keys", params={"stage": stage})["keys"]
    table = Table("stage", "name", "plan", "id", "created")
    for key in listed:
        table.add_row(
            key["stage"], key["name"], key["plan"], key["id"], format_timestamp(key["created_ms"])
        )
    console.print(table if listed else "no API keys")


@keys.command("revoke")
@click.argument("name")
@stage_option
@url_option
def revoke(name: str, stage: str | None, url: str | None) -> None:
    """Delete key NAME: requests with it are refused (403) from now on."""
    result = control_client(url).call("DELETE", f"/_unkai/api/keys/{name}", params={"stage": stage})
    console.print(f"revoked {result['name']} ({result['id']}) @ {result['stage']}")
