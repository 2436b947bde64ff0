"""MLflow records (a real SQLite tracking store): written by the hook from what the catalog
saved, nested under the active run, and nothing when no run is active. Runs of a kind compare:
fixed artifact names, metric names with their unit and no dataset or budget inside, a
predictor's run covering its training, the datasets used as run inputs."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from matplotlib.figure import Figure

from ofa_latency_kedro import tracking
from ofa_latency_kedro.datasets import PredictorFolderDataset
from ofa_latency_kedro.encoding import load_latency_csv, split_table
from ofa_latency_kedro.hooks import MlflowRecordsHook
from ofa_latency_kedro.measurement.campaign import summarize_dataset
from ofa_latency_kedro.predictors import train_predictor
from tests.helpers import PROJECT_ROOT

TRIALS = pd.DataFrame(
    [
        {
            "dataset": "p40",
            "trial": "t0",
            "lr": 0.001,
            "status": "completed",
            "val_mae": 0.5,
            "val_mape": 1.0,
            "epochs": 4,
            "error": None,
        },
        {
            "dataset": "p40",
            "trial": "t1",
            "lr": 0.01,
            "status": "error",
            "val_mae": float("nan"),
            "val_mape": float("nan"),
            "epochs": 0,
            "error": "ValueError: boom",
        },
    ]
)
DATASETS = ("Tesla_P40_GPU_ofa", "RTX_2080_Ti_GPU_ofa")


def children(parent: str) -> pd.DataFrame:
    return mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent}'", search_all_experiments=True
    )


def artifact_paths(run_id: str, folder: str | None = None) -> set[str]:
    """Every file of a run's artifacts (folders walked)."""
    paths = set()
    for item in mlflow.MlflowClient().list_artifacts(run_id, folder):
        paths |= artifact_paths(run_id, item.path) if item.is_dir else {item.path}
    return paths


def test_trials_are_runs_nested_under_their_predictor_run():
    with mlflow.start_run(run_name="kedro run") as parent:
        records = tracking.RunRecords()
        tracking.record_trials(records, TRIALS)
        records.end()
    client = mlflow.MlflowClient()
    records_run_id = children(parent.info.run_id)["run_id"].iloc[0]
    predictor_run = client.get_run(records_run_id)
    assert predictor_run.info.run_name == "p40" and predictor_run.info.status == "FINISHED"
    assert "tuning_trials.csv" in artifact_paths(records_run_id)
    trials = children(records_run_id).set_index("tags.mlflow.runName")
    assert sorted(trials.index) == ["t0", "t1"]
    assert trials.loc["t0", "metrics.val_mae_ms"] == 0.5
    assert trials.loc["t0", "metrics.val_mape_pct"] == 1.0
    assert trials.loc["t0", "params.lr"] == "0.001"
    assert trials.loc["t1", "tags.error"] == "ValueError: boom"
    assert trials.loc["t1", "tags.ray_tune_status"] == "error"


def test_nothing_is_recorded_without_an_active_run():
    before = len(mlflow.search_runs(search_all_experiments=True))
    hook = MlflowRecordsHook()
    hook.after_dataset_saved("tuning_trials", TRIALS, node=None)
    hook.after_pipeline_run()
    assert len(mlflow.search_runs(search_all_experiments=True)) == before


def test_datasets_without_a_record_are_left_alone():
    with mlflow.start_run(run_name="kedro run") as parent:
        MlflowRecordsHook().after_dataset_saved("sampling_plan", pd.DataFrame(), node=None)
    assert children(parent.info.run_id).empty


# -- predictor runs ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_input(shared_dir: Path) -> pd.DataFrame:
    folder = shared_dir / "seed_data" / "latency"
    frames = [load_latency_csv(folder / f"{name}.csv").head(150) for name in DATASETS]
    return split_table(pd.concat(frames, ignore_index=True), "key")


@pytest.fixture(scope="module")
def predictor_runs(model_input: pd.DataFrame, tmp_path_factory) -> dict:
    """Two small predictors recorded as a ``kedro run`` would: the model input loaded, the
    plots saved before the predictors (the run must still start when the training began)."""
    folder = tmp_path_factory.mktemp("predictors")
    names = model_input["hardware"] + "_" + model_input["space"]
    predictors = {
        name: train_predictor(
            model_input[names == name], config={"epochs": 3, "hidden": 16, "depth": 1}
        )
        for name in DATASETS
    }
    catalog = DataCatalog(
        {
            "latency_model_input": MemoryDataset(model_input),
            "latency_predictors": PredictorFolderDataset(str(folder)),
            "predictor_plots": MemoryDataset(),
        }
    )
    plots = {f"{name}_{plot}.png": Figure() for name in DATASETS for plot in ("parity", "loss")}
    hook = MlflowRecordsHook()
    with mlflow.start_run(run_name="kedro run") as parent:
        hook.before_node_run(catalog)
        hook.after_dataset_loaded("latency_model_input", model_input, node=None)
        for name, data in (("predictor_plots", plots), ("latency_predictors", predictors)):
            catalog.save(name, data)
            hook.after_dataset_saved(name, data, node=None)
        hook.after_pipeline_run()
    runs = children(parent.info.run_id).set_index("tags.mlflow.runName")
    return {"predictors": predictors, "runs": runs, "folder": folder}


def test_every_predictor_run_has_the_same_artifact_names(predictor_runs):
    runs = predictor_runs["runs"]
    assert set(runs.index) == set(DATASETS)
    for name in DATASETS:
        assert artifact_paths(runs.loc[name, "run_id"]) == set(tracking.PREDICTOR_ARTIFACTS)
    run_id = runs.loc[DATASETS[0], "run_id"]
    client = mlflow.MlflowClient()
    logged = Path(client.download_artifacts(run_id, "checkpoint/predictor.pt"))
    assert logged.read_bytes() == (predictor_runs["folder"] / f"{DATASETS[0]}.pt").read_bytes()
    metadata = json.loads(Path(client.download_artifacts(run_id, "metadata.json")).read_text())
    assert metadata["hardware"] == "Tesla_P40_GPU"


def test_metric_names_carry_their_unit_and_equal_the_predictors_figures(predictor_runs):
    runs = predictor_runs["runs"]
    metrics = {c for c in runs.columns if c.startswith("metrics.")}
    for split in ("train", "val", "test"):
        assert {
            f"metrics.{split}_mae_ms",
            f"metrics.{split}_rmse_ms",
            f"metrics.{split}_mape_pct",
            f"metrics.{split}_spearman",
            f"metrics.{split}_within_5pct_share_pct",
            f"metrics.{split}_rows",
        } <= metrics
    assert {"metrics.test_interval90_coverage_pct", "metrics.test_interval90_halfwidth_pct"} <= (
        metrics
    )
    assert not any(name.endswith(("_mae", "_mape", "_rmse")) for name in metrics)
    assert not any(dataset in name for name in metrics for dataset in DATASETS)
    for name, predictor in predictor_runs["predictors"].items():
        test = predictor.metrics["test"]
        assert runs.loc[name, "metrics.test_mape_pct"] == pytest.approx(test["mape"])
        assert runs.loc[name, "metrics.test_mae_ms"] == pytest.approx(test["mae"])
        coverage = runs.loc[name, "metrics.test_interval90_coverage_pct"]
        assert coverage == pytest.approx(test["interval_coverage"]) and 1 < coverage <= 100
    client = mlflow.MlflowClient()
    history = client.get_metric_history(runs.loc[DATASETS[0], "run_id"], "epoch_val_mape_pct")
    assert [point.step for point in history] == [1, 2, 3]
    assert client.get_metric_history(runs.loc[DATASETS[0], "run_id"], "epoch_val_mae_ms")


def test_a_predictor_run_covers_its_training_and_logs_its_seconds(predictor_runs):
    client = mlflow.MlflowClient()
    for name, predictor in predictor_runs["predictors"].items():
        run = client.get_run(predictor_runs["runs"].loc[name, "run_id"])
        training = predictor.metadata.training
        assert run.data.metrics["training_seconds"] == training["seconds"] > 0
        started = tracking.epoch_ms(training["started_at"])
        assert run.info.start_time == started
        assert run.info.start_time <= started + training["seconds"] * 1000 <= run.info.end_time


def test_a_predictor_run_has_its_dataset_rows_as_input(predictor_runs, model_input):
    client = mlflow.MlflowClient()
    for name in DATASETS:
        inputs = client.get_run(predictor_runs["runs"].loc[name, "run_id"]).inputs
        [logged] = inputs.dataset_inputs
        assert logged.dataset.name == name
        assert {(t.key, t.value) for t in logged.tags} == {("mlflow.data.context", "training")}
        rows = (model_input["hardware"] + "_" + model_input["space"] == name).sum()
        assert json.loads(logged.dataset.profile)["num_rows"] == rows == 150


def test_a_tuned_predictor_run_starts_when_the_search_began(predictor_runs):
    predictor = predictor_runs["predictors"][DATASETS[0]]
    tuned = predictor.replace(
        training={
            **predictor.metadata.training,
            "tuning": {"started_at": "2026-01-02T03:04:05.678+00:00", "seconds": 42.0},
        }
    )
    assert tracking.training_started(tuned) == tracking.epoch_ms("2026-01-02T03:04:05.678+00:00")
    assert tracking.predictor_metrics(tuned)["tuning_seconds"] == 42.0


# -- NAS -----------------------------------------------------------------------------------
NAS_RESULTS = pd.DataFrame(
    [
        {
            "hardware": hardware,
            "space": "ofa",
            "budget_ms": budget,
            "objective": "accuracy",
            "status": "ok" if budget > 10 else "no_subnet",
            "predicted_accuracy": 0.78 if budget > 10 else float("nan"),
            "predicted_latency_ms": budget * 0.9 if budget > 10 else float("nan"),
            "measured_latency_ms": budget * 0.95 if budget > 10 else float("nan"),
            "macs": 300e6 if budget > 10 else float("nan"),
            "params": 5e6 if budget > 10 else float("nan"),
            "message": None if budget > 10 else "no subnet under 10 ms",
        }
        for hardware in ("Tesla_P40_GPU", "RTX_2080_Ti_GPU")
        for budget in (10.0, 20.0)
    ]
)


def test_nas_results_are_a_table_and_one_run_per_predictor_and_budget():
    with mlflow.start_run(run_name="kedro run") as parent:
        hook = MlflowRecordsHook()
        hook.after_dataset_saved("nas_results", NAS_RESULTS, node=None)
        hook.after_pipeline_run()
    [nas_run] = children(parent.info.run_id)["run_id"]
    assert tracking.NAS_TABLE in artifact_paths(nas_run)
    table = json.loads(
        Path(mlflow.MlflowClient().download_artifacts(nas_run, "nas_results.json")).read_text()
    )
    assert len(table["data"]) == 4 and "predicted_latency_ms" in table["columns"]
    assert not mlflow.MlflowClient().get_run(nas_run).data.metrics
    results = children(nas_run).set_index("tags.mlflow.runName")
    assert sorted(results.index) == [
        "RTX_2080_Ti_GPU_ofa 10 ms",
        "RTX_2080_Ti_GPU_ofa 20 ms",
        "Tesla_P40_GPU_ofa 10 ms",
        "Tesla_P40_GPU_ofa 20 ms",
    ]
    found = results.loc["Tesla_P40_GPU_ofa 20 ms"]
    assert found["metrics.budget_ms"] == 20 and found["metrics.mmacs"] == 300
    assert (
        found["metrics.predicted_latency_ms"] == 18 and found["metrics.measured_latency_ms"] == 19
    )
    assert found["metrics.predicted_accuracy"] == 0.78
    assert found["tags.dataset"] == "Tesla_P40_GPU_ofa" and found["tags.nas.status"] == "ok"
    missed = results.loc["RTX_2080_Ti_GPU_ofa 10 ms"]
    assert missed["tags.nas.status"] == "no_subnet" and missed["metrics.budget_ms"] == 10
    assert pd.isna(missed["metrics.predicted_latency_ms"])
    assert missed["tags.message"] == "no subnet under 10 ms"


# -- sampling ------------------------------------------------------------------------------
def test_a_sampling_run_logs_its_figures_and_its_dataset_as_input(shared_dir, tmp_path: Path):
    seed = shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv"
    path = tmp_path / "Tesla_P40_GPU_ofa.csv"
    path.write_text("\n".join(seed.read_text().splitlines()[:41]) + "\n")
    frame = pd.read_csv(path)
    frame.attrs["source"] = str(path)
    probe = {"subnets": 4, "median_rel_diff": 0.012, "max_rel_diff": 0.031}
    sidecar = {
        "name": "Tesla_P40_GPU_ofa",
        "hardware": "Tesla_P40_GPU",
        "space": "ofa",
        "backend": "torch-cpu",
        "protocol": {"reference_ms": 5.0},
        "sessions": [
            {
                "measured": 30,
                "already_measured": 10,
                "seconds": 6.0,
                "subnets_per_minute": 300.0,
                "reference_now_ms": 5.1,
                "reference_drift": 0.02,
                "repeat_probe": {"within_run": probe, "across_sessions": probe},
            }
        ],
    }
    report = summarize_dataset(frame, sidecar)
    with mlflow.start_run(run_name="kedro run") as parent:
        hook = MlflowRecordsHook()
        hook.after_dataset_saved("sampling_report", report, node=None)
        hook.after_pipeline_run()
    [run_id] = children(parent.info.run_id)["run_id"]
    run = mlflow.MlflowClient().get_run(run_id)
    metrics = run.data.metrics
    assert (
        run.info.run_name == "sampling Tesla_P40_GPU_ofa"
        and run.data.tags["dataset"] == "Tesla_P40_GPU_ofa"
    )
    assert metrics["rows_measured"] == 30 and metrics["rows_in_dataset"] == 40
    assert metrics["throughput_subnets_per_min"] == 300
    assert metrics["repeat_probe_within_run_median_diff_pct"] == pytest.approx(1.2)
    assert metrics["repeat_probe_across_sessions_max_diff_pct"] == pytest.approx(3.1)
    assert metrics["reference_drift_pct"] == pytest.approx(2.0)
    assert "sampling_report.json" in artifact_paths(run_id)
    [logged] = run.inputs.dataset_inputs
    assert logged.dataset.name == "Tesla_P40_GPU_ofa"
    assert json.loads(logged.dataset.source)["uri"] == str(path)
    assert {(t.key, t.value) for t in logged.tags} == {("mlflow.data.context", "sampling")}
    assert json.loads(logged.dataset.profile)["num_rows"] == 40


# -- the experiment ------------------------------------------------------------------------
def test_the_experiment_is_filed_as_machine_learning(tmp_path: Path):
    config = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "mlflow.yml").read_text())
    tags = config["tracking"]["experiment"]["create_experiment_kwargs"]["tags"]
    assert tags == {tracking.EXPERIMENT_KIND_TAG: tracking.EXPERIMENT_KIND}
    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment(
        "made before the kind was set", artifact_location=str(tmp_path)
    )
    assert tracking.EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags
    with mlflow.start_run(experiment_id=experiment_id):
        hook = MlflowRecordsHook()
        hook.after_dataset_saved("nas_results", NAS_RESULTS.head(0), node=None)
        hook.after_pipeline_run()
    kind = client.get_experiment(experiment_id).tags[tracking.EXPERIMENT_KIND_TAG]
    assert kind == "custom_model_development"
