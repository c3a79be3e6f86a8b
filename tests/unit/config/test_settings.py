"""Settings: one model gives flags, environment variables and the docs table."""

from __future__ import annotations

from pathlib import Path

import pytest

from unkai.config.settings import Settings, load_settings, settings_markdown
from unkai.errors import ConfigError

DOCS = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_flag_beats_environment_beats_default() -> None:
    environ = {"UNKAI_PORT": "9000", "UNKAI_KEEP_ALIVE_S": "5"}
    settings = load_settings({"port": 9100, "host": None}, environ)
    assert settings.port == 9100
    assert settings.keep_alive_s == 5.0
    assert settings.host == "127.0.0.1"


def test_invalid_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"UNKAI_PORT: .*65535.*'70000'"):
        load_settings({}, {"UNKAI_PORT": "70000"})


def test_invalid_flag_value_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--max-instances"):
        load_settings({"max_instances": 0}, {})


def test_docs_table_is_generated_from_the_model() -> None:
    table = settings_markdown()
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')}" in table
    assert table in DOCS.read_text(), "docs/configuration.md is stale: unkai settings --markdown"
