# Two commands: `make run` (start Trackside) and `make test` (the whole suite). Both build .venv
# from nothing on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(CURDIR)/.trackside

.PHONY: run test test-fast check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	TRACKSIDE_DATA_DIR="$${TRACKSIDE_DATA_DIR:-$(DATA_DIR)}" $(BIN)/trackside serve

check: $(VENV)/.dev-installed
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/check

test: check
	$(BIN)/python -m pytest

test-fast: check
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
