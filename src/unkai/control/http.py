"""HTTP mapping of the control plane under `/_unkai/`: parse, call ControlService, answer JSON.

Errors are mapped once, here, from `unkai.gateway.errors.status_for`; the body is
`{"error": code, "message": ..., "hint": ...}` so the CLI can print what to do next.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from unkai.control.service import ControlService
from unkai.errors import ConfigError, UnkaiError
from unkai.gateway.errors import status_for


def _error_response(exc: UnkaiError) -> JSONResponse:
    body = {"error": exc.code, "message": exc.message, "hint": exc.hint}
    return JSONResponse(body, status_code=status_for(exc))


def _int_param(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"must be an integer, got {raw!r}", field=name) from None


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ConfigError("request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ConfigError("request body must be a JSON object")
    return body


class ControlHttp:
    """Starlette endpoints; each one parses, calls ControlService and answers JSON."""

    def __init__(self, control: ControlService) -> None:
        self.control = control

    async def health(self, request: Request) -> Response:
        """503 until the node has started and applied its start-up deploy, then 200."""
        if not self.control.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def deploy(self, request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body.get("app_dir"), str):
            raise ConfigError("app_dir (a directory path) is required", field="app_dir")
        result = await self.control.deploy(
            body["app_dir"], body.get("stage"), bool(body.get("dry_run"))
        )
        return JSONResponse(result)

    async def remove(self, request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body.get("service"), str):
            raise ConfigError("service (a service name) is required", field="service")
        result = await self.control.remove(
            body["service"], body.get("stage"), bool(body.get("dry_run"))
        )
        return JSONResponse(result)

    async def functions(self, request: Request) -> Response:
        stage = request.query_params.get("stage")
        return JSONResponse({"functions": await self.control.functions(stage)})

    async def function_info(self, request: Request) -> Response:
        name = request.path_params["name"]
        stage = request.query_params.get("stage")
        return JSONResponse(await self.control.function_info(name, stage))

    async def drain(self, request: Request) -> Response:
        name = request.path_params["name"]
        return JSONResponse(await self.control.drain(name, request.query_params.get("stage")))

    async def instances(self, request: Request) -> Response:
        return JSONResponse(self.control.instances())

    async def logs(self, request: Request) -> Response:
        q = request.query_params
        result = await self.control.logs(
            request.path_params["name"],
            q.get("stage"),
            since_ms=_int_param(request, "since_ms"),
            until_ms=_int_param(request, "until_ms"),
            request_id=q.get("request_id") or None,
            contains=q.get("filter") or None,
            after_id=_int_param(request, "after_id", 0) or 0,
            limit=min(_int_param(request, "limit", 1000) or 1000, 10000),
        )
        return JSONResponse(result)

    async def create_key(self, request: Request) -> Response:
        body = await _json_body(request)
        for field in ("name", "plan"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise ConfigError(f"{field} is required", field=field)
        value = body.get("value")
        if value is not None and not isinstance(value, str):
            raise ConfigError("value must be a string", field="value")
        result = await self.control.create_key(body["name"], body["plan"], body.get("stage"), value)
        return JSONResponse(result, status_code=201)

    async def keys(self, request: Request) -> Response:
        return JSONResponse({"keys": self.control.keys(request.query_params.get("stage"))})

    async def revoke_key(self, request: Request) -> Response:
        name = request.path_params["name"]
        return JSONResponse(await self.control.revoke_key(name, request.query_params.get("stage")))

    async def schedules(self, request: Request) -> Response:
        return JSONResponse(
            {"schedules": self.control.schedules(request.query_params.get("stage"))}
        )

    async def enable_schedule(self, request: Request) -> Response:
        return await self._set_schedule(request, True)

    async def disable_schedule(self, request: Request) -> Response:
        return await self._set_schedule(request, False)

    async def _set_schedule(self, request: Request, enabled: bool) -> Response:
        name = request.path_params["name"]
        stage = request.query_params.get("stage")
        return JSONResponse(await self.control.set_schedule_enabled(name, stage, enabled))


async def _on_unkai_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, UnkaiError):  # registered for UnkaiError only
        raise exc
    return _error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return JSONResponse({"error": "HttpError", "message": detail}, status_code=status)


def build_control_app(control: ControlService) -> Starlette:
    h = ControlHttp(control)
    routes = [
        Route("/_unkai/health", h.health),
        Route("/_unkai/api/deploy", h.deploy, methods=["POST"]),
        Route("/_unkai/api/remove", h.remove, methods=["POST"]),
        Route("/_unkai/api/functions", h.functions),
        Route("/_unkai/api/functions/{name}", h.function_info),
        Route("/_unkai/api/functions/{name}/drain", h.drain, methods=["POST"]),
        Route("/_unkai/api/functions/{name}/logs", h.logs),
        Route("/_unkai/api/instances", h.instances),
        Route("/_unkai/api/keys", h.keys, methods=["GET"]),
        Route("/_unkai/api/keys", h.create_key, methods=["POST"]),
        Route("/_unkai/api/keys/{name}", h.revoke_key, methods=["DELETE"]),
        Route("/_unkai/api/schedules", h.schedules, methods=["GET"]),
        Route("/_unkai/api/schedules/{name}/enable", h.enable_schedule, methods=["POST"]),
        Route("/_unkai/api/schedules/{name}/disable", h.disable_schedule, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={UnkaiError: _on_unkai_error, HTTPException: _on_http_error},
    )
