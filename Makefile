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

## Lint, type-check and run the whole test suite.
test: $(VENV)/.installed lint
	$(VENV)/bin/pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

## Run every benchmark (needs wrk: apt-get install wrk).
bench: $(VENV)/.installed
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .unkai .pytest_cache .mypy_cache .ruff_cache
