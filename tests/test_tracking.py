"""MLflow records (a real SQLite tracking store): written by the hook from what the catalog
saved, nested under the active run, and nothing when no run is active."""

from __future__ import annotations

import mlflow
import pandas as pd

from ofa_latency_kedro import tracking
from ofa_latency_kedro.hooks import MlflowRecordsHook

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


def test_trials_are_runs_nested_under_their_predictor_run():
    with mlflow.start_run(run_name="kedro run") as parent:
        records = tracking.RunRecords()
        tracking.record_trials(records, TRIALS)
        records.end()
    client = mlflow.MlflowClient()
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        search_all_experiments=True,
    )
    records_run_id = children["run_id"].iloc[0]
    predictor_run = client.get_run(records_run_id)
    assert predictor_run.info.run_name == "p40" and predictor_run.info.status == "FINISHED"
    assert "tuning_trials.csv" in {a.path for a in client.list_artifacts(records_run_id)}
    trials = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{records_run_id}'", search_all_experiments=True
    ).set_index("tags.mlflow.runName")
    assert sorted(trials.index) == ["t0", "t1"]
    assert trials.loc["t0", "metrics.val_mae"] == 0.5 and trials.loc["t0", "params.lr"] == "0.001"
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
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        search_all_experiments=True,
    )
    assert children.empty
