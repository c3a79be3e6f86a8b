"""`unkai invoke local`: the same bootstrap, event and context, in a fresh process, no server.

The function runs with its Lambda environment and the app directory as its task root, through
`unkai.runtime.bootstrap` exactly as a platform instance does, so behaviour matches a deployed
invocation (only the code is read in place instead of from a deployed bundle). Requirements
are not installed here: the current interpreter's packages are visible.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import click

from unkai.cli.client import CliError
from unkai.config.load import load_app
from unkai.config.spec import ResolvedFunction
from unkai.runtime import frames
from unkai.runtime.bootstrap import error_document
from unkai.runtime.environment import function_environment, instance_environment, log_stream_name
from unkai.runtime.instance_state import (
    exited_message,
    out_of_memory_message,
    timed_out_message,
)
from unkai.runtime.limits import WATCHDOG_INTERVAL_S, RssProbe, over_memory_size
from unkai.runtime.spec import InstanceSpec

LOCAL_VERSION = "$LATEST"
#: How long the handler's import (init) may take before the timeout starts counting: Lambda
#: gives an on-demand function's init phase 10 s.
INIT_LIMIT_S = 10.0


def _spec(function: ResolvedFunction, app_dir: Path, region: str) -> InstanceSpec:
    return InstanceSpec(
        version_key=f"local/{function.name}",
        function_name=function.name,
        version=LOCAL_VERSION,
        handler=function.handler,
        task_root=app_dir,
        deps_dir=None,
        memory_size_mb=function.memory_size_mb,
        timeout_s=function.timeout_s,
        environment=function.environment,
        function_arn=f"arn:aws:lambda:{region}:000000000000:function:{function.name}",
        log_group=f"/aws/lambda/{function.name}",
        region=region,
        runtime=function.runtime,
    )


def run_local(app_dir: Path, name: str, event: bytes) -> tuple[bytes, bool]:
    """Run one invocation; returns (payload or error document, is_error). Prints the log."""
    app = load_app(app_dir)
    functions = {f.name: f for f in app.resolved_functions()}
    if name not in functions:
        raise CliError(
            f"no function {name!r} in {app_dir}/unkai.yml",
            hint=f"functions there: {', '.join(sorted(functions)) or 'none'}",
        )
    spec = _spec(functions[name], app_dir.resolve(), app.provider.region)
    env = instance_environment(
        function_environment(spec), log_stream_name(LOCAL_VERSION, uuid.uuid4().hex)
    )
    ours, theirs = socket.socketpair()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "unkai.runtime.bootstrap",
            "--fd",
            str(theirs.fileno()),
            "--function-arn",
            spec.function_arn,
        ],
        cwd=spec.task_root,
        env=env,
        pass_fds=(theirs.fileno(),),
    )
    theirs.close()
    try:
        return _exchange(ours, spec, event, child)
    finally:
        ours.close()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _exchange(
    sock: socket.socket, spec: InstanceSpec, event: bytes, child: subprocess.Popen[bytes]
) -> tuple[bytes, bool]:
    """Send the event and read frames until the result, with the platform's limits:
    - the function's timeout counts from the end of its init (READY); past it the process is
      killed and the result is Lambda's `Sandbox.Timedout` error (init may take INIT_LIMIT_S
      on top);
    - its resident set is sampled as often as the platform's watchdog does; past the memory
      size the process is killed and the result is `Runtime.OutOfMemory`;
    - a process that ends mid-call gives `Runtime.ExitError`, saying how it ended."""
    request_id = str(uuid.uuid4())
    sock.sendall(frames.encode_invoke(request_id, int(spec.timeout_s * 1000), event))
    deadline = time.monotonic() + INIT_LIMIT_S + spec.timeout_s
    reader = frames.FrameReader(sock)
    probe = RssProbe(child.pid)
    try:
        while True:
            wait_s = min(deadline - time.monotonic(), WATCHDOG_INTERVAL_S)
            sock.settimeout(max(wait_s, 0.001))
            try:
                kind, body = reader.read()
            except TimeoutError:
                stopped = _stopped(child, probe, request_id, spec, deadline)
                if stopped is None:
                    continue  # within its time and memory: wait on
                return stopped
            except (EOFError, ConnectionError):
                try:
                    status: int | None = child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    status = None
                return _error("Runtime.ExitError", exited_message(request_id, status))
            if kind == frames.READY:
                deadline = time.monotonic() + spec.timeout_s
                _echo_log(json.loads(body[frames.READY_HEAD.size :]).get("log", ""))
            elif kind == frames.INIT_ERROR:
                doc = json.loads(body)
                _echo_log(doc.get("log", ""))
                return json.dumps(doc["error"]).encode(), True
            elif kind == frames.LOG:
                _echo_log(body.decode("utf-8", "replace"))
            elif kind == frames.RESULT:
                return _result(body, child, request_id, spec)
    finally:
        probe.close()


def _result(
    body: bytes, child: subprocess.Popen[bytes], request_id: str, spec: InstanceSpec
) -> tuple[bytes, bool]:
    status, _, _, max_rss_kb, output, data = frames.decode_result(body)
    _echo_log(output.decode("utf-8", "replace"))
    if status == frames.RESULT_OK and over_memory_size(max_rss_kb, spec.memory_size_mb):
        # Grew past the limit between two samples: Lambda would have killed it.
        return _out_of_memory(child, request_id, spec)
    return data, status == frames.RESULT_ERROR


def _stopped(
    child: subprocess.Popen[bytes],
    probe: RssProbe,
    request_id: str,
    spec: InstanceSpec,
    deadline: float,
) -> tuple[bytes, bool] | None:
    """Kill the process past its deadline or its memory size, and say so; None while it is
    within both."""
    if time.monotonic() >= deadline:
        child.kill()
        return _error("Sandbox.Timedout", timed_out_message(request_id, spec.timeout_s))
    rss_kb = probe.read_kb()
    if rss_kb is not None and over_memory_size(rss_kb, spec.memory_size_mb):
        return _out_of_memory(child, request_id, spec)
    return None


def _out_of_memory(
    child: subprocess.Popen[bytes], request_id: str, spec: InstanceSpec
) -> tuple[bytes, bool]:
    child.kill()
    status = child.wait()
    return _error(
        "Runtime.OutOfMemory", out_of_memory_message(request_id, status, spec.memory_size_mb)
    )


def _error(error_type: str, message: str) -> tuple[bytes, bool]:
    return json.dumps(error_document(error_type, message)).encode(), True


def _echo_log(text: str) -> None:
    if text:
        click.echo(text, nl=not text.endswith("\n"), err=True)
