"""Shared test set-up (fixtures): environment, hypothesis profiles, a temporary MLflow store,
the ../shared data folder and project copies. Plain helpers live in ``tests/helpers.py``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import PROJECT_ROOT

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")


settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory) -> str:
    """Every MLflow run of the tests goes to a temporary SQLite store, never the project's."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    import mlflow

    mlflow.set_tracking_uri(uri)
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
    mlflow.set_experiment("Default")


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
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    (root / "src").mkdir()  # the package itself comes from the editable install
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    for layer in (PROJECT_ROOT / "data").iterdir():
        if layer.is_dir():
            (root / "data" / layer.name).mkdir(parents=True)
    (root / "data" / "01_raw" / "latency").mkdir()
    return root
