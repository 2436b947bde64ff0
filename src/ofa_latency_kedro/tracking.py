"""MLflow records of what the pipelines make, written from the catalog's saved outputs by
`ofa_latency_kedro.hooks.MlflowRecordsHook` (the one place the project writes to MLflow).

Each record goes into a run of its own, nested under the run kedro-mlflow opens for a
``kedro run``: one run per trained predictor, named by its dataset (parameters, metrics per
split, per-epoch curves, its checkpoint as the catalog saved it, metadata and plots; Ray Tune
trials as runs nested under it), one ``sampling <dataset>`` run, and one run each for ``nas``
(with a run per predictor and budget nested under it), ``finetuning`` and ``generalization``.

Runs of a kind compare, in MLflow's compare view as in its runs table:

- their artifacts have fixed names (`PREDICTOR_ARTIFACTS` in a predictor's run);
- a metric's name says its unit (`metric_name`: ``test_mae_ms``, ``test_mape_pct``,
  ``test_spearman``) and never holds a dataset name or a budget: the NAS results are one
  run per predictor and budget with the same metric names, and a table (`NAS_TABLE`);
- a predictor's run starts when its training (or its Ray Tune search) began, as its
  metadata records, and ends with the pipeline; it logs ``training_seconds``;
- a predictor's and a sampling run's input is the latency dataset they used (`mlflow.data`,
  its digest and schema, not the rows), so the runs table's Dataset column names it.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from ofa_latency_kedro.atomic import strict_json

if TYPE_CHECKING:
    from ofa_latency_kedro.predictors import LatencyPredictor

_BATCH = 900  # MLflow accepts up to 1000 metrics per batch call

#: The experiment tag that says what an experiment holds. MLflow 3.17's UI picks its view
#: from a workflow switch of its own (see docs/predictors.md), not from this tag; the tag
#: still files the experiment under "Machine learning" for the tools that read it.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

#: The artifacts of every predictor's run (a tuned one also has ``tuning_trials.csv``). The
#: plots sit at the top level: MLflow's compare view lists only the top-level files two runs
#: share, so there they appear side by side.
PREDICTOR_ARTIFACTS = (
    "checkpoint/predictor.pt",
    "metadata.json",
    "parity.png",
    "loss.png",
)
#: The NAS results as a table (MLflow's artifact view shows it as one) in the ``nas`` run.
NAS_TABLE = "nas_results.json"

#: How a predictor's figures (`ofa_latency_kedro.predictors.metrics`) are named in MLflow: the
#: unit last (milliseconds, percent; a rank correlation has none). The interval figures also
#: say their level (`metric_name`).
_WITH_UNITS = {
    "mae": "mae_ms",
    "rmse": "rmse_ms",
    "mape": "mape_pct",
    "within_5": "within_5pct_share_pct",
    "within_10": "within_10pct_share_pct",
    "n": "rows",
    "interval_coverage": "interval{level}_coverage_pct",
    "interval_halfwidth": "interval{level}_halfwidth_pct",
}


def with_unit(figure: str) -> str:
    """The MLflow name of a predictor's ``figure`` (`ofa_latency_kedro.predictors.metrics`):
    ``mape_pct``; a name it does not know (``loss``, ``spearman``) is kept."""
    from ofa_latency_kedro.predictors.metrics import INTERVAL_LEVEL  # noqa: PLC0415 - torch

    return _WITH_UNITS.get(figure, figure).format(level=round(INTERVAL_LEVEL * 100))


def metric_name(split: str, figure: str) -> str:
    """The MLflow name of a predictor's ``figure`` on ``split`` (train, val, test):
    ``test_mape_pct``, ``test_spearman``."""
    return f"{split}_{with_unit(figure)}"


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def epoch_ms(timestamp: str | None) -> int | None:
    """Milliseconds since the epoch of an ISO 8601 time with its offset (None: None)."""
    return None if timestamp is None else int(datetime.fromisoformat(timestamp).timestamp() * 1000)


class RunRecords:
    """The nested runs of one ``kedro run``, created on first use under the run active then
    (kedro-mlflow's), and ended together. ``inputs``: the datasets this ``kedro run`` loaded
    or saved that records read (`ofa_latency_kedro.hooks.INPUTS`), as ``(frame, location)``."""

    def __init__(self) -> None:
        self.client = mlflow.MlflowClient()
        self.runs: dict[str, str] = {}
        self.inputs: dict[str, tuple[pd.DataFrame, str]] = {}
        self._waiting: dict[str, list[tuple[Mapping[str, str], Callable[[str], None]]]] = {}

    def run_id(
        self,
        name: str,
        tags: Mapping[str, str],
        parent: str | None = None,
        run_name: str | None = None,
        start_time: int | None = None,
    ) -> str:
        """The run recorded as ``name`` (made now, called ``run_name`` or ``name``, with
        ``tags``, nested under ``parent`` or the active run, started at ``start_time`` (ms
        since the epoch; None: now), when it does not exist yet)."""
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
                start_time=start_time,
                run_name=run_name or name,
                tags={**tags, **({"mlflow.parentRunId": parent} if parent else {})},
            )
            self.runs[name] = run.info.run_id
            for _, action in self._waiting.pop(name, []):
                action(run.info.run_id)
        return self.runs[name]

    def when_made(self, name: str, tags: Mapping[str, str], action: Callable[[str], None]) -> None:
        """``action(run id)`` in run ``name``: now if it exists, else once the record that
        owns it makes it (a predictor's run starts when its training began, which only the
        predictor says, whatever order Kedro saves the outputs in), or at the end (made then
        with ``tags``)."""
        if name in self.runs:
            action(self.runs[name])
        else:
            self._waiting.setdefault(name, []).append((tags, action))

    def mark_experiment(self) -> None:
        """Tag the active run's experiment with `EXPERIMENT_KIND` when it has no kind (an
        experiment made before conf/base/mlflow.yml set it)."""
        active = mlflow.active_run()
        if active is None:
            return
        experiment = self.client.get_experiment(active.info.experiment_id)
        if EXPERIMENT_KIND_TAG not in experiment.tags:
            self.client.set_experiment_tag(
                experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
            )

    def end(self, status: str = "FINISHED") -> None:
        for name, waiting in list(self._waiting.items()):
            self.run_id(name, waiting[0][0])
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

    def file(self, run_id: str, path: Path, name: str | None = None) -> None:
        """A file as the catalog saved it (a checkpoint is not written a second time), as
        ``name`` (a path in the run's artifacts; None: its own file name)."""
        if name is None:
            self.client.log_artifact(run_id, str(path))
            return
        folder, _, filename = name.rpartition("/")
        with tempfile.TemporaryDirectory() as temporary:
            copy = Path(temporary) / filename
            shutil.copyfile(path, copy)
            self.client.log_artifact(run_id, str(copy), folder or None)

    def json(self, run_id: str, value: Any, name: str) -> None:
        self.client.log_text(run_id, strict_json(value, indent=2), name)

    def table_view(self, run_id: str, table: pd.DataFrame, name: str) -> None:
        """``table`` as a JSON table MLflow's UI shows as one (``mlflow.log_table``)."""
        with _quiet_mlflow_pandas():
            self.client.log_table(run_id, data=table.copy(), artifact_file=name)

    def dataset(
        self, run_id: str, frame: pd.DataFrame, name: str, location: str, context: str
    ) -> None:
        """``frame`` as an input of the run (``context``: what the run did with it): its name,
        where it is, its digest, schema and size; not its rows."""
        from mlflow.data.sources import LocalArtifactDatasetSource  # noqa: PLC0415 - registered

        with _quiet_mlflow_pandas():
            dataset = mlflow.data.from_pandas(
                frame, source=LocalArtifactDatasetSource(location), name=name
            )
            entity = Dataset(**dataset.to_dict())
        self.client.log_inputs(
            run_id, [DatasetInput(entity, [InputTag(MLFLOW_DATASET_CONTEXT, context)])]
        )


@contextmanager
def _quiet_mlflow_pandas() -> Iterator[None]:
    """Without the warnings MLflow's table and dataset code gives on pandas 3 frames (its
    digest, schema and dtype checks call APIs that pandas deprecates)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


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


def predictor_metrics(predictor: LatencyPredictor) -> dict[str, float]:
    """Its figures on every split (`metric_name`), and the seconds its training took (and
    its Ray Tune search, when tuned)."""
    training = predictor.metadata.training
    return {
        **{
            metric_name(split, figure): value
            for split, values in predictor.metrics.items()
            if isinstance(values, Mapping)
            for figure, value in values.items()
        },
        "training_seconds": training.get("seconds"),
        "tuning_seconds": (training.get("tuning") or {}).get("seconds"),
    }


def training_started(predictor: LatencyPredictor) -> int | None:
    """When its training began, ms since the epoch: its Ray Tune search's start when tuned
    (None for a checkpoint that does not say)."""
    training = predictor.metadata.training
    started = (training.get("tuning") or {}).get("started_at") or training.get("started_at")
    return epoch_ms(started)


def record_predictor(
    records: RunRecords, name: str, predictor: LatencyPredictor, checkpoint: Path, pipeline: str
) -> str:
    """One trained predictor's run, started when its training began: tags, parameters,
    metrics per split, per-epoch curves, the checkpoint file and its metadata under fixed
    names (`PREDICTOR_ARTIFACTS`), and its dataset as an input."""
    tags = {"pipeline": pipeline}
    run_id = records.run_id(name, tags, start_time=training_started(predictor))
    records.client.set_tag(run_id, "hardware", str(predictor.hardware))
    records.client.set_tag(run_id, "space", str(predictor.space))
    records.client.set_tag(run_id, "kind", predictor.kind)
    records.client.set_tag(run_id, "encoder", predictor.encoder_name)
    records.params(run_id, predictor_params(predictor))
    records.metrics(run_id, predictor_metrics(predictor))
    now = int(time.time() * 1000)
    records.metric_list(
        run_id,
        [
            Metric(
                key=f"epoch_{metric_name(*key.split('_', 1))}",
                value=float(value),
                timestamp=now,
                step=step,
            )
            for key, values in predictor.metadata.history.items()
            for step, value in enumerate(values, start=1)
            if finite(value)
        ],
    )
    records.file(run_id, checkpoint, "checkpoint/predictor.pt")
    records.json(run_id, predictor.metadata.to_dict(), "metadata.json")
    record_training_rows(records, run_id, name)
    record_models(run_id, {name: predictor}, {name: checkpoint}, register=True)
    return run_id


#: The columns of a latency dataset that say what it holds (the digest and schema of an input).
_DATASET_COLUMNS = ("child_arch", "latency", "hardware", "space", "width_mult", "split")


def record_training_rows(records: RunRecords, run_id: str, name: str) -> None:
    """The rows of dataset ``name`` in the model input this ``kedro run`` read, as the
    training input of the run (none when it read no model input)."""
    if "latency_model_input" not in records.inputs:
        return
    from ofa_latency_kedro.search_space.table import dataset_names  # noqa: PLC0415 - torch

    frame, location = records.inputs["latency_model_input"]
    rows = frame[dataset_names(frame) == name]
    if len(rows):
        columns = [c for c in _DATASET_COLUMNS if c in rows.columns]
        records.dataset(run_id, rows[columns], name, location, "training")


def record_trials(records: RunRecords, trials: pd.DataFrame) -> None:
    """Ray Tune trials: one run each, nested under its predictor's run, and the table."""
    for dataset, rows in trials.groupby("dataset", sort=False):
        records.when_made(
            str(dataset),
            {"pipeline": "training"},
            lambda parent, dataset=str(dataset), rows=rows: _trials(records, parent, dataset, rows),
        )


def _trials(records: RunRecords, parent: str, dataset: str, rows: pd.DataFrame) -> None:
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
                if k not in ("dataset", "trial", "status", "val_mae", "val_mape", "error", "epochs")
                and not (isinstance(v, float) and math.isnan(v))
            },
        )
        records.metrics(
            run_id,
            {
                metric_name("val", "mae"): row.get("val_mae"),
                metric_name("val", "mape"): row.get("val_mape"),
                "epochs": row.get("epochs"),
            },
        )
        if row.get("error"):
            records.client.set_tag(run_id, "error", str(row["error"])[:5000])


def record_predictor_plots(records: RunRecords, figures: Mapping[str, Figure]) -> None:
    """``<dataset>_<plot>.png`` figures into the run of their predictor, as
    ``<plot>.png`` (the same name in every predictor's run, at the top level, so the compare
    view shows them side by side)."""
    for key, figure in figures.items():
        name, _, plot = key.rpartition("_")
        records.when_made(
            name,
            {"pipeline": "training"},
            lambda run_id, figure=figure, plot=plot: records.figure(run_id, figure, plot),
        )


#: The metrics of a NAS result's run, from the results table's columns: (name, column, scale).
_NAS_METRICS = (
    ("budget_ms", "budget_ms", 1.0),
    ("predicted_latency_ms", "predicted_latency_ms", 1.0),
    ("predicted_upper_ms", "predicted_upper_ms", 1.0),
    ("measured_latency_ms", "measured_latency_ms", 1.0),
    ("predicted_accuracy", "predicted_accuracy", 1.0),
    ("mmacs", "macs", 1e-6),
    ("mparams", "params", 1e-6),
    ("resolution", "resolution", 1.0),
    ("search_seconds", "search_seconds", 1.0),
)


def record_nas(records: RunRecords, results: pd.DataFrame) -> None:
    """A search: the objective as a tag (so a MACs-proxy result is never read as an accuracy
    result), the results as a table (`NAS_TABLE`), and one run per predictor and budget
    nested under it, each with the same metric names (``predicted_latency_ms``,
    ``measured_latency_ms``, ``mmacs``, ``predicted_accuracy``, ``budget_ms``...): the runs
    table sorts them and the compare view plots accuracy against latency across budgets and
    devices."""
    objective = str(results["objective"].iloc[0]) if len(results) else "n/a"
    run_id = records.run_id("nas", {"pipeline": "nas"})
    records.client.set_tag(run_id, "nas.objective", objective)
    records.table_view(run_id, results, NAS_TABLE)
    for row in results.to_dict("records"):
        dataset = f"{row['hardware']}_{row['space']}"
        child = records.run_id(
            f"nas/{dataset}/{row['budget_ms']:g}",
            {
                "pipeline": "nas",
                "dataset": dataset,
                "hardware": str(row["hardware"]),
                "space": str(row["space"]),
                "nas.objective": str(row["objective"]),
                "nas.status": str(row["status"]),
            },
            parent=run_id,
            run_name=f"{dataset} {row['budget_ms']:g} ms",
        )
        records.metrics(
            child,
            {
                name: float(row[column]) * scale
                for name, column, scale in _NAS_METRICS
                if finite(row.get(column))
            },
        )
        if row.get("message"):
            records.client.set_tag(child, "message", str(row["message"])[:5000])


def record_finetuning(records: RunRecords, curves: pd.DataFrame) -> None:
    """The learning curves: per method and sampler, the mean test MAPE (percent), MAE (ms)
    and Spearman over the draws, stepped by K; and the table."""
    run_id = records.run_id("finetuning", {"pipeline": "finetuning"})
    figures = [name for name in ("mape", "mae", "spearman") if name in curves.columns]
    summary = curves.groupby(["method", "sampler", "k"])[figures].mean()
    now = int(time.time() * 1000)
    records.metric_list(
        run_id,
        [
            Metric(
                key=f"{method}_{sampler}_{with_unit(name)}",
                value=float(value),
                timestamp=now,
                step=int(k),
            )
            for (method, sampler, k), row in summary.iterrows()
            for name, value in row.items()
            if finite(value)
        ],
    )
    records.table(run_id, curves, "finetuning_curves.csv")


def record_adapted(
    records: RunRecords,
    predictors: Mapping[str, LatencyPredictor],
    checkpoints: Mapping[str, Path],
) -> None:
    """The adapted predictor in the ``finetuning`` run: its checkpoint and metadata under
    the fixed names of a predictor's run (by name under ``checkpoint/`` when several), how
    it was adapted and in how many seconds."""
    run_id = records.run_id("finetuning", {"pipeline": "finetuning"})
    only = len(predictors) == 1
    for name, predictor in predictors.items():
        path = "checkpoint/predictor.pt" if only else f"checkpoint/{name}.pt"
        records.file(run_id, checkpoints[name], path)
        adaptation = predictor.metadata.adaptation
        if only:
            records.json(run_id, predictor.metadata.to_dict(), "metadata.json")
            if adaptation is not None:
                records.params(
                    run_id,
                    {
                        "adapted.method": adaptation.method,
                        "adapted.k": adaptation.k,
                        "adapted.source": adaptation.source_hardware,
                    },
                )
                records.metrics(run_id, {"adaptation_seconds": adaptation.seconds})
    record_models(run_id, predictors, checkpoints)


def record_generalization(records: RunRecords, results: pd.DataFrame) -> None:
    """The leave-one-hardware-out table: per held-out dataset and descriptor, its MAPE
    (percent), MAE (ms) and rank correlations."""
    run_id = records.run_id("generalization", {"pipeline": "generalization"})
    figures = [name for name in ("mape", "mae", "spearman", "kendall") if name in results]
    records.metrics(
        run_id,
        {
            f"{row['held_out']}.{row['descriptor'].replace(':', '.')}.{with_unit(name)}": row[name]
            for row in results.to_dict("records")
            for name in figures
        },
    )
    records.table(run_id, results, "generalization_leave_one_out.csv")


def record_generalized_models(
    records: RunRecords, predictors: Mapping[str, LatencyPredictor], checkpoints: Mapping[str, Path]
) -> None:
    """The generalized models' checkpoints (``checkpoints/<name>.pt``), and the parameters
    and training seconds of the one on every device."""
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
        records.metrics(run_id, {"training_seconds": everything.metadata.training.get("seconds")})
    for name, path in checkpoints.items():
        records.file(run_id, path, f"checkpoints/{name}.pt")
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


def _percent(value: Any) -> float | None:
    return float(value) * 100 if finite(value) else None


def sampling_metrics(report: Mapping[str, Any]) -> dict[str, float | None]:
    """What a sampling run measured (`ofa_latency_kedro.measurement.campaign.summarize_dataset`):
    rows (measured now, already there, in the dataset), throughput in subnets per minute,
    the repeat probe's differences (percent) within the run and across sessions, the
    reference subnet's latency and drift (percent), the dataset's latency range (ms)."""
    session = report.get("last_session") or {}
    probe = session.get("repeat_probe") or {}
    latency = report.get("latency_ms") or {}
    values: dict[str, float | None] = {
        "rows_measured": session.get("measured"),
        "rows_already_measured": session.get("already_measured"),
        "rows_in_dataset": report.get("rows"),
        "measuring_seconds": session.get("seconds"),
        "throughput_subnets_per_min": session.get("subnets_per_minute"),
        "reference_latency_ms": session.get("reference_now_ms"),
        "reference_drift_pct": _percent(session.get("reference_drift")),
        **{f"latency_{k}_ms": latency.get(k) for k in ("min", "median", "max")},
    }
    for where in ("within_run", "across_sessions"):
        noise = probe.get(where) or {}
        values[f"repeat_probe_{where}_subnets"] = noise.get("subnets")
        values[f"repeat_probe_{where}_median_diff_pct"] = _percent(noise.get("median_rel_diff"))
        values[f"repeat_probe_{where}_max_diff_pct"] = _percent(noise.get("max_rel_diff"))
    return values


def record_sampling(records: RunRecords, report: Mapping[str, Any]) -> None:
    """A sampling run, ``sampling <dataset>``: its figures (`sampling_metrics`), the report,
    and the dataset it wrote as its input (context ``sampling``)."""
    location = report.get("file")
    name = Path(location).stem if location else f"{report.get('hardware')}_{report.get('space')}"
    run_id = records.run_id(
        "sampling",
        {
            "pipeline": "sampling",
            "dataset": name,
            **{k: str(report[k]) for k in ("hardware", "space", "backend") if report.get(k)},
        },
        run_name=f"sampling {name}",  # kedro-mlflow names the parent run "sampling"
    )
    records.metrics(run_id, sampling_metrics(report))
    records.json(run_id, report, "sampling_report.json")
    if location and Path(location).is_file():
        records.dataset(run_id, pd.read_csv(location), name, str(location), "sampling")


def end_status(failed: bool) -> str:
    return RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
