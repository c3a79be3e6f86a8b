"""The CPU-bound baseline: raw ASGI calling the same `handler.cpu` the unkai function runs.

The app dir (with `handler.py` and its generated `calibration.py`) must be on PYTHONPATH.
"""

from __future__ import annotations

import json
from typing import Any

import handler  # type: ignore[import-not-found]  # from the bench's app dir (PYTHONPATH)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    result = handler.cpu({}, None)
    body = str(result["body"]).encode() if isinstance(result, dict) else json.dumps(result).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
