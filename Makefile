# marketmeter — the two commands of the README, and a few for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench fuzz screenshots lint typecheck unit compat clean system-packages

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
	@# Bytecode once, for the hundreds of server and CLI processes the suite starts (an
	@# environment with PYTHONDONTWRITEBYTECODE=1 would have each compile every module).
	$(BIN)/python -m compileall -q src tests > /dev/null
	$(BIN)/pytest -n 2 --dist loadgroup

## make fuzz: fuzz the wire layer (atheris) for FUZZ_SECONDS (60 by default); see fuzz/wire.py
FUZZ_SECONDS ?= 60
FUZZ_SEED ?= 0
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	mkdir -p .fuzz-corpus fuzz/crashes
	@# libFuzzer ends the process without Python's exit handlers: the mock's files go in a
	@# temporary directory of the run's own, removed after it
	scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	TMPDIR="$$scratch" $(BIN)/python fuzz/wire.py .fuzz-corpus fuzz/corpus/wire -max_total_time=$(FUZZ_SECONDS) -timeout=10 -seed=$(FUZZ_SEED) -artifact_prefix=fuzz/crashes/ -print_final_stats=1

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
	$(BIN)/ruff check src tests bench fuzz scripts docs/examples examples
	$(BIN)/ruff format --check src tests bench fuzz scripts docs/examples examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not compat"

compat: $(STAMP)
	$(BIN)/pytest -m compat

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
