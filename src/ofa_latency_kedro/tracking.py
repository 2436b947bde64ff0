"""MLflow records of what the pipelines make, written from the catalog's saved outputs by
`ofa_latency_kedro.hooks.MlflowRecordsHook` (the one place the project writes to MLflow).

Each record goes into a run of its own, nested under the run kedro-mlflow opens for a
``kedro run``: one run per trained predictor (parameters, metrics per split, per-epoch
curves, its checkpoint as the catalog saved it, metadata and plots; Ray Tune trials as runs
nested under it) and one run each for ``nas``, ``finetuning`` and ``generalization``.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Metric, RunStatus

from ofa_latency_kedro.atomic import strict_json

if TYPE_CHECKING:
    from ofa_latency_kedro.predictors import LatencyPredictor

_BATCH = 900  # MLflow accepts up to 1000 metrics per batch call


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class RunRecords:
    """The nested runs of one ``kedro run``, created on first use under the run active then
    (kedro-mlflow's), and ended together."""

    def __init__(self) -> None:
        self.client = mlflow.MlflowClient()
        self.runs: dict[str, str] = {}

    def run_id(
        self,
        name: str,
        tags: Mapping[str, str],
        parent: str | None = None,
        run_name: str | None = None,
    ) -> str:
        """The run recorded as ``name`` (made now, called ``run_name`` or ``name``, with
        ``tags``, nested under ``parent`` or the active run, when it does not exist yet)."""
        if name not in self.runs:
            active = mlflow.active_run()
            parent = parent or (active.info.run_id if active else None)
            experiment = (
                self.client.get_run(parent).info.experiment_id
                if parent
                else mlflow.get_experiment_by_name("Default").experiment_id
            )
            run = self.client.create_run(
                experiment,
                run_name=run_name or name,
                tags={**tags, **({"mlflow.parentRunId": parent} if parent else {})},
            )
            self.runs[name] = run.info.run_id
        return self.runs[name]

    def end(self, status: str = "FINISHED") -> None:
        for run_id in self.runs.values():
            self.client.set_terminated(run_id, status=status)
        self.runs.clear()

    # -- what a run receives ---------------------------------------------------------------
    def metrics(self, run_id: str, values: Mapping[str, Any], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [
            Metric(key=key, value=float(value), timestamp=now, step=step)
            for key, value in values.items()
            if finite(value)
        ]
        self.metric_list(run_id, batch)

    def metric_list(self, run_id: str, metrics: list[Metric]) -> None:
        for start in range(0, len(metrics), _BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + _BATCH])

    def params(self, run_id: str, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if value is not None:
                self.client.log_param(run_id, key, str(value)[:6000])

    def table(self, run_id: str, table: pd.DataFrame, name: str) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            table.to_csv(path, index=False)
            self.client.log_artifact(run_id, str(path))

    def figure(self, run_id: str, figure: Figure, name: str) -> None:
        self.client.log_figure(run_id, figure, name)

    def file(self, run_id: str, path: Path) -> None:
        """A file as the catalog saved it (a checkpoint is not written a second time)."""
        self.client.log_artifact(run_id, str(path))

    def json(self, run_id: str, value: Any, name: str) -> None:
        self.client.log_text(run_id, strict_json(value, indent=2), name)


def predictor_params(predictor: LatencyPredictor) -> dict[str, Any]:
    training = predictor.metadata.training
    return {
        **{f"config.{k}": v for k, v in (training.get("config") or {}).items()},
        "kind": predictor.kind,
        "encoder": predictor.encoder_name,
        "split": training.get("split"),
        **{f"rows_{k}": v for k, v in (training.get("rows") or {}).items()},
        "hardware": predictor.hardware,
        "space": predictor.space,
        "width_mult": predictor.width_mult,
    }


def record_predictor(
    records: RunRecords, name: str, predictor: LatencyPredictor, checkpoint: Path, pipeline: str
) -> str:
    """One trained predictor's run: tags, parameters, metrics per split, per-epoch curves,
    the checkpoint file and its metadata."""
    run_id = records.run_id(name, {"pipeline": pipeline})
    records.client.set_tag(run_id, "hardware", str(predictor.hardware))
    records.client.set_tag(run_id, "space", str(predictor.space))
    records.client.set_tag(run_id, "kind", predictor.kind)
    records.client.set_tag(run_id, "encoder", predictor.encoder_name)
    records.params(run_id, predictor_params(predictor))
    records.metrics(
        run_id,
        {
            f"{split}_{metric}": value
            for split, values in predictor.metrics.items()
            if isinstance(values, Mapping)
            for metric, value in values.items()
        },
    )
    now = int(time.time() * 1000)
    records.metric_list(
        run_id,
        [
            Metric(key=f"epoch_{key}", value=float(value), timestamp=now, step=step)
            for key, values in predictor.metadata.history.items()
            for step, value in enumerate(values, start=1)
            if finite(value)
        ],
    )
    records.file(run_id, checkpoint)
    records.json(run_id, predictor.metadata.to_dict(), f"{name}.json")
    record_models(run_id, {name: predictor}, {name: checkpoint}, register=True)
    return run_id


def record_trials(records: RunRecords, trials: pd.DataFrame) -> None:
    """Ray Tune trials: one run each, nested under its predictor's run, and the table."""
    for dataset, rows in trials.groupby("dataset", sort=False):
        parent = records.run_id(str(dataset), {"pipeline": "training"})
        records.table(parent, rows, "tuning_trials.csv")
        for row in rows.to_dict("records"):
            run_id = records.run_id(
                f"{dataset}/{row.get('trial')}",
                {"ray_tune_status": str(row.get("status"))},
                parent=parent,
                run_name=str(row.get("trial")),
            )
            records.params(
                run_id,
                {
                    k: v
                    for k, v in row.items()
                    if k
                    not in ("dataset", "trial", "status", "val_mae", "val_mape", "error", "epochs")
                    and not (isinstance(v, float) and math.isnan(v))
                },
            )
            records.metrics(run_id, {k: row.get(k) for k in ("val_mae", "val_mape", "epochs")})
            if row.get("error"):
                records.client.set_tag(run_id, "error", str(row["error"])[:5000])


def record_nas(records: RunRecords, results: pd.DataFrame) -> None:
    """A search: the objective as a tag (so a MACs-proxy result is never read as an accuracy
    result), per-budget metrics and the results table."""
    objective = str(results["objective"].iloc[0]) if len(results) else "n/a"
    run_id = records.run_id("nas", {"pipeline": "nas"})
    records.client.set_tag(run_id, "nas.objective", objective)
    for row in results[results["status"] == "ok"].itertuples():
        prefix = f"{row.hardware}_{row.budget_ms:g}ms"
        records.metrics(
            run_id,
            {
                f"{prefix}_predicted_latency_ms": row.predicted_latency_ms,
                f"{prefix}_predicted_accuracy": row.predicted_accuracy,
                f"{prefix}_mmacs": row.macs / 1e6,
                f"{prefix}_measured_latency_ms": getattr(row, "measured_latency_ms", float("nan")),
            },
        )
    records.table(run_id, results, "nas_results.csv")


def record_finetuning(records: RunRecords, curves: pd.DataFrame) -> None:
    """The learning curves: one metric per method and sampler, stepped by K, and the table."""
    run_id = records.run_id("finetuning", {"pipeline": "finetuning"})
    summary = curves.groupby(["method", "sampler", "k"])[["mape", "spearman"]].mean()
    now = int(time.time() * 1000)
    records.metric_list(
        run_id,
        [
            Metric(key=f"{method}_{sampler}_{name}", value=float(value), timestamp=now, step=int(k))
            for (method, sampler, k), row in summary.iterrows()
            for name, value in row.items()
            if finite(value)
        ],
    )
    records.table(run_id, curves, "finetuning_curves.csv")


def record_generalization(records: RunRecords, results: pd.DataFrame) -> None:
    """The leave-one-hardware-out table: one metric per held-out dataset and descriptor."""
    run_id = records.run_id("generalization", {"pipeline": "generalization"})
    records.metrics(
        run_id,
        {
            f"{row.held_out}.{row.descriptor.replace(':', '.')}.{name}": float(getattr(row, name))
            for row in results.itertuples()
            for name in ("spearman", "mape")
        },
    )
    records.table(run_id, results, "generalization_leave_one_out.csv")


def record_generalized_models(
    records: RunRecords, predictors: Mapping[str, LatencyPredictor], checkpoints: Mapping[str, Path]
) -> None:
    """The generalized models' checkpoints, and the parameters of the one on every device."""
    run_id = records.run_id("generalization", {"pipeline": "generalization"})
    everything = predictors.get("all_devices")
    if everything is not None:
        records.params(
            run_id,
            {
                "devices": ",".join(everything.devices),
                "encoder": everything.encoder_name,
                **{f"architecture.{k}": v for k, v in everything.metadata.architecture.items()},
                **{f"config.{k}": v for k, v in everything.metadata.training["config"].items()},
            },
        )
    for path in checkpoints.values():
        records.file(run_id, path)
    record_models(run_id, predictors, checkpoints)


def record_models(
    run_id: str,
    predictors: Mapping[str, LatencyPredictor],
    checkpoints: Mapping[str, Path],
    register: bool = False,
) -> None:
    """Each predictor as an MLflow Model of the run (`mlflow_models.log_predictor`), and with
    ``register`` a version of the registered model of its name, ``champion`` moved by the
    rule of `mlflow_models.champion_version`."""
    from ofa_latency_kedro import mlflow_models  # noqa: PLC0415 - torch, only when logging

    for name, predictor in predictors.items():
        model = mlflow_models.log_predictor(run_id, name, predictor, checkpoints[name])
        if register:
            mlflow_models.register_predictor(run_id, name, predictor, model)


def end_status(failed: bool) -> str:
    return RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
