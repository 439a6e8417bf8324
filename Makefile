# Entry points a user needs: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
CONFIG ?= config.yaml
# Which tests `make test` runs (a pytest -m expression); .ci/run leaves out the fault probes it runs first.
TEST_MARKS ?= not slurm
FAULT_REPORT ?= fault_report.md

.PHONY: run test lint lock test-faults test-slurm dry-run report clean-results

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# The lock, not requirements.txt: every package at the version the tests passed with (`make lock` remakes it).
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -r requirements.lock
	$(BIN)/pip install --no-deps --no-build-isolation -e .   # the package itself: puts `transcribe` in $(BIN)
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)

dry-run: $(STAMP)
	$(BIN)/snakemake -n --configfile $(CONFIG)

report: $(STAMP)
	$(BIN)/snakemake --configfile $(CONFIG) --report results/report.html

test: lint
	$(BIN)/python -m pytest -q --durations=10 -m "$(TEST_MARKS)" tests

# Lint, format and type check (ruff, then mypy on omni/; their settings are in pyproject.toml).
# `$(BIN)/ruff format .` applies the format.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# requirements.lock from requirements.txt, for every platform (uv's universal resolution) on Python 3.11.
lock: $(STAMP)
	$(BIN)/uv pip compile requirements.txt --universal --python-version 3.11 -o requirements.lock

# The fault suite: every test marked `fault` (kills, corrupt checkpoints, disk full, concurrent runs, malicious
# pickles, bad configs, bad corpora, relocated results) and its report, $(FAULT_REPORT) (git ignores it); fails
# if a probe did not survive, lost data or did not name the file or key (tests/faults.py).
test-faults: $(STAMP)
	$(BIN)/python -m pytest -q --durations=10 -m "fault and not slurm" --fault-report $(FAULT_REPORT) tests

# A real one-node SLURM (installs slurm-wlm and munge with apt-get; root): the smoke study through the profile.
test-slurm: $(STAMP)
	$(BIN)/python -m pytest -q -s -m slurm tests/test_slurm.py

clean-results:
	rm -rf results
