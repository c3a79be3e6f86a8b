"""`unkai deploy | invoke | ls | info | remove`: thin calls on the control and invoke APIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from unkai.cli.client import (
    CliError,
    control_client,
    error_from_response,
)
from unkai.cli.output import print_log_records

console = Console(highlight=False)
url_option = click.option("--url", default=None, help="Platform URL [env: UNKAI_URL].")
stage_option = click.option("--stage", "-s", default=None, help="Stage (default: the platform's).")


@click.command()
@click.argument("app_dir", default=".", type=click.Path(file_okay=False, path_type=Path))
@stage_option
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@url_option
def deploy(app_dir: Path, stage: str | None, dry_run: bool, url: str | None) -> None:
    """Package APP_DIR (default .) and publish its functions and routes."""
    if not app_dir.is_dir():
        raise CliError(f"{app_dir} is not a directory", hint="pass the folder with unkai.yml")
    result = control_client(url).call(
        "POST",
        "/_unkai/api/deploy",
        json={"app_dir": str(app_dir.resolve()), "stage": stage, "dry_run": dry_run},
    )
    _print_result(result, dry_run)


def _print_result(result: dict[str, Any], dry_run: bool) -> None:
    steps = result.get("steps", [])
    title = "plan (dry run, nothing changed)" if dry_run else "applied"
    console.print(f"[bold]{result.get('service')}[/] @ {result.get('stage')}: {title}")
    for step in steps:
        console.print(f"  - {step}")
    if not steps:
        console.print("  nothing changed")
    for endpoint in result.get("endpoints", []):
        console.print(f"  endpoint: {endpoint}")


def _payload(data: str | None, path: Path | None) -> bytes:
    if data is not None and path is not None:
        raise CliError("give either -d/--data or -p/--path, not both")
    raw = path.read_bytes() if path is not None else (data or "{}").encode()
    try:
        json.loads(raw)
    except ValueError as exc:
        where = str(path) if path is not None else "--data"
        raise CliError(
            f"{where} is not valid JSON: {exc}",
            hint='pass a JSON document, e.g. -d \'{"name": "ada"}\'',
        ) from None
    return raw


@click.group(invoke_without_command=True)
@click.option("--function", "-f", "function", default=None, help="Function name.")
@click.option("--data", "-d", default=None, help="Event as a JSON string.")
@click.option(
    "--path",
    "-p",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File with the event JSON.",
)
@click.option("--qualifier", "-q", default=None, help="Version number (default $LATEST).")
@click.option("--log", "-l", "show_log", is_flag=True, help="Print the invocation's log too.")
@click.option(
    "--async", "run_async", is_flag=True, help="Queue the event (202) and print its request id."
)
@stage_option
@url_option
@click.pass_context
def invoke(
    ctx: click.Context,
    function: str | None,
    data: str | None,
    path: Path | None,
    qualifier: str | None,
    show_log: bool,
    run_async: bool,
    stage: str | None,
    url: str | None,
) -> None:
    """Invoke a deployed function and print its result (with --async: queue the event)."""
    if ctx.invoked_subcommand is not None:
        return
    if function is None:
        raise CliError("missing -f/--function", hint="unkai invoke -f hello -d '{}'")
    client = control_client(url)
    headers = {"x-unkai-stage": stage} if stage else {}
    if run_async:
        headers["x-amz-invocation-type"] = "Event"
    response = client.request(
        "POST",
        f"/2015-03-31/functions/{function}/invocations",
        params={"Qualifier": qualifier},
        content=_payload(data, path),
        headers=headers,
    )
    if response.status_code >= 400:
        raise error_from_response(response)
    if run_async:
        console.print(f"accepted {response.headers.get('x-amzn-requestid')} (runs asynchronously)")
        return
    _print_payload(response.content, response.headers.get("x-amz-function-error"))
    if show_log:
        request_id = response.headers.get("x-amzn-requestid")
        body = client.call(
            "GET",
            f"/_unkai/api/functions/{function}/logs",
            params={"stage": stage, "request_id": request_id},
        )
        print_log_records(body["records"])
    if response.headers.get("x-amz-function-error"):
        raise SystemExit(1)


def _print_payload(content: bytes, function_error: str | None) -> None:
    """The payload on stdout as it is (JSON indented), never wrapped at the terminal's width,
    so that it pipes into `jq`; a function error is named on stderr (and the exit status is 1).
    """
    try:
        text = json.dumps(json.loads(content), indent=2, ensure_ascii=False)
    except ValueError:
        text = content.decode("utf-8", "replace")
    if function_error:
        click.secho(f"function error ({function_error}):", fg="red", err=True)
    click.echo(text)


@invoke.command(name="local")
@click.option("--function", "-f", "function", required=True, help="Function name.")
@click.option("--data", "-d", default=None, help="Event as a JSON string.")
@click.option(
    "--path",
    "-p",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File with the event JSON.",
)
@click.option(
    "--app-dir",
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder with unkai.yml (default .).",
)
def invoke_local(function: str, data: str | None, path: Path | None, app_dir: Path) -> None:
    """Run a function of the app in APP_DIR once, in a fresh process, without a platform."""
    from unkai.cli.local import run_local

    result, is_error = run_local(app_dir, function, _payload(data, path))
    _print_payload(result, "Unhandled" if is_error else None)
    if is_error:
        raise SystemExit(1)


@click.command(name="ls")
@stage_option
@url_option
def ls(stage: str | None, url: str | None) -> None:
    """List deployed functions."""
    functions = control_client(url).call("GET", "/_unkai/api/functions", params={"stage": stage})
    table = Table("stage", "function", "version", "service", "handler", "memory", "timeout")
    for f in functions["functions"]:
        table.add_row(
            f["stage"],
            f["name"],
            f["version"],
            f["service"],
            f["handler"],
            f"{f['memory_size_mb']} MB",
            f"{f['timeout_s']} s",
        )
    console.print(table)


@click.command()
@click.argument("name")
@stage_option
@url_option
def info(name: str, stage: str | None, url: str | None) -> None:
    """Show a function: configuration, version, routes and instances."""
    f = control_client(url).call("GET", f"/_unkai/api/functions/{name}", params={"stage": stage})
    for key in (
        "name",
        "stage",
        "service",
        "version",
        "handler",
        "runtime",
        "memory_size_mb",
        "timeout_s",
        "reserved_concurrency",
        "code_sha256",
    ):
        console.print(f"[bold]{key}[/]: {f.get(key)}")
    for route in f.get("routes", []):
        console.print(f"[bold]route[/]: {route['method']} {route['url']}")
    for event in f.get("events", []):
        console.print(f"[bold]event[/]: {event['method']} {event['path']}")
    for q in f.get("queues", []):
        console.print(
            f"[bold]queue[/]: {q['name']}: {q['visible']} visible, {q['in_flight']} in flight, "
            f"{q['delayed']} delayed, oldest {q['oldest_age_s']:.1f} s; "
            f"{q['workers']} workers, {q['processed']} processed"
        )
    states = [i["state"] for i in f.get("instances", [])]
    console.print(
        f"[bold]instances[/]: {len(states)} "
        + (f"({', '.join(sorted(set(states)))})" if states else "")
    )


@click.command()
@click.argument("app_dir", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--service", default=None, help="Service name (default: from APP_DIR/unkai.yml).")
@stage_option
@click.option("--dry-run", is_flag=True, help="Print what would be removed.")
@url_option
def remove(
    app_dir: Path, service: str | None, stage: str | None, dry_run: bool, url: str | None
) -> None:
    """Remove a service's functions and routes from a stage."""
    if service is None:
        from unkai.config.load import load_app

        service = load_app(app_dir).service
    result = control_client(url).call(
        "POST", "/_unkai/api/remove", json={"service": service, "stage": stage, "dry_run": dry_run}
    )
    _print_result(result, dry_run)
