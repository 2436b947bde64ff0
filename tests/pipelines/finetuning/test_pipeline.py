"""The finetuning pipeline with an in-memory catalog: RTX 2080 Ti carried to the Tesla P40."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from matplotlib.figure import Figure

from ofa_latency_kedro import mlflow_models
from ofa_latency_kedro.datasets import PredictorFolderDataset
from ofa_latency_kedro.encoding import load_latency_csv, split_table
from ofa_latency_kedro.pipelines.finetuning import create_pipeline
from ofa_latency_kedro.predictors import train_predictor
from ofa_latency_kedro.predictors.generalization import train_generalized
from tests.helpers import logged_models
from tests.pipelines.runner import project_catalog, run_pipeline

FINETUNING = {
    "target": "Tesla_P40_GPU_ofa",
    "sources": "auto",
    "ks": [5, 20, 5000],
    "draws": [0],
    "methods": ["auto", "calibrate", "last_layer"],
    "samplers": ["random", "informative"],
    "adapt_k": 10,
    "adapt_sampler": "informative",
}


@pytest.fixture(scope="module")
def model_input(shared_dir: Path) -> pd.DataFrame:
    folder = shared_dir / "seed_data" / "latency"
    rtx = load_latency_csv(folder / "RTX_2080_Ti_GPU_ofa.csv").iloc[:1200]
    p40 = load_latency_csv(folder / "Tesla_P40_GPU_ofa.csv").iloc[:1200]
    return pd.concat([split_table(rtx, "key"), split_table(p40, "key")], ignore_index=True)


@pytest.fixture(scope="module")
def predictors(model_input: pd.DataFrame, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("predictors")
    rtx = model_input[model_input["hardware"] == "RTX_2080_Ti_GPU"]
    PredictorFolderDataset(str(folder)).save(
        {"RTX_2080_Ti_GPU_ofa": train_predictor(rtx, config={"epochs": 10})}
    )
    return folder


def run(
    model_input: pd.DataFrame,
    predictors: Path,
    finetuning: dict,
    out: Path,
    generalized: Path | None = None,
) -> DataCatalog:
    catalog = project_catalog(
        {
            "latency_model_input": MemoryDataset(model_input),
            "latency_predictors": PredictorFolderDataset(str(predictors)),
            "generalized_predictors": PredictorFolderDataset(str(generalized or out / "none")),
            "params:finetuning": MemoryDataset(finetuning),
            "finetuning_curves": MemoryDataset(),
            "finetuning_plot": MemoryDataset(),
            "adapted_predictors": PredictorFolderDataset(str(out)),
        }
    )
    return run_pipeline(create_pipeline(), catalog)


def test_learning_curves_and_the_adapted_predictor(model_input, predictors, tmp_path: Path):
    catalog = run(model_input, predictors, FINETUNING, tmp_path)
    curves = catalog.load("finetuning_curves")
    assert set(curves["k"]) == {5, 20}  # 5000 is more than the target's training rows
    assert len(curves) == 2 * 2 * 1 * 3  # K x samplers x draws x methods
    assert set(curves["sources"]) == {"RTX_2080_Ti_GPU_ofa"}
    assert (curves["mape"] > 0).all() and (curves["spearman"] > 0.9).all()
    at_20 = curves[(curves["k"] == 20) & (curves["method"] == "calibrate")]
    assert at_20["mape"].max() < 10
    assert isinstance(catalog.load("finetuning_plot"), Figure)
    adapted = {name: load() for name, load in PredictorFolderDataset(str(tmp_path)).load().items()}
    assert list(adapted) == ["Tesla_P40_GPU_ofa_from_RTX_2080_Ti_GPU_k10"]
    predictor = adapted["Tesla_P40_GPU_ofa_from_RTX_2080_Ti_GPU_k10"]
    assert predictor.hardware == "Tesla_P40_GPU" and predictor.metadata.adaptation.k == 10
    runs = mlflow.search_runs(
        filter_string="tags.pipeline = 'finetuning'", search_all_experiments=True
    )
    assert len(runs) >= 1
    assert {"metrics.calibrate_random_mape_pct", "metrics.calibrate_random_mae_ms"} <= set(
        runs.columns
    )
    assert runs["params.adapted.k"].iloc[0] == "10"
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(runs["run_id"].iloc[0])}
    assert {
        "finetuning_curves.csv",
        "finetuning_curves.png",
        "metadata.json",
        "checkpoint",
    } <= artifacts
    logged = client.download_artifacts(
        runs["run_id"].iloc[0], "checkpoint/predictor.pt", str(tmp_path / "d")
    )
    saved = tmp_path / "Tesla_P40_GPU_ofa_from_RTX_2080_Ti_GPU_k10.pt"
    assert Path(logged).read_bytes() == saved.read_bytes()
    # the adapted predictor as an MLflow Model that answers as it does
    model = logged_models(runs["run_id"].iloc[0])["Tesla_P40_GPU_ofa_from_RTX_2080_Ti_GPU_k10"]
    test = model_input[
        (model_input["hardware"] == "Tesla_P40_GPU") & (model_input["split"] == "test")
    ]
    served = mlflow.pyfunc.load_model(model.model_uri).predict(test[["child_arch"]].head(20))
    assert np.array_equal(served["latency_ms"], predictor.predict(test["child_arch"].head(20)))


def test_a_registered_model_is_a_source(model_input, predictors, tmp_path: Path):
    """``finetuning.sources`` names a registered model by URI; it stands for its dataset."""
    rtx = PredictorFolderDataset(str(predictors)).load()["RTX_2080_Ti_GPU_ofa"]()
    checkpoint = rtx.save(tmp_path / "rtx.pt")
    with mlflow.start_run() as parent:
        run_id = parent.info.run_id
        model = mlflow_models.log_predictor(run_id, "source_test", rtx, checkpoint)
        mlflow_models.register_predictor(run_id, "source_test", rtx, model)
    settings = {**FINETUNING, "ks": [20], "methods": ["calibrate"], "samplers": ["random"]}
    uri = {**settings, "sources": ["models:/source_test@champion"]}
    curves = run(model_input, predictors, uri, tmp_path / "adapted").load("finetuning_curves")
    assert set(curves["sources"]) == {"RTX_2080_Ti_GPU_ofa"}


def test_a_source_of_the_target_device_is_refused(model_input, predictors, tmp_path: Path):
    with pytest.raises(ValueError, match="trained on the target device itself"):
        run(model_input, predictors, {**FINETUNING, "sources": ["Tesla_P40_GPU_ofa"]}, tmp_path)
    with pytest.raises(
        ValueError,
        match="parameter 'finetuning.target' names jetson_ofa, which the model input does not",
    ):
        run(model_input, predictors, {**FINETUNING, "target": "jetson_ofa"}, tmp_path)
    with pytest.raises(ValueError, match=r"parameter 'finetuning.ks' must be at least 3 .*got 0"):
        run(model_input, predictors, {**FINETUNING, "ks": [0]}, tmp_path)
    with pytest.raises(
        ValueError, match="'finetuning.sources' names models:/missing@champion, but the Model"
    ):
        missing = {**FINETUNING, "sources": ["models:/missing@champion"]}
        run(model_input, predictors, missing, tmp_path)


def test_the_generalized_predictor_without_the_target_is_compared(
    model_input, predictors, tmp_path: Path
):
    generalized = tmp_path / "generalized"
    rtx = model_input[
        (model_input["hardware"] == "RTX_2080_Ti_GPU") & (model_input["split"] == "train")
    ]
    PredictorFolderDataset(str(generalized)).save(
        {"without_Tesla_P40_GPU": train_generalized(rtx, config={"epochs": 3})}
    )
    settings = {**FINETUNING, "ks": [20], "methods": ["calibrate", "last_layer", "embedding"]}
    catalog = run(model_input, predictors, settings, tmp_path / "adapted", generalized)
    curves = catalog.load("finetuning_curves")
    per_source = curves.groupby("sources")["method"].agg(set).to_dict()
    assert per_source == {
        "RTX_2080_Ti_GPU_ofa": {"calibrate", "last_layer"},
        "generalized:RTX_2080_Ti_GPU_ofa": {"generalized/calibrate", "generalized/embedding"},
    }
    per_device = curves["sources"] == "RTX_2080_Ti_GPU_ofa"
    assert (curves.loc[per_device, "mape"] < 5).all()
    assert (curves.loc[~per_device, "mape"] < 20).all()  # a 3-epoch model of 840 rows
