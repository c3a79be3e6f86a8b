"""`unkai up`: start a platform node (and deploy an app), with flags made from `Settings`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from unkai.config.settings import Settings, env_name, load_settings, settings_markdown

F = TypeVar("F", bound=Callable[..., Any])
console = Console(highlight=False)


def settings_options(func: F) -> F:
    """One click option per Settings field: the flag, its help and env var come from there."""
    for name, info in reversed(list(Settings.model_fields.items())):
        flag = "--" + name.replace("_", "-")
        annotation = info.annotation
        help_text = f"{info.description} [env: {env_name(name)}]"
        if annotation is bool:
            no_flag = "--no-" + name.replace("_", "-")
            option = click.option(f"{flag}/{no_flag}", name, default=None, help=help_text)
        else:
            kinds: dict[Any, Any] = {int: int, float: float, Path: click.Path(path_type=Path)}
            kind = kinds.get(annotation, str)
            option = click.option(flag, name, type=kind, default=None, help=help_text)
        func = option(func)
    return func


def _print_deployed(result: dict[str, Any]) -> None:
    functions = result.get("functions", [])
    console.print(
        f"[bold]{result.get('service')}[/] deployed to stage "
        f"[bold]{result.get('stage')}[/]: {len(functions)} function(s)"
    )
    for endpoint in result.get("endpoints", []):
        console.print(f"  {endpoint}")


def aws_auth_notice(settings: Settings) -> str | None:
    """One line when AWS calls are not as safe as they look: signatures unchecked, or checked
    with no key configured (every call refused)."""
    if not settings.checks_aws_signatures():
        why = "--aws-auth off" if settings.aws_auth == "off" else "listening on loopback only"
        return f"AWS signatures are not checked ({why}): any access key is accepted"
    if not settings.aws_credentials.get_secret_value():
        return (
            "AWS signatures are checked but --aws-credentials is empty: every AWS call is refused"
        )
    return None


@click.command()
@click.argument(
    "app_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--stage", "-s", default=None, help="Stage to deploy APP_DIR to.")
@settings_options
def up(app_dir: Path | None, stage: str | None, **overrides: Any) -> None:
    """Start the platform; with APP_DIR, deploy that app and print its endpoints."""
    from unkai.serve import install_event_loop, serve

    settings = load_settings(overrides, os.environ)
    loop_name = install_event_loop()

    def ready(url: str) -> None:
        notice = aws_auth_notice(settings)
        if notice is not None:
            console.print(notice)
        console.print(f"unkai ready {url}  (data {settings.data_dir}, {loop_name}; Ctrl-C stops)")

    def https(url: str) -> None:
        console.print(f"unkai https {url}")

    asyncio.run(
        serve(
            settings,
            app_dir=app_dir,
            stage=stage,
            on_deployed=_print_deployed,
            on_ready=ready,
            on_https=https,
        )
    )


@click.command(name="settings")
@click.option("--markdown", is_flag=True, help="Print the settings table for the docs.")
def settings_cmd(markdown: bool) -> None:
    """Show the platform settings (flags of `unkai up`, UNKAI_* variables)."""
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    current = load_settings({}, os.environ)
    for name, value in current.model_dump().items():
        click.echo(f"{env_name(name)}={value}")
