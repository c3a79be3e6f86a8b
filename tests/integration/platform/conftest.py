from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.hook_server import HookServer, serving
from tests.integration.platform_process import PlatformProcess

_stage_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    """One platform shared by the tests that only deploy and invoke (each in its own stage)."""
    proc = PlatformProcess(
        tmp_path_factory.mktemp("platform-data"), extra_args=("--max-instances", "12")
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def stage() -> str:
    return f"t{next(_stage_numbers)}"


@pytest.fixture
def apps(tmp_path: Path) -> Path:
    return tmp_path / "apps"


@pytest.fixture
def sqs(platform: PlatformProcess) -> Any:
    """boto3's SQS client (the JSON protocol) for the shared platform."""
    return platform.aws("sqs")


@pytest.fixture
def sns(platform: PlatformProcess) -> Any:
    return platform.aws("sns")


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    """An HTTP endpoint that records what topic deliveries send it."""
    yield from serving()
