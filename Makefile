# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv from the hashed lock file on first use (Python 3.11 + pip only).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PIP    := $(BIN)/pip --disable-pip-version-check --quiet

.PHONY: demo test lint unit browser-deps java-deps messages lock benchmark benchmark-ingest benchmark-store benchmark-lists benchmark-plates benchmark-ledger benchmark-clearing benchmark-exchange clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "etcnet needs Python 3.11 (Django 5.2 LTS); set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r requirements.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

## Run the center with demo data on http://127.0.0.1:8000 (SQLite in ./var).
demo: $(STAMP)
	$(BIN)/etcnet center demo

## Lint, type checks, architecture contracts and the whole test suite.
test: $(STAMP) browser-deps java-deps lint unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m etcnet.core.messages --check
	$(BIN)/etcnet makemigrations --check --dry-run >/dev/null || { echo "models and migrations differ: run etcnet makemigrations"; exit 1; }

## The tests run in parallel: PYTEST_WORKERS processes (pytest-xdist), each with its
## own test database; tests marked xdist_group share one worker. PYTEST_WORKERS=0
## runs them in this one process.
PYTEST_WORKERS ?= 3
unit: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup

## Debian's chromium (and a CJK font for readable screenshots) for the Playwright
## browser tests; Playwright's own browser download does not work here.
BROWSER_PACKAGES := chromium fonts-wqy-microhei
browser-deps:
	@missing=$$(for p in $(BROWSER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages for the browser tests: $$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

## Debian's headless Java runtime for Spark in local mode (the clearing engines'
## comparison test), when no `java` is on the PATH.
JAVA_PACKAGES := openjdk-17-jre-headless
java-deps:
	@if ! command -v java >/dev/null 2>&1; then \
	  echo "Installing Debian packages for the Spark tests: $(JAVA_PACKAGES)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(JAVA_PACKAGES) >/dev/null; \
	fi

## Compile the translations (.po -> .mo) after editing them.
messages: $(STAMP)
	$(BIN)/python -m etcnet.core.messages --compile

## Speed figures (printed, never asserted in tests): TAC verifications per second,
## fees per second and the minimum-fee table of a 2,000-node network beside networkx.
benchmark: $(STAMP)
	$(BIN)/python -m benchmarks.tac
	$(BIN)/python -m benchmarks.fees --full

## The center's ingest rate (TAC verified, idempotent) beside PostgreSQL's COPY;
## needs PostgreSQL (DATABASE_URL or 127.0.0.1:5432) and works in its own scratch database.
benchmark-ingest: $(STAMP)
	$(BIN)/python -m benchmarks.ingest

## The transaction store at 90 days of a province: a card's, a plate's and a station-day's
## transactions out of 100 million generated rows in the day-partitioned table (PostgreSQL,
## its own scratch database; about 59 GB of disk and 25 minutes here, and it loads the
## largest size the disk holds; `ARGS="--rows 1000000"` is a one-minute check).
benchmark-store: $(STAMP)
	$(BIN)/python -m benchmarks.store $(ARGS)

## The terminal's compact status list at 10 and 50 million entries beside a Python
## dict of the same keys: bytes per entry, load, lookup latency, batch rate, applying
## an increment (about 2 minutes and 8 GB of memory; `--sizes 1000000` is quicker).
benchmark-lists: $(STAMP)
	$(BIN)/python -m benchmarks.statuslist

## Plate pre-selection on PostgreSQL: releasing 240,000- and 680,000-number pools, the
## keyboard's key probes, verify and random draws, whole selections per second, 50
## concurrent locks, the expiry job (about 4 minutes; `--quick` is smaller).
benchmark-plates: $(STAMP)
	$(BIN)/python -m benchmarks.plates

## `etcnet ledger check` on PostgreSQL over 10 million postings bulk-loaded by COPY,
## and what the ledger's deferred constraint triggers cost per posting (about
## 7 minutes and 3 GB of disk; needs a superuser for the bulk load; `--quick` is
## 1 million postings).
benchmark-ledger: $(STAMP)
	$(BIN)/python -m benchmarks.ledger

## The clearing day on PostgreSQL at a province's size: a generated day of 2,000,000 trips
## (about 20 million interval rows, 100,000 of our cards) in its own scratch database, then
## `run_day` end to end with its steps, beside DuckDB's bare GROUP BY of the same interval
## rows and PostgreSQL's own (about 5 minutes and 5 GB of disk here; `ARGS="--trips 200000"`
## is a quick check, `ARGS=--keep` keeps the database and the run's files).
benchmark-clearing: $(STAMP)
	$(BIN)/python -m benchmarks.clearing $(ARGS)

## The exchange with the national center: 10,000-record packages made, signed (the
## signature server), sent over HTTPS to the national-sim, verified and applied per
## second, beside GmSSL's raw SM2 sign/verify rate (PostgreSQL, its own scratch database).
benchmark-exchange: $(STAMP)
	$(BIN)/python -m benchmarks.exchange $(ARGS)

## Re-lock the dependencies after changing pyproject.toml.
lock:
	$(PYTHON) -m venv /tmp/etcnet-piptools && /tmp/etcnet-piptools/bin/pip install -q pip-tools
	/tmp/etcnet-piptools/bin/pip-compile -q --extra dev --generate-hashes --strip-extras --allow-unsafe -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
