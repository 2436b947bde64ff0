# Two commands are the contract: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The PyTorch build for this machine kind (CPU wheel on local disk); override for CUDA hosts,
# e.g. `make run TORCH=torch` to take the package index's default (CUDA) build.
TORCH ?= torch==2.13.0
VIZ_PORT ?= 4141
MLFLOW_PORT ?= 5000
export KEDRO_DISABLE_TELEMETRY ?= true
LINTED := src tests benchmarks docs/mkdocs_hooks.py docs/screenshots.py
#: What `make clean` removes: the environment, build outputs and caches (never data).
CLEANED := $(VENV) build .viz .pytest_cache .hypothesis .ruff_cache
#: The MLflow store of conf/base/mlflow.yml (runs in mlflow.db, their files in mlartifacts/;
#: mlruns/ is where older stores kept them), removed by `make clean-data` with data/.
MLFLOW_STORE := mlflow.db mlartifacts mlruns
#: The run log of conf/logging.yml (and its rotated copies), also removed by `make clean-data`.
RUN_LOGS := info.log info.log.*

.PHONY: install install-test run test test-fast lint viz viz-build mlflow-ui clean clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install "$(TORCH)" -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install "$(TORCH)" -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: $(VENV)/.installed  ## install, then run the default pipeline on the embedded defaults
	$(BIN)/kedro run $(ARGS)

test: lint  ## install the test extras, lint, then run the whole suite (what CI runs)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed-test  ## while developing: the suite without the tests marked slow
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.installed-test  ## ruff's checks and formatting, as `make test` runs them
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

# `kedro viz run` serves from a child process it spawns, which outlives the launcher when that
# one is killed (SIGTERM: the port stays taken). So the launcher runs in a process group of its
# own, and however the recipe ends (Ctrl-C, `kill` of make, the launcher exiting) that whole
# group is stopped and waited for: TERM, then KILL after VIZ_STOP_S seconds.
VIZ_STOP_S ?= 10
viz: $(VENV)/.installed  ## serve the pipeline graph on http://127.0.0.1:4141
	@trap 'kill -TERM -- -$$viz 2>/dev/null' INT TERM HUP; \
	setsid $(BIN)/kedro viz run --host 127.0.0.1 --port $(VIZ_PORT) --no-browser & viz=$$!; \
	wait $$viz; status=$$?; \
	kill -TERM -- -$$viz 2>/dev/null; \
	for _ in $$(seq $$(( $(VIZ_STOP_S) * 10 ))); do \
		kill -0 -- -$$viz 2>/dev/null || exit $$status; sleep 0.1; \
	done; \
	kill -KILL -- -$$viz 2>/dev/null; exit $$status

viz-build: $(VENV)/.installed  ## write the static kedro-viz site to build/
	$(BIN)/kedro viz build

# Each experiment names its own artifact folder (mlartifacts/, an absolute path in mlflow.db),
# so the UI finds the runs' files with the store alone.
mlflow-ui: $(VENV)/.installed  ## serve the project's MLflow store on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1

clean:  ## remove the virtual environment, build outputs and caches (never data: see clean-data)
	@for path in $(CLEANED); do \
		if [ -e "$$path" ]; then echo "removing $$path"; rm -rf "$$path"; fi; \
	done

# Every data/ folder that holds a .gitkeep keeps it and its sub-folders that hold one; all
# else under data/ goes: the layout of a fresh clone.
clean-data:  ## remove generated data (measurements too), models, reports, the MLflow store, logs
	@for path in $(MLFLOW_STORE) $(RUN_LOGS); do \
		if [ -e "$$path" ]; then echo "removing $$path"; rm -rf "$$path"; fi; \
	done
	@for folder in data $$(find data -name .gitkeep -exec dirname {} \;); do \
		for entry in "$$folder"/* "$$folder"/.[!.]*; do \
			if [ ! -e "$$entry" ] || [ "$${entry##*/}" = .gitkeep ] || [ -e "$$entry/.gitkeep" ]; then \
				continue; \
			fi; \
			echo "removing $$entry"; rm -rf "$$entry"; \
		done; \
	done
