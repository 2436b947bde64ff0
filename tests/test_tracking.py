"""MLflow records of trained predictors (a real SQLite tracking store)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.predictors import LatencyPredictor, train_predictor
from ofa_latency_kedro.predictors.plots import loss_curves, parity_plot
from ofa_latency_kedro.tracking import log_predictor_run


def test_a_predictor_run_holds_params_metrics_curves_and_artifacts(
    shared_dir: Path, tmp_path: Path
):
    table = load_latency_csv(shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv").head(
        600
    )
    predictor = train_predictor(table, config={"epochs": 4, "hidden": 32, "depth": 1})
    trials = pd.DataFrame(
        [
            {
                "trial": "t0",
                "lr": 0.001,
                "status": "completed",
                "val_mae": 0.5,
                "val_mape": 1.0,
                "epochs": 4,
                "error": None,
            }
        ]
    )
    figures = {
        "p_parity.png": parity_plot([1.0, 2.0], [1.1, 1.9], "p"),
        "p_loss.png": loss_curves(predictor.metadata["history"], "p"),
    }
    with mlflow.start_run(run_name="parent") as parent:
        run_id = log_predictor_run("Tesla_P40_GPU_ofa", predictor, figures=figures, trials=trials)
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert run.data.tags["hardware"] == "Tesla_P40_GPU"
    assert run.data.params["config.hidden"] == "32"
    assert run.data.params["encoder"] == predictor.encoder_name
    assert run.data.metrics["test_mae"] == predictor.metrics["test"]["mae"]
    assert len(client.get_metric_history(run_id, "epoch_val_mae")) == 4
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {
        "Tesla_P40_GPU_ofa.pt",
        "Tesla_P40_GPU_ofa.json",
        "p_parity.png",
        "p_loss.png",
        "tuning_trials.csv",
    } <= artifacts
    downloaded = client.download_artifacts(run_id, "Tesla_P40_GPU_ofa.pt", str(tmp_path))
    assert LatencyPredictor.load(downloaded).metrics == predictor.metrics
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'", search_all_experiments=True
    )
    assert children["tags.mlflow.runName"].tolist() == ["t0"]
