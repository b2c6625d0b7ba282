# eksflow — the front door. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
UV_VERSION := 0.13.9
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.eksflow-installed

.PHONY: help venv demo up down test test-fast lint bench lock roles clean

help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "eksflow needs Python >= 3.11 (set PYTHON=python3.11 or newer)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

venv: $(STAMP) ## create/refresh the project venv from requirements.lock (automatic for other targets)

demo: $(STAMP) ## run the reference pipelines end to end on the offline local stack, then stop it
	$(BIN)/eksflow demo

up: $(STAMP) ## start the local stack (Airflow UI + AWS emulator on 127.0.0.1) and keep it running
	$(BIN)/eksflow up

down: $(STAMP) ## stop the stack started by `make up`
	$(BIN)/eksflow down

test: $(STAMP) ## all tests: lint, unit, DAG integrity, end to end (emulator, SQLite and PostgreSQL)
	$(BIN)/ruff check src dags tests
	$(BIN)/ruff format --check src dags tests
	$(BIN)/pytest

test-fast: $(STAMP) ## the tests not marked slow
	$(BIN)/pytest -m "not slow"

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check src dags tests
	$(BIN)/ruff format --check src dags tests

bench: $(STAMP) ## benchmarks: DAG parse time per file and the demo's wall time
	$(BIN)/python -m eksflow.bench

lock: ## recompile requirements.lock from pyproject.toml (Python 3.11 and 3.12, all platforms)
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 pyproject.toml --extra dev -o requirements.lock

roles: $(STAMP) ## print the role model (service accounts, IAM role names, pod templates, connections)
	$(BIN)/eksflow roles --format yaml

clean: ## remove the venv and local stack state
	rm -rf $(VENV) .eksflow .pytest_cache .ruff_cache
