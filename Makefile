# Two commands: `make run` (start Trackside) and `make test` (the whole suite). Both build .venv
# from nothing on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(CURDIR)/.trackside

VENV_TF := .venv-tf

.PHONY: run test test-core test-tf test-fast check clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	TRACKSIDE_DATA_DIR="$${TRACKSIDE_DATA_DIR:-$(DATA_DIR)}" $(BIN)/trackside serve --demo

check: $(VENV)/.dev-installed
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/check

# The TensorFlow extra (checkpoint conversion, a stock car's model.pb) lives in its own venv:
# it is large, and the core must keep working without it.
$(VENV_TF)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_TF)
	$(VENV_TF)/bin/pip install --quiet --disable-pip-version-check -e '.[dev,tensorflow]'
	touch $@

test: test-core test-tf

# Browser tests drive Debian's Chromium; install it where missing (a no-op when present).
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| (echo "Chromium is missing: run 'sudo apt-get install chromium' (browser tests need it)" >&2; exit 1)

test-core: check chromium
	$(BIN)/python -m pytest --ignore=tests/models_tf

test-tf: $(VENV_TF)/.installed
	$(VENV_TF)/bin/python -m pytest tests/models_tf

test-fast: check chromium
	$(BIN)/python -m pytest -m "not slow" --ignore=tests/models_tf

clean:
	rm -rf $(VENV) $(VENV_TF) .pytest_cache .mypy_cache .ruff_cache
