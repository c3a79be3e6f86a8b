"""The instance environment: Lambda's variables, the function's own, and the reserved names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unkai.errors import ConfigError, LimitExceeded
from unkai.runtime.environment import (
    function_environment,
    instance_environment,
    log_stream_name,
)
from unkai.runtime.spec import InstanceSpec


def _spec(**environment: str) -> InstanceSpec:
    return InstanceSpec(
        version_key="dev/fn:3",
        function_name="fn",
        version="3",
        handler="app.handler",
        task_root=Path("/code"),
        deps_dir=None,
        memory_size_mb=256,
        timeout_s=3,
        environment=environment,
        region="eu-west-1",
    )


def test_lambda_variables_and_the_functions_own() -> None:
    env = instance_environment(function_environment(_spec(STAGE="dev", TZ="Asia/Tokyo")), "s")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "3"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["_HANDLER"] == "app.handler" and env["LAMBDA_TASK_ROOT"] == "/code"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == "s"
    assert env["STAGE"] == "dev"
    # TZ is not reserved in Lambda, so a function may set it
    assert env["TZ"] == "Asia/Tokyo"
    assert "PYTHONPATH" not in env and "AWS_LAMBDA_RUNTIME_API" not in env


@pytest.mark.parametrize("name", ["AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "AWS_SECRET_ACCESS_KEY"])
def test_reserved_variables_are_rejected_by_name(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        function_environment(_spec(**{name: "x"}))


def test_malformed_names_and_oversized_environments_are_rejected() -> None:
    with pytest.raises(ConfigError, match="not a valid variable name"):
        function_environment(_spec(**{"1BAD": "x"}))
    with pytest.raises(LimitExceeded):
        function_environment(_spec(BIG="x" * 5000))


def test_log_stream_name_has_lambdas_shape() -> None:
    name = log_stream_name("$LATEST", "ab" * 16, now_s=0.0)
    assert name == "1970/01/01/[$LATEST]" + "ab" * 16
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", name)
