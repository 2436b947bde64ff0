"""Where MLflow keeps the files of a run: the project's runs in ``mlartifacts/`` beside
``mlflow.db``, as conf/base/mlflow.yml sets it; the tests' runs in the session's temporary
folder; nothing in the checkout either way."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import pytest
import yaml

from ofa_latency_kedro.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, PREDICTOR_ARTIFACTS
from tests.helpers import PROJECT_ROOT, kedro, tree

DATASET = "Tesla_P40_GPU_ofa"


def local_path(uri: str) -> Path:
    """The folder of a local artifact URI (``file://`` or a plain path)."""
    parsed = urlparse(uri)
    assert parsed.scheme in ("", "file"), f"not a local artifact location: {uri}"
    return Path(unquote(parsed.path))


def test_the_project_keeps_its_artifacts_beside_its_store():
    conf = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "mlflow.yml").read_text())
    assert conf["server"]["mlflow_tracking_uri"] == "sqlite:///mlflow.db"
    assert conf["tracking"]["experiment"]["create_experiment_kwargs"]["artifact_location"] == (
        "mlartifacts"
    )


def test_a_run_of_the_tests_keeps_its_files_in_the_sessions_temporary_folder(mlflow_store: str):
    before = tree(PROJECT_ROOT)
    with mlflow.start_run() as run:
        mlflow.log_text("parity", "plots/parity.txt")
    folder = local_path(run.info.artifact_uri)
    store = Path(mlflow_store.removeprefix("sqlite:///")).parent
    assert folder.is_relative_to(store / "mlartifacts"), folder
    assert (folder / "plots" / "parity.txt").read_text() == "parity"
    assert tree(PROJECT_ROOT) == before


@pytest.mark.slow
def test_a_tracked_kedro_run_writes_its_files_beside_its_store_and_nothing_in_the_checkout(
    project_copy: Path, shared_dir: Path
):
    before = tree(PROJECT_ROOT)
    seed = shared_dir / "seed_data" / "latency" / f"{DATASET}.csv"
    lines = seed.read_text().splitlines()[:151]  # header + 150 rows
    (project_copy / "data" / "01_raw" / "latency" / seed.name).write_text("\n".join(lines) + "\n")
    result = kedro(
        project_copy,
        "run",
        "--pipelines",
        "encoding,training",
        "--params",
        "training.config.epochs=2",
    )
    assert result.returncode == 0, result.stdout + result.stderr

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ofa_latency_kedro")
    assert local_path(experiment.artifact_location) == project_copy / "mlartifacts"
    runs = client.search_runs([experiment.experiment_id])
    predictor = next(run for run in runs if run.info.run_name == DATASET)
    files = local_path(predictor.info.artifact_uri)
    assert files.is_relative_to(project_copy / "mlartifacts"), files
    assert {
        path.relative_to(files).as_posix() for path in files.rglob("*") if path.is_file()
    } == set(PREDICTOR_ARTIFACTS)
    assert not (project_copy / "mlruns").exists()
    # conf/base/mlflow.yml files the new experiment as machine learning; the predictor's
    # input is its rows of the model input the run read (the parquet file of the catalog)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    [logged] = predictor.inputs.dataset_inputs
    assert logged.dataset.name == DATASET
    assert json.loads(logged.dataset.source)["uri"].endswith("latency_model_input.parquet")
    assert tree(PROJECT_ROOT) == before
