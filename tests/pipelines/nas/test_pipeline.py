"""The NAS pipeline with an in-memory catalog, on a lookup-table device (verifiable here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro_datasets.pandas import CSVDataset
from matplotlib.figure import Figure

from ofa_latency_kedro import mlflow_models
from ofa_latency_kedro.datasets import (
    AccuracyPredictorDataset,
    LatencyFolderDataset,
    PredictorFolderDataset,
)
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.nas import AccuracyPredictorUnavailable
from ofa_latency_kedro.pipelines.nas import create_pipeline
from ofa_latency_kedro.predictors import PredictorError
from ofa_latency_kedro.search_space import Arch, build_subnet, net_config
from tests.pipelines.runner import project_catalog, run_pipeline

NAS = {
    "predictors": "all",
    "constraints_ms": [20, 30],
    "objective": "auto",
    "space": None,
    "resolutions": "seed",
    "population_size": 24,
    "generations": 20,
    "seed": 0,
    "verify": True,
    "verify_rounds": 3,
}


def run(device: Path, nas: dict, accuracy_path: Path, out: Path) -> DataCatalog:
    latency = out / "latency"  # a copy: verification appends the winners it measures
    if not latency.exists() and (device / "latency").exists():
        shutil.copytree(device / "latency", latency)
    catalog = project_catalog(
        {
            "latency_predictors": PredictorFolderDataset(str(device / "predictors")),
            "accuracy_predictor": AccuracyPredictorDataset(str(accuracy_path), url=None),
            "raw_latency": LatencyFolderDataset(str(latency)),
            "verified_latency": LatencyFolderDataset(str(latency)),
            "params:nas": MemoryDataset(nas),
            "nas_results": CSVDataset(filepath=str(out / "nas_results.csv")),
            "nas_verification": MemoryDataset(),
            "nas_net_configs": MemoryDataset(),
            "nas_pareto_plot": MemoryDataset(),
        }
    )
    return run_pipeline(create_pipeline(), catalog)


def test_search_verify_and_export(device: Path, tmp_path: Path):
    catalog = run(device, NAS, device / "acc_predictor.pth", tmp_path)
    results: pd.DataFrame = catalog.load("nas_results")
    assert results["budget_ms"].tolist() == [20, 30]
    assert (results["status"] == "ok").all() and (results["objective"] == "accuracy").all()
    assert results["predicted_accuracy"].between(0.7, 0.85).all()
    assert results["verified"].all() and results["budget_met"].all()
    assert (results["measured_latency_ms"] <= results["budget_ms"] * 1.03).all()
    summary = catalog.load("nas_verification")
    assert summary["verified"] == 2 and summary["budgets_met"] == 2
    configs = catalog.load("nas_net_configs")
    assert sorted(configs) == ["note10_ofa_20ms", "note10_ofa_30ms"]
    arch = Arch.parse(results["arch"].iloc[0], width_mult=1.2)
    assert configs["note10_ofa_20ms"] == net_config(arch)
    assert len(configs["note10_ofa_20ms"]["blocks"]) == 1 + sum(arch.d)
    build_subnet(arch)  # the exported subnet builds
    assert isinstance(catalog.load("nas_pareto_plot"), Figure)
    runs = mlflow.search_runs(filter_string="tags.pipeline = 'nas'", search_all_experiments=True)
    assert runs.iloc[0]["tags.nas.objective"] == "accuracy"


def test_measured_winners_are_appended_to_their_dataset(device: Path, tmp_path: Path):
    before = pd.read_csv(device / "latency" / "note10_ofa.csv")
    catalog = run(device, NAS, device / "acc_predictor.pth", tmp_path)
    results = catalog.load("nas_results")
    after = pd.read_csv(tmp_path / "latency" / "note10_ofa.csv")
    winners = {Arch.parse(text, width_mult=1.2).to_seed_string() for text in results["arch"]}
    appended = after.iloc[len(before) :]
    assert winners <= set(after["child_arch"]) and len(appended) >= 1
    assert set(appended["child_arch"]) <= winners | set(before["child_arch"]) | set(
        appended["child_arch"]
    )
    assert (appended["backend"] == "lut").all() and (appended["hardware"] == "note10").all()
    sidecar = json.loads((tmp_path / "latency" / "note10_ofa.json").read_text())
    session = sidecar["sessions"][-1]
    assert session["kind"] == "verification" and session["measured"] >= len(results)
    assert (
        sidecar["protocol"]
        == json.loads((device / "latency" / "note10_ofa.json").read_text())["protocol"]
    )


def test_proxy_objective_is_labelled_and_verification_can_be_off(device: Path, tmp_path: Path):
    catalog = run(device, {**NAS, "verify": False}, tmp_path / "missing.pth", tmp_path)
    results = catalog.load("nas_results")
    assert (results["objective"] == "macs").all() and results["predicted_accuracy"].isna().all()
    assert not results["verified"].any()
    assert set(results["verification_note"]) == {"not verified: nas.verify is false"}
    runs = mlflow.search_runs(filter_string="tags.pipeline = 'nas'", search_all_experiments=True)
    assert runs.iloc[0]["tags.nas.objective"] == "macs"


def test_accuracy_objective_without_the_predictor_stops_with_where_to_put_it(
    device: Path, tmp_path: Path
):
    with pytest.raises(AccuracyPredictorUnavailable, match="Put acc_predictor.pth at"):
        run(device, {**NAS, "objective": "accuracy"}, tmp_path / "missing.pth", tmp_path)


def test_unknown_predictor_names_what_is_there(device: Path, tmp_path: Path):
    with pytest.raises(
        ParameterError, match="'nas.predictors' names jetson_ofa, which .*predictors"
    ):
        run(device, {**NAS, "predictors": ["jetson_ofa"]}, device / "acc_predictor.pth", tmp_path)
    with pytest.raises(ParameterError, match=r"\(it holds note10_ofa\)"):
        run(device, {**NAS, "predictors": ["jetson_ofa"]}, device / "acc_predictor.pth", tmp_path)


def test_a_registered_model_is_searched_and_verified_for_its_dataset(device: Path, tmp_path: Path):
    """``nas.predictors`` names a registered model by URI (here with no checkpoint in the
    folder at all): it is searched, and verified on its dataset's device."""
    predictor = PredictorFolderDataset(str(device / "predictors")).load()["note10_ofa"]()
    with mlflow.start_run() as parent:
        run_id = parent.info.run_id
        checkpoint = predictor.save(tmp_path / "note10_ofa.pt")
        model = mlflow_models.log_predictor(run_id, "nas_test", predictor, checkpoint)
        mlflow_models.register_predictor(run_id, "nas_test", predictor, model)
    registry_only = tmp_path / "registry_only"
    (registry_only / "predictors").mkdir(parents=True)
    shutil.copytree(device / "latency", registry_only / "latency")
    nas = {**NAS, "predictors": ["models:/nas_test/1"], "generations": 5}
    catalog = run(registry_only, nas, device / "acc_predictor.pth", tmp_path / "out")
    results = catalog.load("nas_results")
    assert set(results["hardware"]) == {"note10"} and results["verified"].all()
    with pytest.raises(ParameterError, match="'nas.predictors' names models:/nas_test/2, but"):
        run(device, {**nas, "predictors": ["models:/nas_test/2"]}, tmp_path / "x.pth", tmp_path)


def test_an_empty_predictor_folder_says_to_train_first(device: Path, tmp_path: Path):
    empty = tmp_path / "empty"
    (empty / "predictors").mkdir(parents=True)
    with pytest.raises(PredictorError, match=r"predictors holds nothing \(run the training"):
        run(empty, NAS, device / "acc_predictor.pth", tmp_path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"constraints_ms": "fast"}, "'nas.constraints_ms' must be a list of milliseconds"),
        ({"generations": -1}, "'nas.generations' must be at least 0, got -1"),
        ({"objective": "flops"}, "'nas.objective' must be one of 'accuracy', 'macs', 'auto'"),
        ({"verify_rounds": -1}, "'nas.verify_rounds' must be at least 0"),
        ({"verfy": False}, "unknown parameter 'nas.verfy'; did you mean 'verify'?"),
        ({"predictors": []}, "'nas.predictors' names no predictor"),
    ],
)
def test_bad_parameters_are_named_before_any_search(device, tmp_path, changes, message):
    with pytest.raises(ParameterError) as info:
        run(device, {**NAS, **changes}, device / "acc_predictor.pth", tmp_path)
    assert message in str(info.value)


def test_a_budget_out_of_the_predictors_reach_names_the_parameter(device, tmp_path):
    with pytest.raises(ParameterError, match="'nas.resolutions' leaves nothing to search"):
        run(device, {**NAS, "resolutions": [128]}, device / "acc_predictor.pth", tmp_path)
