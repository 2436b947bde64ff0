"""Shared test set-up (fixtures): environment, hypothesis profiles, a temporary MLflow store,
the ../shared data folder and project copies. Plain helpers live in ``tests/helpers.py``."""

from __future__ import annotations

import importlib
import os
from importlib.util import find_spec
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import PROJECT_ROOT, copy_project

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")


def _console_logging_in_this_process() -> None:
    """Kedro sets up logging when ``kedro.framework.project`` is first imported, from
    conf/logging.yml under the working directory (the checkout), whose file handler writes
    info.log there. This process takes Kedro's own console-only configuration instead; the
    ``kedro`` runs the tests start keep the project's (the variable is not left set)."""
    if "KEDRO_LOGGING_CONFIG" in os.environ:
        return
    kedro_folder = Path(find_spec("kedro").origin).parent
    os.environ["KEDRO_LOGGING_CONFIG"] = str(kedro_folder / "framework/project/rich_logging.yml")
    try:
        importlib.import_module("kedro.framework.project")
    finally:
        del os.environ["KEDRO_LOGGING_CONFIG"]


_console_logging_in_this_process()

#: The experiment every test run goes to (MLflow's "Default" keeps its artifacts in ./mlruns).
TEST_EXPERIMENT = "ofa_latency_kedro_tests"

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory) -> str:
    """Every MLflow run of the tests goes to a temporary SQLite store, never the project's,
    and its artifacts to ``mlartifacts`` beside it (MLflow's default, ``./mlruns`` under the
    working directory, would be the checkout). Kedro runs set their own store and experiment
    from their project's conf/base/mlflow.yml."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["MLFLOW_EXPERIMENT_NAME"] = TEST_EXPERIMENT  # for subprocesses
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment(TEST_EXPERIMENT, artifact_location=str(folder / "mlartifacts"))
    mlflow.set_experiment(TEST_EXPERIMENT)
    return uri


@pytest.fixture(autouse=True)
def isolated_mlflow(mlflow_store: str):
    """No test leaves an MLflow run open or the tracking URI pointing elsewhere (an
    in-process Kedro session points it at its project's store)."""
    yield
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(mlflow_store)
    mlflow.set_experiment(TEST_EXPERIMENT)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ``shared`` folder beside the checkout (``OFA_SHARED_DIR`` overrides)."""
    path = Path(os.environ.get("OFA_SHARED_DIR", PROJECT_ROOT.parent / "shared")).resolve()
    if not (path / "reference").is_dir() or not (path / "seed_data").is_dir():
        pytest.fail(
            f"the shared data folder was not found at {path}: the tests read the seed data and "
            "reference subnets from ../shared beside the checkout (or set OFA_SHARED_DIR)"
        )
    return path


@pytest.fixture(scope="session")
def reference_subnets(shared_dir: Path) -> list[dict]:
    import json

    return json.loads((shared_dir / "reference" / "ofa_mbv3_subnets.json").read_text())["subnets"]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project's configuration and layout in a temporary folder, so runs write there."""
    return copy_project(tmp_path / "project")
