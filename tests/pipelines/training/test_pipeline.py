"""The training pipeline with an in-memory catalog: one predictor per dataset, in MLflow."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from ofa_latency_kedro.datasets import PredictorFolderDataset
from ofa_latency_kedro.encoding import load_latency_csv, split_table
from ofa_latency_kedro.pipelines.training import create_pipeline

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


def run(model_input: pd.DataFrame, training: dict, folder: Path) -> DataCatalog:
    catalog = DataCatalog(
        {
            "latency_model_input": MemoryDataset(model_input),
            "params:training": MemoryDataset(training),
            "params:ray": MemoryDataset({"address": None}),
            "latency_predictors": PredictorFolderDataset(str(folder)),
            "predictor_metrics": MemoryDataset(),
            "predictor_plots": MemoryDataset(),
            "tuning_trials": MemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


def test_one_predictor_per_dataset_with_metrics_plots_and_runs(model_input, tmp_path: Path):
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
    run_ids = metrics["mlflow_run_id"].tolist()
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.pipeline = 'training'"
    )
    assert set(run_ids) <= set(runs["run_id"])


def test_datasets_can_be_chosen_and_small_ones_skipped(model_input, tmp_path: Path):
    catalog = run(model_input, {**TRAINING, "datasets": ["Tesla_P40_GPU_ofa"]}, tmp_path)
    assert catalog.load("predictor_metrics")["dataset"].tolist() == ["Tesla_P40_GPU_ofa"]
    with pytest.raises(Exception, match="no dataset has enough subnets"):
        run(model_input, {**TRAINING, "min_rows": 20_000}, tmp_path)
