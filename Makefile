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
LINTED := src tests benchmarks

.PHONY: install install-test run test test-fast lint viz viz-build mlflow-ui clean

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

viz: $(VENV)/.installed  ## serve the pipeline graph on http://127.0.0.1:4141
	$(BIN)/kedro viz run --host 127.0.0.1 --port $(VIZ_PORT) --no-browser

viz-build: $(VENV)/.installed  ## write the static kedro-viz site to build/
	$(BIN)/kedro viz build

mlflow-ui: $(VENV)/.installed  ## serve the project's MLflow store on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
