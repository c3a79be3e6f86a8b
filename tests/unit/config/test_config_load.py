"""`load_app`: every error names file, line and field, with the exact message users see."""

from __future__ import annotations

from pathlib import Path

import pytest

from unkai.config.load import load_app
from unkai.config.spec import AppSpec
from unkai.errors import ConfigError

HANDLER = "def hello(event, context):\n    return {'statusCode': 200}\n"


def write_app(root: Path, manifest: str, files: dict[str, str] | None = None) -> Path:
    """An app directory with `manifest` as unkai.yml and a handler.py (unless overridden)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "unkai.yml").write_text(manifest)
    for name, text in ({"handler.py": HANDLER} | (files or {})).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def load_error(root: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_app(root)
    return str(caught.value)


VALID = """\
service: demo
provider:
  memorySize: 256
  environment:
    PORT: 8080
    DEBUG: true
functions:
  hello:
    handler: handler.hello
    timeout: 10
    environment:
      PORT: "9090"
    events:
      - http: {method: get, path: /hello}
      - http: POST /hello/{id}
"""


def test_valid_manifest_applies_provider_defaults(tmp_path: Path) -> None:
    # Given a valid manifest
    app_dir = write_app(tmp_path, VALID)
    # When it is loaded
    app = load_app(app_dir)
    # Then defaults, overrides, shorthand events and string environment values all apply
    assert isinstance(app, AppSpec)
    [fn] = app.resolved_functions()
    assert (fn.memory_size_mb, fn.timeout_s, fn.runtime) == (256, 10, "python3.11")
    assert fn.environment == {"PORT": "9090", "DEBUG": "true"}
    assert [(e.method, e.path) for e in fn.http_events] == [
        ("GET", "/hello"),
        ("POST", "/hello/{id}"),
    ]


def test_manifest_file_path_and_yaml_extension_are_accepted(tmp_path: Path) -> None:
    # Given an app whose manifest is named unkai.yaml
    app_dir = write_app(tmp_path, VALID)
    (app_dir / "unkai.yml").rename(app_dir / "unkai.yaml")
    # When it is loaded by directory and by file, Then both work
    assert load_app(app_dir).service == "demo"
    assert load_app(app_dir / "unkai.yaml").service == "demo"


def test_value_out_of_range(tmp_path: Path) -> None:
    # Given a timeout of 0 on line 5
    manifest = "service: demo\nfunctions:\n  hello:\n    handler: handler.hello\n    timeout: 0\n"
    # Then the error names line 5 and the range, without pydantic's 'Value error, ' prefix
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:5: functions.hello.timeout: must be between 1 and 900, got 0"
    )


def test_unknown_field_suggests_the_close_name(tmp_path: Path) -> None:
    manifest = (
        "service: demo\nfunctions:\n  hello:\n    handler: handler.hello\n\n\n    memsize: 512\n"
    )
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:7: functions.hello.memsize: unknown field (did you mean 'memorySize'?)"
    )


def test_snake_case_name_is_unknown_and_suggests_camel_case(tmp_path: Path) -> None:
    manifest = "service: demo\nprovider:\n  memory_size: 512\n"
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:3: provider.memory_size: unknown field (did you mean 'memorySize'?)"
    )


def test_unknown_field_without_close_name_lists_the_fields(tmp_path: Path) -> None:
    manifest = "service: demo\nplugins: [x]\n"
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:2: plugins: unknown field (expected one of: service, provider, functions, "
        "resources)"
    )


def test_wrong_type(tmp_path: Path) -> None:
    manifest = "service: demo\nfunctions:\n  hello:\n    handler: handler.hello\n    timeout: abc\n"
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:5: functions.hello.timeout: must be an integer, got 'abc'"
    )


def test_wrong_type_of_a_section(tmp_path: Path) -> None:
    manifest = "service: demo\nfunctions:\n  hello: handler.hello\n"
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:3: functions.hello: must be a mapping, got 'handler.hello'"
    )


def test_missing_required_field_points_at_its_parent(tmp_path: Path) -> None:
    # Given function hello (line 5) without a handler
    manifest = "service: demo\nprovider:\n  timeout: 3\nfunctions:\n  hello:\n    timeout: 5\n"
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:5: functions.hello.handler: required"
    )


def test_literal_choice(tmp_path: Path) -> None:
    manifest = "service: demo\nprovider:\n  name: gcp\n"
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:3: provider.name: must be 'unkai' or 'aws', got 'gcp'"
    )


def test_http_method_error_names_the_method_field(tmp_path: Path) -> None:
    manifest = (
        "service: demo\nfunctions:\n  hello:\n    handler: handler.hello\n    events:\n"
        "      - http:\n          method: FETCH\n          path: /x\n"
    )
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:7: functions.hello.events[0].http.method: must be one of GET, POST, PUT, "
        "PATCH, DELETE, HEAD, OPTIONS, ANY, got 'FETCH'"
    )


def test_invalid_function_name(tmp_path: Path) -> None:
    manifest = "service: demo\nfunctions:\n  hello world:\n    handler: handler.hello\n"
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:3: functions.hello world: must be 1 to 64 letters, digits, '-' or '_', "
        "got 'hello world'"
    )


def test_all_problems_are_reported_in_line_order(tmp_path: Path) -> None:
    # Given three problems, the first of them on line 4
    manifest = (
        "service: demo\nfunctions:\n  hello:\n    handler: handler.hello\n    timeout: 0\n"
        "    memorySize: big\n  other:\n    timeout: 3\n"
    )
    # When loaded, Then all three are listed, sorted by line, and the error carries the first
    with pytest.raises(ConfigError) as caught:
        load_app(write_app(tmp_path, manifest))
    assert str(caught.value) == (
        "unkai.yml:5: functions.hello.timeout: must be between 1 and 900, got 0\n"
        "unkai.yml:6: functions.hello.memorySize: must be an integer, got 'big'\n"
        "unkai.yml:7: functions.other.handler: required"
    )
    assert (caught.value.line, caught.value.field) == (5, "functions.hello.timeout")


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    manifest = "service: demo\nfunctions:\n  hello:\n    handler: handler.hello\n  bad: [1, 2\n"
    message = load_error(write_app(tmp_path, manifest))
    assert message.startswith("unkai.yml:6: invalid YAML: expected ',' or ']'"), message


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    manifest = (
        "service: demo\nfunctions:\n  hello:\n    handler: handler.hello\n    timeout: 3\n"
        "    timeout: 5\n"
    )
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:6: functions.hello.timeout: duplicate key (first at line 5)"
    )


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    # Given a function environment that merges the provider's and overrides one key
    manifest = (
        "service: demo\nprovider:\n  environment: &env\n    A: '1'\n    B: '1'\n"
        "functions:\n  hello:\n    handler: handler.hello\n    environment:\n"
        "      <<: *env\n      A: '2'\n"
    )
    # When loaded, Then the override wins and no duplicate key is reported
    app = load_app(write_app(tmp_path, manifest))
    assert app.functions["hello"].environment == {"A": "2", "B": "1"}


def test_missing_manifest_has_a_hint(tmp_path: Path) -> None:
    assert load_error(tmp_path) == f"no unkai.yml in {tmp_path}; create one, see examples/hello"


def test_empty_manifest(tmp_path: Path) -> None:
    assert load_error(write_app(tmp_path, "")) == (
        "unkai.yml:1: must be a mapping with 'service' and 'functions'; "
        "create one, see examples/hello"
    )


def test_missing_handler_module(tmp_path: Path) -> None:
    manifest = "service: demo\nfunctions:\n  hello:\n    handler: app.main\n"
    assert load_error(write_app(tmp_path, manifest)) == (
        f"unkai.yml:4: functions.hello.handler: module 'app' not found: no app.py in {tmp_path}"
    )


def test_handler_in_a_directory_and_package(tmp_path: Path) -> None:
    manifest = (
        "service: demo\nfunctions:\n  a:\n    handler: src/api.main\n"
        "  b:\n    handler: pkg.sub.main\n"
    )
    files = {"src/api.py": HANDLER, "pkg/__init__.py": "", "pkg/sub/__init__.py": HANDLER}
    assert set(load_app(write_app(tmp_path, manifest, files)).functions) == {"a", "b"}


def test_missing_requirements_file(tmp_path: Path) -> None:
    manifest = (
        "service: demo\nfunctions:\n  hello:\n    handler: handler.hello\n"
        "    requirements: deps/requirements.txt\n"
    )
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:5: functions.hello.requirements: file 'deps/requirements.txt' not found "
        f"in {tmp_path}"
    )


def test_same_route_twice_names_both_functions(tmp_path: Path) -> None:
    manifest = (
        "service: demo\nfunctions:\n  a:\n    handler: handler.hello\n    events:\n"
        "      - http: GET /items/{id}\n  b:\n    handler: handler.hello\n    events:\n"
        "      - http: {method: get, path: '/items/{name}'}\n"
    )
    assert load_error(write_app(tmp_path, manifest)) == (
        "unkai.yml:10: functions.b.events[0].http: route GET /items/{name} is also defined by "
        "function 'a' (line 6)"
    )
