"""`unkai`: the command line. Each command parses its arguments, then calls the control API
(or, for `up` and `invoke local`, a core service); errors print a next step, not a traceback."""

from __future__ import annotations

import sys

import click

from unkai.cli.client import CliError
from unkai.cli.functions import deploy, info, invoke, ls, remove
from unkai.cli.keys import keys
from unkai.cli.logs import logs
from unkai.cli.queues import queues
from unkai.cli.schedules import schedules
from unkai.cli.topics import topics
from unkai.cli.up import settings_cmd, up
from unkai.errors import UnkaiError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="unkai")
def cli() -> None:
    """unkai: AWS Lambda's model on your own machines."""


for command in (
    up,
    deploy,
    invoke,
    logs,
    ls,
    info,
    remove,
    keys,
    schedules,
    queues,
    topics,
    settings_cmd,
):
    cli.add_command(command)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (CliError, UnkaiError) as exc:
        click.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
