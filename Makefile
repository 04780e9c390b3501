# vid2mp3: `make up` runs the service, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONVERT_WORKERS ?= 1
STORE ?= settings
PYTEST_ARGS ?=
# `make test` runs the suite on this many pytest-xdist workers, each test file whole on one
# (most of the suite waits on processes, servers and ffmpeg; 0 runs it in one process)
TEST_WORKERS ?= 3

SQLGRAMMAR := tests/sqlgrammar

.PHONY: install sqlgrammar up migrate test lint test-unit test-integration test-e2e faults faults-net bench mutation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml client/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]' -e ./client
	touch $@

install: $(VENV)/.installed

# MySQL 8.4's grammar, which tests/deploy/test_sql_grammar.py parses every migration with:
# ts-mysql-parser on node, pinned by tests/sqlgrammar/package-lock.json. Only the tests need it.
$(SQLGRAMMAR)/node_modules/.package-lock.json: $(SQLGRAMMAR)/package.json $(SQLGRAMMAR)/package-lock.json
	npm ci --prefix $(SQLGRAMMAR) --no-audit --no-fund

sqlgrammar: $(SQLGRAMMAR)/node_modules/.package-lock.json

## Run API, workers (CONVERT_WORKERS=N convert workers), sweeper and Flower; Ctrl-C stops all.
## STORE=s3: also run SeaweedFS and keep videos and MP3s in its bucket (default: as .env says).
up: install
	$(BIN)/python scripts/devstack.py --convert-workers $(CONVERT_WORKERS) --store $(STORE)

## Apply the pending schema migrations (migrations/*.sql) with the settings `make up` uses
## (.env and the environment) and create the admin account; `make up` runs it first.
migrate: install
	$(BIN)/python -m core.migrate

## The whole suite: lint and types, then unit, integration, end-to-end, faults and deployment.
test: install sqlgrammar lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## ruff (lint and format), mypy (strict on core/) and the layer contracts (import-linter,
## [tool.importlinter] in pyproject.toml); `make test` runs this first.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

test-unit: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

## The fault suite alone: kills, outages and restarts under a running stack (also in `make test`).
faults: install
	$(BIN)/python -m pytest tests/faults -v $(PYTEST_ARGS)

## The network fault suite alone: the service across network namespaces (a data host, an API
## host, two worker hosts), partitioned and healed; needs root and iproute2 (also in `make test`).
faults-net: install
	$(BIN)/python -m pytest tests/faults_net -v $(PYTEST_ARGS)

## Benchmarks against the issue's targets (not part of CI); writes bench/results/latest.md.
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

## Mutation testing of core/services and the sniffer against the unit tests (not in CI).
mutation: install
	$(BIN)/python -m pip install -q 'mutmut>=3.8,<4'
	$(BIN)/mutmut run --max-children 2; $(BIN)/mutmut results | tail -n 40

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
