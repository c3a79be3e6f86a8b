"""`unkai topics ls | create | delete | subscriptions | subscribe | unsubscribe | publish`:
SNS-semantics topics through the control API (`/_unkai/api/topics`, `/_unkai/api/subscriptions`).

`--attribute` parses as `unkai queues` parses it, with the same helpers: SNS and SQS write
subscription/queue attributes and message attributes the same way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from unkai.cli.attributes import attribute_pairs, message_attributes_of
from unkai.cli.client import control_client
from unkai.cli.functions import url_option

console = Console(highlight=False)
API = "/_unkai/api/topics"
SUBSCRIPTIONS = "/_unkai/api/subscriptions"


@click.group()
def topics() -> None:
    """Topics with SNS's semantics: fan-out to queues, functions and HTTP, filter policies."""


@topics.command("ls")
@url_option
def ls(url: str | None) -> None:
    """List topics with their subscription counts and deliveries still owed."""
    listed = control_client(url).call("GET", API)["topics"]
    table = Table("name", "subscriptions", "pending deliveries", "arn")
    for t in listed:
        table.add_row(t["name"], str(t["subscriptions"]), str(t["pending_deliveries"]), t["arn"])
    console.print(table if listed else "no topics")


@topics.command("create")
@click.argument("name")
@url_option
def create(name: str, url: str | None) -> None:
    """Create topic NAME (the same call again changes nothing)."""
    result = control_client(url).call("POST", API, json={"name": name})
    console.print(f"topic [bold]{result['name']}[/] ({result['arn']})")


@topics.command("delete")
@click.argument("name")
@url_option
def delete(name: str, url: str | None) -> None:
    """Delete topic NAME and its subscriptions."""
    result = control_client(url).call("DELETE", f"{API}/{name}")
    console.print(f"deleted topic {result['deleted']}")


@topics.command("subscriptions")
@click.argument("topic", required=False)
@url_option
def subscriptions(topic: str | None, url: str | None) -> None:
    """List the subscriptions of TOPIC, or of every topic."""
    path = f"{API}/{topic}/subscriptions" if topic else SUBSCRIPTIONS
    listed = control_client(url).call("GET", path)["subscriptions"]
    table = Table("topic", "protocol", "endpoint", "attributes", "arn")
    for s in listed:
        table.add_row(
            s["topic"], s["protocol"], s["endpoint"], _shown_attributes(s), Text(s["arn"])
        )
    console.print(table if listed else "no subscriptions")


@topics.command("subscribe")
@click.argument("topic")
@click.argument("protocol", type=click.Choice(["sqs", "lambda", "http", "https"]))
@click.argument("endpoint")
@click.option(
    "--attribute",
    "-a",
    "attributes",
    multiple=True,
    metavar="NAME=VALUE",
    help="A subscription attribute with SNS's name, e.g. RawMessageDelivery=true or "
    'FilterPolicy=\'{"color": ["red"]}\' (repeatable).',
)
@url_option
def subscribe(
    topic: str, protocol: str, endpoint: str, attributes: tuple[str, ...], url: str | None
) -> None:
    """Subscribe ENDPOINT to TOPIC: a queue name (sqs), <stage>/<function> or a function of
    the default stage (lambda), or a URL (http, https). Prints the subscription's ARN."""
    request = {"protocol": protocol, "endpoint": endpoint}
    result = control_client(url).call(
        "POST",
        f"{API}/{topic}/subscriptions",
        json={**request, "attributes": attribute_pairs(attributes)},
    )
    click.echo(result["arn"])


@topics.command("unsubscribe")
@click.argument("arn")
@url_option
def unsubscribe(arn: str, url: str | None) -> None:
    """Delete the subscription ARN (a function's `- sns:` event goes with a deploy)."""
    result = control_client(url).call("DELETE", f"{SUBSCRIPTIONS}/{quote(arn, safe=':')}")
    click.echo(f"unsubscribed {result['unsubscribed']}")


@topics.command("publish")
@click.argument("topic")
@click.argument("message")
@click.option("--subject", default=None, help="Subject (1 to 100 characters).")
@click.option(
    "--attribute",
    "-a",
    "message_attributes",
    multiple=True,
    metavar="NAME=TYPE:VALUE",
    help='A message attribute, e.g. color=String:red, n=Number:3 or tags=String.Array:["a"] '
    "(repeatable).",
)
@url_option
def publish(
    topic: str,
    message: str,
    subject: str | None,
    message_attributes: tuple[str, ...],
    url: str | None,
) -> None:
    """Publish MESSAGE to TOPIC; prints its MessageId."""
    request: dict[str, Any] = {"Message": message}
    if subject is not None:
        request["Subject"] = subject
    if message_attributes:
        request["MessageAttributes"] = message_attributes_of(message_attributes)
    result = control_client(url).call("POST", f"{API}/{topic}/messages", json=request)
    click.echo(result["MessageId"])


def _shown_attributes(sub: dict[str, Any]) -> Text:
    """The attributes that differ from SNS's defaults, as plain text (a policy has brackets)."""
    attributes = sub["attributes"]
    shown = [f"{k}={v}" for k, v in sorted(attributes.items()) if _not_default(k, v)]
    return Text(" ".join(shown) or "-")


def _not_default(name: str, value: str) -> bool:
    return (name, value) not in {
        ("RawMessageDelivery", "false"),
        ("FilterPolicyScope", "MessageAttributes"),
    }
