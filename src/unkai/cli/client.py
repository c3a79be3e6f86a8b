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
    """--url, else UNKAI_URL, else the local default; raises CliError unless it is http(s).

    Checked here, before any request, because httpx would only fail at the first request with
    an `UnsupportedProtocol` that names neither the option nor the fix.
    """
    url = (explicit or environ.get("UNKAI_URL") or DEFAULT_URL).rstrip("/")
    where = "--url" if explicit else "UNKAI_URL"  # the default itself is valid
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise CliError(
            f"{where} {url!r} is not a valid URL ({exc})", hint=f"use e.g. {DEFAULT_URL}"
        ) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CliError(
            f"{where} must start with http:// or https:// and name a host, got {url!r}",
            hint=f"use e.g. {DEFAULT_URL}",
        )
    return url


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
        except httpx.HTTPError as exc:
            raise transport_error(self.url, exc) from None
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A control API call; non-2xx answers become CliError with the server's message."""
        response = self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise error_from_response(response)
        try:
            return response.json()
        except ValueError:
            raise CliError(
                f"the server at {self.url} answered {path} with something that is not JSON",
                hint="is UNKAI_URL / --url the address of an unkai platform?",
            ) from None


def transport_error(url: str, exc: httpx.HTTPError) -> CliError:
    """The advice for a request that got no complete answer (the CLI's one mapping of httpx's
    failures, so that none of them reaches the user as a traceback)."""
    if isinstance(exc, httpx.ConnectError):
        return CliError(
            f"no unkai platform answers at {url}",
            hint="start one with `unkai up DIR`, or point UNKAI_URL / --url at it",
        )
    if isinstance(exc, httpx.TimeoutException):
        return CliError(
            f"the platform at {url} did not answer in time",
            hint="check that it is running and not overloaded (unkai up)",
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return CliError(
            f"the platform at {url} closed the connection mid-request",
            hint="is it still running? (unkai up); a request that changes state may have run",
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return CliError(
            f"--url must start with http:// or https://, got {url!r}",
            hint=f"use e.g. {DEFAULT_URL}",
        )
    return CliError(
        f"the request to the platform at {url} failed: {exc}",
        hint="check UNKAI_URL / --url and that the platform is running (unkai up)",
    )


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
