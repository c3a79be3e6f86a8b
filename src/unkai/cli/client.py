"""The CLI's HTTP client for the control API: one place that turns failures into advice."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"


class CliError(Exception):
    """A user-facing failure: printed as `error: message` plus a hint, exit status 1."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def platform_url(explicit: str | None, environ: Mapping[str, str]) -> str:
    return (explicit or environ.get("UNKAI_URL") or DEFAULT_URL).rstrip("/")


class ControlClient:
    def __init__(self, url: str, timeout_s: float = 930.0) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                params=_clean(params),
                content=content,
                headers=headers,
            )
        except httpx.ConnectError:
            raise CliError(
                f"no unkai platform answers at {self.url}",
                hint="start one with `unkai up DIR`, or point UNKAI_URL / --url at it",
            ) from None
        except httpx.TimeoutException:
            raise CliError(f"the platform at {self.url} did not answer in time") from None
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A control API call; non-2xx answers become CliError with the server's message."""
        response = self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise error_from_response(response)
        return response.json()


def error_from_response(response: httpx.Response) -> CliError:
    try:
        body = response.json()
    except ValueError:
        return CliError(f"HTTP {response.status_code}: {response.text[:300]}")
    message = body.get("message") or body.get("Message") or str(body)
    return CliError(message, hint=body.get("hint"))


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None}


def control_client(url: str | None) -> ControlClient:
    """The client of the platform at `url`, or at UNKAI_URL / the local platform's address."""
    return ControlClient(platform_url(url, os.environ))
