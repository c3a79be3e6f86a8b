"""`unkai queues ls | create | set | delete | attributes | send | receive | purge | redrive`:
SQS-semantics queues through the control API (`/_unkai/api/queues`)."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from unkai.cli.attributes import attribute_pairs, message_attributes_of
from unkai.cli.client import CliError, control_client
from unkai.cli.functions import url_option

console = Console(highlight=False)
API = "/_unkai/api/queues"

attribute_option = click.option(
    "--attribute",
    "-a",
    "attributes",
    multiple=True,
    metavar="NAME=VALUE",
    help="A queue attribute with SQS's name, e.g. VisibilityTimeout=60 (repeatable).",
)


@click.group()
def queues() -> None:
    """Queues with SQS's semantics: visibility, delays, FIFO groups, dead-letter queues."""


@queues.command("ls")
@url_option
def ls(url: str | None) -> None:
    """List queues with their message counts."""
    listed = control_client(url).call("GET", API)["queues"]
    table = Table("name", "type", "visible", "in flight", "delayed", "oldest age", "DLQ")
    for q in listed:
        table.add_row(
            q["name"],
            "fifo" if q["fifo"] else "standard",
            str(q["visible"]),
            str(q["in_flight"]),
            str(q["delayed"]),
            f"{q['oldest_age_s']:.1f}s" if q["visible"] or q["in_flight"] or q["delayed"] else "-",
            q["dead_letter_queue"] or "-",
        )
    console.print(table if listed else "no queues")


@queues.command("create")
@click.argument("name")
@attribute_option
@click.option("--fifo", is_flag=True, help="A FIFO queue (the name must end in .fifo).")
@url_option
def create(name: str, attributes: tuple[str, ...], fifo: bool, url: str | None) -> None:
    """Create queue NAME (the same call again changes nothing)."""
    wanted = attribute_pairs(attributes)
    if fifo:
        wanted["FifoQueue"] = "true"
    result = control_client(url).call("POST", API, json={"name": name, "attributes": wanted})
    console.print(f"queue [bold]{result['name']}[/] ({result['arn']})")


@queues.command("set")
@click.argument("name")
@attribute_option
@url_option
def set_(name: str, attributes: tuple[str, ...], url: str | None) -> None:
    """Change attributes of queue NAME."""
    if not attributes:
        raise CliError("nothing to set", hint="give --attribute NAME=VALUE")
    path = f"{API}/{name}"
    result = control_client(url).call(
        "PATCH", path, json={"attributes": attribute_pairs(attributes)}
    )
    _print_attributes(result["attributes"])


@queues.command("delete")
@click.argument("name")
@url_option
def delete(name: str, url: str | None) -> None:
    """Delete queue NAME and every message in it."""
    result = control_client(url).call("DELETE", f"{API}/{name}")
    console.print(f"deleted queue {result['deleted']}")


@queues.command("attributes")
@click.argument("name")
@url_option
def attributes(name: str, url: str | None) -> None:
    """Show every attribute of queue NAME, counts included."""
    _print_attributes(control_client(url).call("GET", f"{API}/{name}")["attributes"])


@queues.command("send")
@click.argument("name")
@click.argument("body")
@click.option("--group", default=None, help="MessageGroupId (FIFO queues).")
@click.option("--dedup", default=None, help="MessageDeduplicationId (FIFO queues).")
@click.option("--delay", type=int, default=None, help="DelaySeconds, 0 to 900.")
@click.option(
    "--attribute",
    "-a",
    "message_attributes",
    multiple=True,
    metavar="NAME=TYPE:VALUE",
    help="A message attribute, e.g. color=String:red or n=Number:3 (repeatable; a Binary "
    "value is base64).",
)
@url_option
def send(
    name: str,
    body: str,
    group: str | None,
    dedup: str | None,
    delay: int | None,
    message_attributes: tuple[str, ...],
    url: str | None,
) -> None:
    """Send BODY to queue NAME."""
    message: dict[str, Any] = {"MessageBody": body}
    optional = {"MessageGroupId": group, "MessageDeduplicationId": dedup, "DelaySeconds": delay}
    message.update({k: v for k, v in optional.items() if v is not None})
    if message_attributes:
        message["MessageAttributes"] = message_attributes_of(message_attributes)
    result = control_client(url).call("POST", f"{API}/{name}/messages", json=message)
    sequence = result.get("SequenceNumber")
    click.echo(result["MessageId"] + (f" (sequence {sequence})" if sequence else ""))


@queues.command("receive")
@click.argument("name")
@click.option("--max", "max_messages", type=int, default=1, show_default=True, help="1 to 10.")
@click.option("--wait", "wait_s", type=int, default=None, help="Long-poll up to S seconds.")
@click.option("--visibility", "visibility_s", type=int, default=None, help="Hide for S seconds.")
@click.option("--delete", "delete_after", is_flag=True, help="Delete what was received.")
@url_option
def receive(
    name: str,
    max_messages: int,
    wait_s: int | None,
    visibility_s: int | None,
    delete_after: bool,
    url: str | None,
) -> None:
    """Receive messages from queue NAME and print them (id, receive count, attributes, body)."""
    client = control_client(url)
    request = {
        "MaxNumberOfMessages": max_messages,
        "WaitTimeSeconds": wait_s,
        "VisibilityTimeout": visibility_s,
    }
    json = {k: v for k, v in request.items() if v is not None}
    messages = client.call("POST", f"{API}/{name}/messages/receive", json=json)["Messages"]
    for message in messages:
        _print_message(message)
    if not messages:
        click.echo("no messages")
    elif delete_after:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        result = client.call("POST", f"{API}/{name}/messages/delete", json={"Entries": entries})
        for failure in result["Failed"]:
            click.echo(f"not deleted: {failure['Message']}", err=True)
        click.echo(f"deleted {len(result['Successful'])}")


@queues.command("purge")
@click.argument("name")
@url_option
def purge(name: str, url: str | None) -> None:
    """Delete every message of queue NAME (once a minute per queue)."""
    result = control_client(url).call("POST", f"{API}/{name}/purge")
    console.print(f"purged {result['purged']} messages from {result['name']}")


@queues.command("redrive")
@click.argument("dead_letter_queue")
@click.option("--to", "destination", default=None, help="Destination (default: its source).")
@url_option
def redrive(dead_letter_queue: str, destination: str | None, url: str | None) -> None:
    """Move the messages of DEAD_LETTER_QUEUE back to the queue it serves (or --to QUEUE)."""
    path = f"{API}/{dead_letter_queue}/redrive"
    result = control_client(url).call("POST", path, json={"destination": destination})
    console.print(
        f"moved {result['moved']} messages from {result['source']} to {result['destination']}"
    )


def _print_attributes(shown: dict[str, str]) -> None:
    table = Table("attribute", "value")
    for name in sorted(shown):
        table.add_row(name, Text(shown[name]))  # a Policy's brackets are not markup
    console.print(table)


def _print_message(message: dict[str, Any]) -> None:
    """Plain text (no markup): a body may hold anything, brackets included."""
    system = message["Attributes"]
    head = f"{message['MessageId']} received {system['ApproximateReceiveCount']}x"
    if "MessageGroupId" in system:
        head += f", group {system['MessageGroupId']}, sequence {system['SequenceNumber']}"
    click.echo(head)
    for name, value in sorted(message.get("MessageAttributes", {}).items()):
        shown = value.get("StringValue", value.get("BinaryValue"))
        click.echo(f"  {name} ({value['DataType']}): {shown}")
    click.echo(message["Body"])
