"""The HTTP baseline: a minimal raw ASGI app answering `hello` like the bench handler does.

No framework and no routing, so it is the floor of what uvicorn + httptools + uvloop cost:
    python -m uvicorn raw_asgi:app --app-dir bench/baselines --loop uvloop --http httptools
"""

from __future__ import annotations

from typing import Any

BODY = b"hello"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())],
}
RESPONSE = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":  # the invoke-endpoint comparison sends a body; read it
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
    await send(START)
    await send(RESPONSE)
