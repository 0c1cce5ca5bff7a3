# Two entry points (README): `make quick` runs the whole quick DAG, `make test` runs the tests.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2
# Rules call tools (papermill, jupyter) by name, as under `conda activate`: put the venv first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup quick paper test lint clean-results

setup: $(VENV)/.installed

# torch first: `torch==2.13.0` picks a CPU build where one lies on disk (this project's machines)
# and PyPI's default build elsewhere. RecBole without its conflicting pins (ciess/compat.py, item 5).
$(VENV)/.installed: pyproject.toml requirements/recbole.txt requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-deps -r requirements/recbole.txt
	$(BIN)/pip install -q -c requirements/constraints.txt -e ".[dev]"
	touch $@

quick: setup
	$(BIN)/snakemake --cores $(CORES) all

paper: setup
	$(BIN)/snakemake all --cores $(CORES) --configfile config/config.yaml

test: setup
	$(BIN)/python -m pytest -q -rs

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

clean-results:
	rm -rf results/data results/runs results/masks results/search results/tables results/notebooks results/logs
