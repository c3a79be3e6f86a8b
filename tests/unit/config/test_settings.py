"""Settings: one model gives flags, environment variables and the docs table."""

from __future__ import annotations

from pathlib import Path

import pytest

from unkai.config.settings import (
    Settings,
    load_settings,
    parse_aws_credentials,
    settings_markdown,
)
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


def test_aws_auth_auto_checks_signatures_unless_on_loopback() -> None:
    assert not load_settings({}, {}).checks_aws_signatures()
    assert not load_settings({"host": "::1"}, {}).checks_aws_signatures()
    assert load_settings({"host": "0.0.0.0"}, {}).checks_aws_signatures()
    assert not load_settings({"host": "0.0.0.0", "aws_auth": "off"}, {}).checks_aws_signatures()
    assert load_settings({"aws_auth": "on"}, {}).checks_aws_signatures()


def test_aws_credentials_are_parsed_and_errors_do_not_repeat_the_secret() -> None:
    environ = {"UNKAI_AWS_CREDENTIALS": "AKIDONE:s1:123456789012, AKIDTWO:s2"}
    settings = load_settings({}, environ)
    assert "s1" not in repr(settings)
    assert parse_aws_credentials(settings.aws_credentials.get_secret_value()) == [
        ("AKIDONE", "s1", "123456789012"),
        ("AKIDTWO", "s2", None),
    ]
    with pytest.raises(ConfigError, match="UNKAI_AWS_CREDENTIALS: the account id") as caught:
        load_settings({}, {"UNKAI_AWS_CREDENTIALS": "AKIDONE:hush:12"})
    assert "hush" not in str(caught.value)
