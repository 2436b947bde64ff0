"""The training pipeline with an in-memory catalog: one predictor per dataset, in MLflow."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset

from ofa_latency_kedro.datasets import PredictorFolderDataset
from ofa_latency_kedro.encoding import load_latency_csv, split_table
from ofa_latency_kedro.pipelines.training import create_pipeline
from tests.helpers import free_port, logged_models
from tests.pipelines.runner import project_catalog, run_pipeline

TRAINING = {
    "datasets": "all",
    "min_rows": 30,
    "config": {"epochs": 5, "hidden": 32, "depth": 1},
    "tune": {"enabled": False},
}


@pytest.fixture(scope="module")
def model_input(shared_dir: Path) -> pd.DataFrame:
    folder = shared_dir / "seed_data" / "latency"
    table = load_latency_csv(
        [
            folder / "note10_lookuptable_fixedkernelcompofa.csv",
            folder / "Tesla_P40_GPU_ofa.csv",
        ],
        width_mult={"note10_lookuptable": 1.2},
    )
    return split_table(table, "key")


def run(
    model_input: pd.DataFrame, training: dict, folder: Path, ray: dict | None = None
) -> DataCatalog:
    catalog = project_catalog(
        {
            "latency_model_input": MemoryDataset(model_input),
            "params:training": MemoryDataset(training),
            "params:ray": MemoryDataset(ray or {"address": None}),
            "latency_predictors": PredictorFolderDataset(str(folder)),
            "predictor_metrics": MemoryDataset(),
            "predictor_plots": MemoryDataset(),
            "tuning_trials": MemoryDataset(),
        }
    )
    return run_pipeline(create_pipeline(), catalog)


def test_one_predictor_per_dataset_with_metrics_plots_and_runs(model_input, tmp_path: Path):
    started = int(time.time() * 1000)  # the session's store holds other tests' runs too
    catalog = run(model_input, TRAINING, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == [
        "Tesla_P40_GPU_ofa.pt",
        "note10_lookuptable_compofa.pt",
    ]
    loaded = {name: load() for name, load in PredictorFolderDataset(str(tmp_path)).load().items()}
    assert loaded["note10_lookuptable_compofa"].metrics["test"]["mape"] < 0.5
    metrics = catalog.load("predictor_metrics")
    assert set(metrics["dataset"]) == set(loaded)
    assert (metrics["test_spearman"] > 0.99).all()
    assert set(catalog.load("predictor_plots")) == {
        f"{name}_{kind}.png" for name in loaded for kind in ("parity", "loss")
    }
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.pipeline = 'training' and attributes.start_time >= {started}",
    ).set_index("tags.mlflow.runName")
    assert set(loaded) <= set(runs.index)
    run_id = runs.loc["Tesla_P40_GPU_ofa", "run_id"]
    client = mlflow.MlflowClient()
    assert client.get_run(run_id).info.status == "FINISHED"
    assert runs.loc["Tesla_P40_GPU_ofa", "params.config.hidden"] == "32"
    assert runs.loc["Tesla_P40_GPU_ofa", "metrics.test_mae_ms"] == pytest.approx(
        loaded["Tesla_P40_GPU_ofa"].metrics["test"]["mae"]
    )
    for name in loaded:  # the same names in every predictor's run, so runs compare
        top = {a.path for a in client.list_artifacts(runs.loc[name, "run_id"])}
        assert top == {"checkpoint", "metadata.json", "parity.png", "loss.png"}
    saved = (tmp_path / "Tesla_P40_GPU_ofa.pt").read_bytes()
    logged = Path(client.download_artifacts(run_id, "checkpoint/predictor.pt", str(tmp_path / "d")))
    assert logged.read_bytes() == saved  # the catalog's file, not a second save
    # the predictor as an MLflow Model of its run, registered under its dataset's name
    assert set(logged_models(run_id)) == {"Tesla_P40_GPU_ofa"}
    (version,) = client.search_model_versions(f"run_id = '{run_id}'")
    assert version.name == "Tesla_P40_GPU_ofa"
    val_mape = loaded["Tesla_P40_GPU_ofa"].metrics["val"]["mape"]
    assert float(version.tags["val_mape_pct"]) == pytest.approx(val_mape)
    champion = client.get_model_version_by_alias("Tesla_P40_GPU_ofa", "champion")
    assert float(champion.tags["val_mape_pct"]) <= val_mape
    for name in loaded:
        assert client.get_registered_model(name).aliases.keys() == {"champion"}


def test_datasets_can_be_chosen_and_small_ones_skipped(model_input, tmp_path: Path):
    catalog = run(model_input, {**TRAINING, "datasets": ["Tesla_P40_GPU_ofa"]}, tmp_path)
    assert catalog.load("predictor_metrics")["dataset"].tolist() == ["Tesla_P40_GPU_ofa"]
    with pytest.raises(Exception, match="no dataset has enough subnets"):
        run(model_input, {**TRAINING, "min_rows": 20_000}, tmp_path)


def failing_tune(storage: Path, **changes) -> dict:
    """A Ray Tune search whose first grid point cannot build a model (hidden = 0)."""
    return {
        "enabled": True,
        "num_samples": 1,
        "grace_period": 1,
        "cpus_per_trial": 1,
        "storage_path": str(storage),
        "search_space": {"hidden": ["grid", [0, 32]], "epochs": ["choice", [3]]},
        **changes,
    }


@pytest.mark.slow
def test_a_failing_trial_fails_the_node_with_its_error_or_is_reported(model_input, tmp_path: Path):
    p40 = model_input[model_input["hardware"] == "Tesla_P40_GPU"].head(600)
    with pytest.raises(
        Exception, match=r"1 of 2 Ray Tune trials failed.*hidden' must be at least 1"
    ):
        run(p40, {**TRAINING, "tune": failing_tune(tmp_path / "ray")}, tmp_path / "a")
    assert not (tmp_path / "a").exists()  # nothing half-made was saved
    tune = failing_tune(tmp_path / "ray", on_trial_error="continue")
    catalog = run(p40, {**TRAINING, "tune": tune}, tmp_path / "b")
    trials = catalog.load("tuning_trials")
    assert sorted(trials["status"]) == ["completed", "error"]
    assert (tmp_path / "b" / "Tesla_P40_GPU_ofa.pt").is_file()


@pytest.mark.slow
def test_an_unreachable_ray_address_is_named(model_input, tmp_path: Path):
    address = f"127.0.0.1:{free_port()}"
    p40 = model_input[model_input["hardware"] == "Tesla_P40_GPU"].head(300)
    training = {**TRAINING, "tune": failing_tune(tmp_path / "ray")}
    with pytest.raises(Exception, match=f"cannot start or reach Ray at {address}"):
        run(p40, training, tmp_path / "a", ray={"address": address})
