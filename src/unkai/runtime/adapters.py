"""Adapters: a front door's event and response mapping, run in the instance with the handler.

An HTTP route's invocation was: the gateway builds the API Gateway event as a dict and encodes
it as JSON, the instance decodes it, the handler returns, the instance encodes the result as
JSON, and the gateway decodes it again and maps it to an HTTP response. The gateway's event
loop is the platform's bottleneck on a warm route (docs/benchmarks.md, session 13), and half
of that loop's Python work per request was this building and mapping. With an adapter the
gateway sends the request's parts as they are (one `marshal.dumps`), and the instance builds
the event, runs the handler and maps the result, on its own CPU, with no JSON in between.

An adapter is a module, named in the INVOKE frame (frames.py), with three functions:
  event(wire: bytes) -> Any           the handler's event, from what the front door sent
  event_json(wire: bytes) -> bytes    that event as JSON (a custom runtime's Runtime API)
  response(payload: bytes) -> bytes   the front door's answer, from the handler's JSON result
The runtime knows no front door: it imports the module the frame names (once per process;
the zygote preloads the platform's, see `PLATFORM_ADAPTERS`). The Lambda semantics around the
handler stay the runtime's: the result is still encoded with `json.dumps` first (so a result
that cannot be is `Runtime.MarshalError`, and the 6 MB limit applies to that JSON), and only
then does `response` see it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The adapters the platform's front doors use; zygotes import them before they fork, so that
#: no instance pays the import on its first request.
PLATFORM_ADAPTERS = ("unkai.gateway.mapping", "unkai.gateway.payload_v1")

_loaded: dict[str, ModuleType] = {}


def load(name: str) -> ModuleType:
    """The adapter module `name` (imported on first use)."""
    module = _loaded.get(name)
    if module is None:
        module = _loaded[name] = importlib.import_module(name)
    return module
