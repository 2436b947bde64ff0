"""MLflow records of trained predictors: one run per predictor (nested under the Kedro run
that kedro-mlflow opens), with parameters, metrics per split, loss curves, the checkpoint,
its metadata and plots as artifacts, and the Ray Tune trials as nested runs."""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Metric

from ofa_latency_kedro.predictors import LatencyPredictor

_BATCH = 900  # MLflow accepts up to 1000 metrics per batch call


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _log_outputs(
    tables: dict[str, pd.DataFrame],
    figures: dict[str, Figure],
    predictors: dict[str, LatencyPredictor] | None = None,
) -> None:
    """Log tables (``<name>.csv``), figures (``<name>.png``) and predictor checkpoints
    (``<name>.pt``) as artifacts of the active run."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        for name, table in tables.items():
            table.to_csv(path / f"{name}.csv", index=False)
        for name, figure in figures.items():
            figure.savefig(path / f"{name}.png", dpi=110)
        for name, predictor in (predictors or {}).items():
            predictor.save(path / f"{name}.pt")
        mlflow.log_artifacts(folder)


def predictor_params(predictor: LatencyPredictor) -> dict[str, Any]:
    training = predictor.metadata.get("training", {})
    rows = training.get("rows") or {}
    return {
        **{f"config.{k}": v for k, v in (training.get("config") or {}).items()},
        "kind": predictor.kind,
        "encoder": predictor.encoder_name,
        "split": training.get("split"),
        **{f"rows_{k}": v for k, v in rows.items()},
        "hardware": predictor.hardware,
        "space": predictor.space,
        "width_mult": predictor.metadata.get("width_mult"),
    }


def log_predictor_run(
    name: str,
    predictor: LatencyPredictor,
    *,
    figures: dict[str, Figure] | None = None,
    trials: pd.DataFrame | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Record one trained predictor; returns the MLflow run id."""
    with mlflow.start_run(run_name=name, nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags(
            {
                "hardware": str(predictor.hardware),
                "space": str(predictor.space),
                "kind": predictor.kind,
                "encoder": predictor.encoder_name,
                **(tags or {}),
            }
        )
        mlflow.log_params({k: v for k, v in predictor_params(predictor).items() if v is not None})
        mlflow.log_metrics(
            {
                f"{split}_{metric}": value
                for split, values in predictor.metrics.items()
                for metric, value in values.items()
                if _finite(value)
            }
        )
        _log_history(run.info.run_id, predictor.metadata.get("history") or {})
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder)
            predictor.save(path / f"{name}.pt")
            (path / f"{name}.json").write_text(json.dumps(predictor.metadata, indent=2))
            for figure_name, figure in (figures or {}).items():
                figure.savefig(path / figure_name, dpi=110)
            if trials is not None and len(trials):
                trials.to_csv(path / "tuning_trials.csv", index=False)
            mlflow.log_artifacts(folder)
        if trials is not None:
            for row in trials.to_dict("records"):
                _log_trial(row)
        return run.info.run_id


def _log_history(run_id: str, history: dict[str, list[float]]) -> None:
    now = int(time.time() * 1000)
    metrics = [
        Metric(key=f"epoch_{key}", value=float(value), timestamp=now, step=step)
        for key, values in history.items()
        for step, value in enumerate(values, start=1)
        if _finite(value)
    ]
    client = mlflow.MlflowClient()
    for start in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + _BATCH])


def _log_trial(row: dict[str, Any]) -> None:
    with mlflow.start_run(run_name=str(row.get("trial")), nested=True):
        mlflow.set_tag("ray_tune_status", str(row.get("status")))
        mlflow.log_params(
            {
                k: v
                for k, v in row.items()
                if k not in ("trial", "status", "val_mae", "val_mape", "error", "epochs")
                and v is not None
            }
        )
        mlflow.log_metrics(
            {k: float(row[k]) for k in ("val_mae", "val_mape", "epochs") if _finite(row.get(k))}
        )
        if row.get("error"):
            mlflow.set_tag("error", str(row["error"])[:5000])


def log_nas_run(results: pd.DataFrame, figure: Figure) -> str:
    """Record a search: the objective as a tag (so a MACs-proxy result is never read as an
    accuracy result), per-budget metrics, the results table and the Pareto plot."""
    objective = str(results["objective"].iloc[0]) if len(results) else "n/a"
    with mlflow.start_run(run_name="nas", nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags({"pipeline": "nas", "nas.objective": objective})
        for row in results[results["status"] == "ok"].itertuples():
            prefix = f"{row.hardware}_{row.budget_ms:g}ms"
            values = {
                f"{prefix}_predicted_latency_ms": row.predicted_latency_ms,
                f"{prefix}_predicted_accuracy": row.predicted_accuracy,
                f"{prefix}_mmacs": row.macs / 1e6,
                f"{prefix}_measured_latency_ms": getattr(row, "measured_latency_ms", float("nan")),
            }
            mlflow.log_metrics({k: float(v) for k, v in values.items() if _finite(v)})
        _log_outputs({"nas_results": results}, {"nas_pareto": figure})
        return run.info.run_id


def log_finetuning_run(
    curves: pd.DataFrame, figure: Figure, adapted: dict[str, LatencyPredictor]
) -> str:
    """Record the learning curves (one metric per method and sampler, stepped by K), the
    table, the plot and the adapted predictors."""
    with mlflow.start_run(run_name="finetuning", nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags({"pipeline": "finetuning"})
        summary = curves.groupby(["method", "sampler", "k"])[["mape", "spearman"]].mean()
        now = int(time.time() * 1000)
        metrics = [
            Metric(key=f"{method}_{sampler}_{name}", value=float(value), timestamp=now, step=int(k))
            for (method, sampler, k), row in summary.iterrows()
            for name, value in row.items()
            if _finite(value)
        ]
        client = mlflow.MlflowClient()
        for start in range(0, len(metrics), _BATCH):
            client.log_batch(run.info.run_id, metrics=metrics[start : start + _BATCH])
        _log_outputs({"finetuning_curves": curves}, {"finetuning_curves": figure}, adapted)
        return run.info.run_id


def log_generalization_run(
    results: pd.DataFrame, figure: Figure, predictors: dict[str, LatencyPredictor]
) -> str:
    """Record the leave-one-hardware-out table (one metric per held-out dataset and
    descriptor), its plot and the generalized predictors."""
    with mlflow.start_run(run_name="generalization", nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags({"pipeline": "generalization"})
        everything = predictors.get("all_devices")
        if everything is not None:
            mlflow.log_params(
                {
                    "devices": ",".join(everything.devices),
                    "encoder": everything.encoder_name,
                    **{
                        f"architecture.{k}": v
                        for k, v in everything.metadata["architecture"].items()
                    },
                    "epochs": everything.metadata["training"]["epochs"],
                }
            )
        metrics = {
            f"{row.held_out}.{row.descriptor.replace(':', '.')}.{name}": float(getattr(row, name))
            for row in results.itertuples()
            for name in ("spearman", "mape")
            if _finite(float(getattr(row, name)))
        }
        mlflow.log_metrics(metrics)
        stem = "generalization_leave_one_out"
        _log_outputs({stem: results}, {stem: figure}, predictors)
        return run.info.run_id
