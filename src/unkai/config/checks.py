"""Checks a valid schema cannot express: files the manifest names, and routes that collide.

They run after validation, against the app directory, so that `unkai deploy` fails before any
bundle is copied and names the exact line (Lambda would only fail at the first invocation,
with `Runtime.ImportModuleError`; we prefer to fail at deploy).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NoReturn

from unkai.config.source import ManifestSource, format_key_path
from unkai.config.spec import AppSpec, FunctionSpec
from unkai.errors import ConfigError

#: API Gateway treats `/items/{id}` and `/items/{name}` as the same route.
_PATH_PARAMETER = re.compile(r"\{[^}+]+\}")


def handler_module_files(handler: str) -> tuple[str, str, str]:
    """(module name, `mod.py` relative path, `mod/__init__.py` relative path) of a handler.

    Lambda's form `dir/file.function`: the part before the last '/' is a directory taken as
    written, the dotted rest is `module.function` where the module may be a package path.
    """
    module = handler.rpartition(".")[0]
    directory, _, dotted = module.rpartition("/")
    relative = dotted.replace(".", "/")
    if directory:
        relative = f"{directory}/{relative}"
    return module, f"{relative}.py", f"{relative}/__init__.py"


def requirements_file(
    app_dir: Path, requirements: str | None, *, default_applies: bool = True
) -> Path | None:
    """A function's requirements file, or None.

    Its own `requirements` when set; otherwise `requirements.txt` in the app directory if it
    exists, but only while `default_applies`: once any function of the manifest names its
    requirements explicitly, dependencies are per function and the others get none (so a
    function's packages are on its own path only).
    """
    if requirements is not None:
        return app_dir / requirements
    default = app_dir / "requirements.txt"
    return default if default_applies and default.is_file() else None


def check_app(app: AppSpec, app_dir: Path, source: ManifestSource) -> None:
    """Raise ConfigError for a missing handler module or requirements file, or a route clash."""
    for name, function in app.functions.items():
        runtime = function.runtime or app.provider.runtime
        _check_files(name, function, runtime, app_dir, source)
        for field, target in (
            ("onSuccess", function.destinations.on_success),
            ("onFailure", function.destinations.on_failure),
        ):
            if target is not None and (target == name or target.endswith(f":function:{name}")):
                _fail(
                    source,
                    ("functions", name, "destinations", field),
                    "a function cannot be its own destination (it would invoke itself forever)",
                )
    _check_routes(app, source)


def _check_files(
    name: str, function: FunctionSpec, runtime: str, app_dir: Path, source: ManifestSource
) -> None:
    if runtime.startswith("provided"):
        _check_bootstrap(name, runtime, app_dir, source)
    else:
        _check_handler_module(name, function, app_dir, source)
    if function.requirements is not None and not (app_dir / function.requirements).is_file():
        _fail(
            source,
            ("functions", name, "requirements"),
            f"file {function.requirements!r} not found in {app_dir}",
        )


def _check_bootstrap(name: str, runtime: str, app_dir: Path, source: ManifestSource) -> None:
    """A custom runtime's handler is only passed on (`_HANDLER`); `bootstrap` is what runs
    (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html)."""
    bootstrap = app_dir / "bootstrap"
    if not bootstrap.is_file() or not os.access(bootstrap, os.X_OK):
        what = "is not executable" if bootstrap.is_file() else "is missing"
        _fail(
            source,
            ("functions", name, "runtime"),
            f"runtime {runtime!r} runs the executable file 'bootstrap' in {app_dir}, which "
            f"{what}; add it (chmod +x bootstrap) or use a python3.N runtime",
        )


def _check_handler_module(
    name: str, function: FunctionSpec, app_dir: Path, source: ManifestSource
) -> None:
    module, as_file, as_package = handler_module_files(function.handler)
    if not ((app_dir / as_file).is_file() or (app_dir / as_package).is_file()):
        _fail(
            source,
            ("functions", name, "handler"),
            f"module {module!r} not found: no {as_file} in {app_dir}",
        )


def _check_routes(app: AppSpec, source: ManifestSource) -> None:
    """Two events with the same method and path (parameter names aside) are one route."""
    owners: dict[tuple[str, str], tuple[str, int]] = {}
    for name, function in app.functions.items():
        for index, event in enumerate(function.events):
            if event.websocket is not None:
                loc = ("functions", name, "events", index, "websocket")
                key = ("WEBSOCKET", event.websocket.route)
                if key in owners:
                    other, line = owners[key]
                    _fail(
                        source,
                        loc,
                        f"websocket route {event.websocket.route} is also handled by function "
                        f"{other!r} (line {line})",
                    )
                owners[key] = (name, source.line_of(loc))
            if event.http is None:
                continue
            loc = ("functions", name, "events", index, "http")
            named = event.http.authorizer
            if named is not None and named.name not in app.provider.http_api.authorizers:
                known = ", ".join(sorted(app.provider.http_api.authorizers)) or "none"
                _fail(
                    source,
                    (*loc, "authorizer"),
                    f"no authorizer {named.name!r} in provider.httpApi.authorizers "
                    f"(defined: {known})",
                )
            key = (event.http.method, route_shape(event.http.path))
            if key in owners:
                other, line = owners[key]
                _fail(
                    source,
                    loc,
                    f"route {event.http.method} {event.http.path} is also "
                    f"defined by function {other!r} (line {line})",
                )
            owners[key] = (name, source.line_of(loc))


def route_shape(path: str) -> str:
    """The path with parameter names erased, for comparing routes (`/a/{id}` -> `/a/{}`)."""
    return _PATH_PARAMETER.sub("{}", path)


def _fail(source: ManifestSource, loc: tuple[str | int, ...], message: str) -> NoReturn:
    raise ConfigError(
        message, path=source.display_name, line=source.line_of(loc), field=format_key_path(loc)
    )
