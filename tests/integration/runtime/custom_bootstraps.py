"""Bootstraps for the custom-runtime tests: a bash + curl runtime and an awslambdaric one.

Shared by tests/integration/runtime (as `custom_bootstraps`, like runtime_harness) and
tests/integration/platform (as `tests.integration.runtime.custom_bootstraps`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

#: A custom runtime in bash: loops on /next and answers with what it saw, by the event's action.
SHELL_BOOTSTRAP = r"""#!/bin/bash
set -euo pipefail
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
echo "init: handler=${_HANDLER}"
if [ -f "${LAMBDA_TASK_ROOT}/fail_init" ]; then
  curl -sS -o /dev/null -X POST "${API}/init/error" \
    -H "Lambda-Runtime-Function-Error-Type: Runtime.ConfigError" \
    --data-binary '{"errorMessage":"no configuration","errorType":"Runtime.ConfigError"}'
  exit 1
fi
HEADERS="$(mktemp)"
ERROR_DOC='{"errorMessage":"it failed","errorType":"Custom.Failure","stackTrace":["bootstrap:1"]}'
SEEN='{"event":%s,"request_id":"%s","deadline_ms":%s,"arn":"%s","trace":"%s",'
SEEN+='"handler":"%s","task_root":"%s","pid":%s}'
while true; do
  EVENT="$(curl -sS -D "${HEADERS}" "${API}/invocation/next")"
  header() { grep -i "^$1:" "${HEADERS}" | cut -d' ' -f2- | tr -d '\r\n'; }
  RID="$(header Lambda-Runtime-Aws-Request-Id)"
  echo "processing ${RID}"
  case "${EVENT}" in
    *'"action":"fail"'*)
      curl -sS -o /dev/null -X POST "${API}/invocation/${RID}/error" \
        -H "Lambda-Runtime-Function-Error-Type: Custom.Failure" \
        --data-binary "${ERROR_DOC}"
      continue ;;
    *'"action":"exit"'*) exit 3 ;;
    *'"action":"sleep"'*) sleep 30 ;;
  esac
  BODY="$(printf "${SEEN}" \
    "${EVENT}" "${RID}" "$(header Lambda-Runtime-Deadline-Ms)" \
    "$(header Lambda-Runtime-Invoked-Function-Arn)" "$(header Lambda-Runtime-Trace-Id)" \
    "${_HANDLER}" "${LAMBDA_TASK_ROOT}" "$$")"
  curl -sS -o /dev/null -X POST "${API}/invocation/${RID}/response" --data-binary "${BODY}"
done
"""

#: A Python handler served by the official runtime interface client.
RIC_HANDLER = """
import os

def handler(event, context):
    if event.get("fail"):
        raise ValueError("bad input: " + str(event["fail"]))
    print("handling", context.aws_request_id)
    return {
        "got": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "pid": os.getpid(),
    }
"""


def have_curl() -> bool:
    return shutil.which("curl") is not None


def ric_bootstrap() -> str:
    """`bootstrap` for awslambdaric; the interpreter path is absolute (python3 on PATH may be
    a slow shim, and the bundle must use the interpreter awslambdaric is installed in)."""
    return f'#!/bin/sh\nexec {sys.executable} -m awslambdaric "$_HANDLER"\n'


def write_bootstrap(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    bootstrap = root / "bootstrap"
    bootstrap.write_text(text)
    bootstrap.chmod(0o755)
    return root
