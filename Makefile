# imagetrail — every step CI runs lives here or in .ci/run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test reliability lint format bench test-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: create the venv, install, run the demo fleet (no cluster needed)
demo: $(STAMP)
	$(BIN)/imagetrail demo

## test-deps: the real servers the suite runs against (Debian packages)
test-deps:
	bash scripts/install-test-deps.sh

## test: install everything and run the whole suite but the reliability part
## (pyproject's addopts deselect `-m reliability`; pytest exit 5 = no tests = failure)
test: $(STAMP) test-deps
	$(BIN)/python -m pytest

## reliability: kills, faults, concurrency, fuzzing, load against the real servers (~15 min);
## figures in bench/results/reliability.md (pytest exit 5 = no tests = failure)
reliability: $(STAMP) test-deps
	RELIABILITY_COMMAND="make reliability" $(BIN)/python -m pytest -m reliability tests/reliability

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

## bench: benchmark suite; machine-readable results in bench/results/
bench: $(STAMP) test-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
