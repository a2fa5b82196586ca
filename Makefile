# marketmeter — the two commands of the README, and a few for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench screenshots lint typecheck unit compat clean system-packages

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## make run: serve the demo catalog on 127.0.0.1:8080 (embedded SQLite, demo.db)
run: $(STAMP)
	$(BIN)/marketmeter serve --demo --database sqlite:///demo.db

## make test: lint, type-check, then the whole test suite (system packages installed first)
test: system-packages lint typecheck
	$(BIN)/pytest -n 2 --dist loadgroup

## make bench: the benchmark (about 10 minutes); writes docs/performance.md and its chart
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	scripts/install-system-packages wrk
	$(BIN)/python bench/run.py

## make screenshots: the console's pages from a fresh demo database, into docs/console/
screenshots: $(STAMP)
	@scripts/install-system-packages
	$(BIN)/python scripts/screenshots.py

## system packages the suite needs (PostgreSQL, Node.js, Go and the Go SDKs), when missing
system-packages:
	@scripts/install-system-packages

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts docs/examples examples
	$(BIN)/ruff format --check src tests bench scripts docs/examples examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not compat"

compat: $(STAMP)
	$(BIN)/pytest -m compat

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
