# Two commands for a newcomer: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: lock run test lint typecheck pytest client-check openapi-lint ts-client-check fuzz bench soak bench-reports bench-mrp bench-metadata openapi migrate install install-dev clean tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The dependencies exactly as locked (requirements*.lock, every file checked against its
# hash), then the package itself without resolving anything more. Reinstalled only when
# pyproject.toml or a lock changes; a second `make run` reuses it all.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements-dev.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.installed

# After changing the dependencies in pyproject.toml: pin them again, with hashes
# (pip-tools; tests/test_lock.py fails while a lock misses what pyproject.toml asks for).
# LOCK_ARGS="--upgrade" moves every pin to the newest allowed release.
PIP_COMPILE = $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'pip-tools==7.6.2'
	$(PIP_COMPILE) -o requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra=dev -o requirements-dev.lock pyproject.toml

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/prodorder-api migrate

run: install
	$(BIN)/prodorder-api migrate
	exec $(BIN)/prodorder-api serve

lint: install-dev
	$(BIN)/ruff check src tests migrations bench scripts
	$(BIN)/ruff format --check src tests migrations bench scripts

typecheck: install-dev
	$(BIN)/mypy src

# TEST_DATABASE_URL: the PostgreSQL server; ensure-postgres starts a stopped local one.
# TEST_REDIS_URL: the Redis server (shared rate limits); ensure-redis likewise.
# Debian's tools some tests drive (the walkthroughs' jq, the bench targets' wrk and
# pgbench, chromium for tests/test_browser.py, which Playwright drives: no browser
# download, and the scale tests' PgBouncer), installed when missing, so that under
# CI=true nothing is skipped for want of them.
tools:
	@command -v jq >/dev/null || (apt-get update -qq && apt-get install -y -qq jq)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	@command -v pgbench >/dev/null || (apt-get update -qq && apt-get install -y -qq postgresql-contrib)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || \
		(apt-get update -qq && apt-get install -y -qq pgbouncer)

pytest: install-dev tools
	@url="$$(scripts/ensure-postgres)" || exit 1; \
	redis="$$(scripts/ensure-redis)" || exit 1; \
	TEST_DATABASE_URL="$$url" TEST_REDIS_URL="$$redis" $(BIN)/pytest $(PYTEST_ARGS)

# The README's bicycle walk through a Python client generated from openapi/openapi.json,
# against the real server on a fresh SQLite file (scripts/client_check.py).
client-check: install-dev
	$(BIN)/python scripts/client_check.py

# The documentation site (mkdocs.yml, docs/) into site/; --strict: any warning fails.
.PHONY: docs
docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The Node tools for the document (clients/ts/package.json, pinned by its package-lock.json):
# Redocly CLI, Spectral, openapi-typescript, openapi-fetch, TypeScript. Reinstalled only
# when the lock changes.
TS_DIR := clients/ts
$(TS_DIR)/node_modules/.installed: $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# openapi/openapi.json against Redocly's `recommended` rules and Spectral's `spectral:oas`
# (clients/ts/redocly.yaml, clients/ts/.spectral.yaml): any error or warning fails.
openapi-lint: $(TS_DIR)/node_modules/.installed
	cd $(TS_DIR) && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		npx --no-install redocly lint --max-problems=200 ../../openapi/openapi.json
	cd $(TS_DIR) && npx --no-install spectral lint --ruleset .spectral.yaml \
		--fail-severity=warn ../../openapi/openapi.json

# The same walk through a TypeScript client: openapi-typescript (default flags) and
# openapi-fetch, compiled with `tsc --strict`, no type assertions, against the real server
# (scripts/ts_client_check.py).
ts-client-check: install-dev $(TS_DIR)/node_modules/.installed
	$(BIN)/python scripts/ts_client_check.py

# pytest last, so that its summary line closes the output (CI reads it).
test: lint typecheck docs openapi-lint client-check ts-client-check pytest

# schemathesis against the real server from its own schema, within a time budget:
# no 5xx, and every response as documented (scripts/fuzz.py). CI runs it before `make test`.
fuzz: install-dev
	$(BIN)/python scripts/fuzz.py

# Crash safety (not part of `make test`, ~90 s): two instances × 2 workers on a fresh
# PostgreSQL database, kill -9 under load, then whole-database checks; see bench/soak.py.
# SOAK_ARGS: its options. SOAK_PYTHON: an interpreter with the dev dependencies already
# installed (then .venv is left alone).
soak: $(if $(SOAK_PYTHON),,install-dev)
	@url="$$(scripts/ensure-postgres)" && [ -n "$$url" ] || \
		{ echo "make soak needs PostgreSQL: set TEST_DATABASE_URL" >&2; exit 1; }; \
	PYTHONPATH=src $(or $(SOAK_PYTHON),$(BIN)/python) -m bench.soak --server "$$url" $(SOAK_ARGS)

# Report and lot-trace endpoints on 100,000 movements in a fresh PostgreSQL database
# (created on TEST_DATABASE_URL's server, dropped afterwards): p50/p95 per endpoint.
# BENCH_ARGS e.g. "--movements 20000 --calls 10 --keep". Run as a module, like every
# bench: tests/test_bench_targets.py runs each one small.
bench-reports: install-dev
	@url="$$(scripts/ensure-postgres)" || exit 1; \
	[ -n "$$url" ] || { echo "bench-reports needs PostgreSQL" >&2; exit 1; }; \
	TEST_DATABASE_URL="$$url" PYTHONPATH=src $(BIN)/python -m bench.reports_bench $(BENCH_ARGS)

# MRP at 1,000 and 5,000 items on a throw-away PostgreSQL database; BENCH_ARGS e.g.
# "--items 5000 --profile" (pyinstrument) or "--made-lead 1 2 --bought-lead 3 5 10".
bench-mrp: install-dev
	@url="$$(scripts/ensure-postgres)" || exit 1; \
	[ -n "$$url" ] || { echo "bench-mrp needs PostgreSQL (TEST_DATABASE_URL)" >&2; exit 1; }; \
	TEST_DATABASE_URL="$$url" PYTHONPATH=src $(BIN)/python -m bench.mrp_bench $(BENCH_ARGS)

# The ?metadata[key]=value order-list filter over 100,000 orders on a throw-away
# PostgreSQL database: p50/p95/p99 per case with the GIN index, with custom plans only,
# and with the index dropped, and the plans the app's statements ran (issue #21).
# BENCH_ARGS e.g. "--orders 20000 --calls 50 --keep".
bench-metadata: install-dev
	@url="$$(scripts/ensure-postgres)" || exit 1; \
	[ -n "$$url" ] || { echo "bench-metadata needs PostgreSQL (TEST_DATABASE_URL)" >&2; exit 1; }; \
	TEST_DATABASE_URL="$$url" PYTHONPATH=src $(BIN)/python -m bench.metadata_bench $(BENCH_ARGS)

openapi: install
	$(BIN)/prodorder-api openapi --output openapi/openapi.json

# The service under load beside its ceilings (pgbench, a no-op route); README "Benchmarks".
# Not part of `make test`. Installs wrk (and pgbench) when missing; BENCH_PYTHON: an
# interpreter that already has the package's dependencies (then .venv is left alone).
# BENCH_BASELINE=<commit> (e.g. f2d8b06): the same scenarios also on that commit, from a
# temporary git worktree (its src/ and migrations, the same interpreter; removed after),
# alternating whole runs baseline, head, baseline, head… for BENCH_ROUNDS rounds
# (default 2), then every figure's median on both sides and head/baseline. Head is this
# checkout's src/ as it is. Other settings (BENCH_DURATION, BENCH_CLIENTS…): bench/run.py.
BENCH_PYTHON ?=
BENCH_BASELINE ?=
BENCH_ROUNDS ?=
bench: tools
	@[ -n "$(BENCH_PYTHON)" ] || $(MAKE) --no-print-directory install
	@url="$$(scripts/ensure-postgres)"; \
	if [ -z "$$url" ]; then echo "bench: no PostgreSQL (see scripts/ensure-postgres)" >&2; exit 1; fi; \
	BENCH_DATABASE_URL="$${BENCH_DATABASE_URL:-$$url}" PYTHONPATH=src \
	BENCH_BASELINE="$(BENCH_BASELINE)" BENCH_ROUNDS="$(BENCH_ROUNDS)" \
	$(or $(BENCH_PYTHON),$(BIN)/python) -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache prodorder.db*
