"""The environment variables a function instance sees, and nothing else.

The instance's `os.environ` is cleared and replaced by exactly this mapping, so no platform
variable (UNKAI_*, credentials, the operator's PATH tweaks) leaks into user code. The names and
values follow Lambda's runtime environment
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).

The function's own variables may not override the reserved names, as in Lambda, which rejects
such a configuration at deploy time. `AWS_LAMBDA_RUNTIME_API` is reserved but not set: instances
talk frames over a socket, not the Runtime API.

Building is split so the per-spawn work is one dict copy: `function_environment(spec)` validates
and builds the per-version part once (at `Supervisor.pool_for`), then `instance_environment`
adds the per-instance log stream name.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from unkai.errors import ConfigError, LimitExceeded
from unkai.runtime.spec import InstanceSpec

#: Reserved by Lambda: a function may not set these
#: (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)

#: Lambda's key pattern for environment variable names.
_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")

#: "The total size of all environment variables doesn't exceed 4 KB" (Lambda quotas page).
MAX_ENVIRONMENT_BYTES = 4096

#: The directory holding bootstrap.py, reported as LAMBDA_RUNTIME_DIR (Lambda: /var/runtime).
RUNTIME_DIR = str(Path(__file__).resolve().parent)

#: A PATH that finds this interpreter first, then the usual system directories
#: (Lambda: /var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin).
DEFAULT_PATH = ":".join((os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"))


def log_stream_name(version: str, instance_id: str, now_s: float | None = None) -> str:
    """`YYYY/MM/DD/[VERSION]<32 hex>`, the UTC date the instance started, as in Lambda."""
    day = time.strftime("%Y/%m/%d", time.gmtime(time.time() if now_s is None else now_s))
    return f"{day}/[{version}]{instance_id}"


def validate_function_variables(variables: dict[str, str]) -> None:
    """Reject what Lambda rejects: reserved or malformed names, and more than 4 KB in total.

    Raises ConfigError naming the variable, or LimitExceeded for the total size.
    """
    size_bytes = 0
    for name, value in variables.items():
        if name in RESERVED_VARIABLES:
            raise ConfigError(
                f"{name} is a reserved environment variable and cannot be set by a function",
                field=f"environment.{name}",
                hint="rename the variable; Lambda reserves the AWS_LAMBDA_*, _HANDLER, "
                "LAMBDA_* and AWS credential names",
            )
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"{name!r} is not a valid variable name: it must match [a-zA-Z][a-zA-Z0-9_]+",
                field=f"environment.{name}",
            )
        size_bytes += len(name.encode()) + len(value.encode())
    if size_bytes > MAX_ENVIRONMENT_BYTES:
        raise LimitExceeded("environment variables size_bytes", MAX_ENVIRONMENT_BYTES, size_bytes)


def function_environment(spec: InstanceSpec, path: str = DEFAULT_PATH) -> dict[str, str]:
    """The per-version environment (everything but the log stream). Validates first.

    The function's variables come first so that reserved names, which validation already
    rejected, could never win; LANG, PATH and TZ are not reserved and may be overridden.
    """
    validate_function_variables(spec.environment)
    env = {
        "LANG": "en_US.UTF-8",
        "PATH": path,
        "TZ": ":UTC",
        **spec.environment,
        "_HANDLER": spec.handler,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group or f"/aws/lambda/{spec.function_name}",
        "LAMBDA_TASK_ROOT": str(spec.task_root),
        "LAMBDA_RUNTIME_DIR": RUNTIME_DIR,
    }
    if spec.aws_endpoint:
        # The SDK's endpoint variable (boto3 >= 1.28): every client a handler makes reaches
        # this platform. A function that needs a service unkai does not serve sets that
        # service's own variable (AWS_ENDPOINT_URL_S3=...), which the SDK prefers.
        env.setdefault("AWS_ENDPOINT_URL", spec.aws_endpoint)
    if spec.aws_credentials is not None:
        # Lambda gives every function its role's credentials; unkai gives each function its
        # own key, so the platform can verify and attribute the function's AWS calls.
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = spec.aws_credentials
    return env


def instance_environment(function_env: dict[str, str], log_stream: str) -> dict[str, str]:
    """Add the one per-instance variable to a `function_environment` result (a copy)."""
    env = dict(function_env)
    env["AWS_LAMBDA_LOG_STREAM_NAME"] = log_stream
    return env
