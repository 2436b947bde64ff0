"""The generalization pipeline with an in-memory catalog: three of the seed's devices."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from matplotlib.figure import Figure

from ofa_latency_kedro.datasets import PredictorFolderDataset
from ofa_latency_kedro.pipelines.generalization import create_pipeline
from ofa_latency_kedro.search_space import Arch
from tests.helpers import logged_models, seed_ofa_devices
from tests.pipelines.runner import project_catalog, run_pipeline

GENERALIZATION = {
    "datasets": "all",
    "held_out": ["Tesla_P40_GPU"],
    "reference_count": 6,
    "model": {"basis": 16, "hidden": 64, "epochs": 10, "seed": 0},
}
HARDWARE = {
    "RTX_2080_Ti_GPU": {"kind": "gpu", "cuda_cores": 4352, "peak_tflops": 13.4},
    "Tesla_P40_GPU": {"kind": "gpu", "cuda_cores": 3840, "peak_tflops": 11.8},
    "note10_lookuptable": {"kind": "lut"},
}


@pytest.fixture(scope="module")
def model_input(shared_dir: Path) -> pd.DataFrame:
    return seed_ofa_devices(shared_dir, 600)


def run(model_input: pd.DataFrame, generalization: dict, out: Path) -> DataCatalog:
    catalog = project_catalog(
        {
            "latency_model_input": MemoryDataset(model_input),
            "encoding_report": MemoryDataset({"hardware": HARDWARE}),
            "params:generalization": MemoryDataset(generalization),
            "generalization_results": MemoryDataset(),
            "generalization_plot": MemoryDataset(),
            "generalized_predictors": PredictorFolderDataset(str(out)),
            "reference_subnets": MemoryDataset(),
        }
    )
    return run_pipeline(create_pipeline(), catalog)


def test_leave_one_out_table_models_and_reference_set(model_input, tmp_path: Path):
    catalog = run(model_input, GENERALIZATION, tmp_path)
    results = catalog.load("generalization_results")
    assert set(results["held_out"]) == {"Tesla_P40_GPU_ofa"}
    assert list(results["descriptor"]) == [
        "reference",
        "registry",
        "head:RTX_2080_Ti_GPU_ofa",
        "head:note10_lookuptable_ofa",
    ]
    assert (results["trained_on"] == "RTX_2080_Ti_GPU_ofa+note10_lookuptable_ofa").all()
    assert results["spearman"].min() > 0.9
    assert isinstance(catalog.load("generalization_plot"), Figure)
    models = {name: load() for name, load in PredictorFolderDataset(str(tmp_path)).load().items()}
    assert sorted(models) == ["all_devices", "without_Tesla_P40_GPU"]
    assert len(models["all_devices"].devices) == 3
    references = catalog.load("reference_subnets")
    assert len(references) == 6 and set(references["space"]) == {"ofa"}
    for text, key in zip(references["child_arch"], references["canonical_key"], strict=True):
        assert Arch.parse(text).canonical_key == key
    runs = mlflow.search_runs(
        filter_string="tags.pipeline = 'generalization'", search_all_experiments=True
    )
    assert len(runs) == 1
    assert {
        "metrics.Tesla_P40_GPU_ofa.reference.spearman",
        "metrics.Tesla_P40_GPU_ofa.reference.mape_pct",
        "metrics.Tesla_P40_GPU_ofa.reference.mae_ms",
    } <= set(runs.columns)
    assert runs["metrics.training_seconds"].iloc[0] > 0
    artifacts = mlflow.MlflowClient().list_artifacts(runs["run_id"].iloc[0], "checkpoints")
    assert {a.path for a in artifacts} == {
        "checkpoints/all_devices.pt",
        "checkpoints/without_Tesla_P40_GPU.pt",
    }
    # each model as an MLflow Model; one on every device answers rows by their device
    logged = logged_models(runs["run_id"].iloc[0])
    assert set(logged) == {"all_devices", "without_Tesla_P40_GPU"}
    rows = model_input[model_input["split"] == "test"].groupby("hardware").head(2)
    devices = (rows["hardware"] + "_" + rows["space"]).tolist()
    query = pd.DataFrame({"child_arch": rows["child_arch"].tolist(), "device": devices})
    served = mlflow.pyfunc.load_model(logged["all_devices"].model_uri).predict(query)
    general = models["all_devices"]
    for device in set(devices):
        chosen = (query["device"] == device).to_numpy()
        placed = general.for_device(device)
        expected = placed.predict(query.loc[chosen, "child_arch"], width_mult=placed.width_mult)
        assert np.array_equal(served.loc[chosen, "latency_ms"], expected)


def test_unknown_datasets_are_named(model_input, tmp_path: Path):
    with pytest.raises(
        ValueError, match="parameter 'generalization.datasets' names jetson_ofa, which the model"
    ):
        run(model_input, {**GENERALIZATION, "datasets": ["jetson_ofa"]}, tmp_path)
