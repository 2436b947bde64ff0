"""Project hooks: every parameter a run uses checked before any node runs; the MLflow
records of every ``kedro run``, written in one place from the outputs the catalog saves (so a
checkpoint is written once, by the catalog, and logged from that file), never from inside a
node; and the lock that lets concurrent ``kedro run``s create the local MLflow store one at a
time."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

from ofa_latency_kedro import tracking
from ofa_latency_kedro.atomic import ExclusiveLock

logger = logging.getLogger(__name__)


class ParametersCheckHook:
    """Before a pipeline runs, build the settings of every ``params:`` section it reads
    (`ofa_latency_kedro.pipelines.parameters.PARAMETER_SECTIONS`): a misspelt key or a bad
    value stops the run before any work (a typo in ``nas`` does not wait for sampling to
    measure for minutes), naming the parameter."""

    @hook_impl
    def before_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        from ofa_latency_kedro.pipelines.parameters import (  # noqa: PLC0415 - torch, lazily
            check_parameters,
        )

        sections = sorted(
            name.removeprefix("params:")
            for name in pipeline.inputs()
            if name.startswith("params:") and "." not in name
        )
        check_parameters({section: catalog.load(f"params:{section}") for section in sections})


class MlflowRecordsHook:
    """After each save of a dataset that has a record (`RECORDS`), write it to the nested
    MLflow runs of this ``kedro run``; end them with the pipeline. Does nothing when no
    MLflow run is active (kedro-mlflow disabled, or the nodes run without a session)."""

    def __init__(self) -> None:
        self._catalog: Any = None
        self._records: tracking.RunRecords | None = None

    @hook_impl
    def before_node_run(self, catalog: Any) -> None:
        self._catalog = catalog

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        record = RECORDS.get(dataset_name)
        if record is None or mlflow.active_run() is None:
            return
        if self._records is None:
            self._records = tracking.RunRecords()
        dataset = self._catalog.get(dataset_name) if self._catalog is not None else None
        record(self._records, data, dataset)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._end(failed=False)

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._end(failed=True)

    def _end(self, failed: bool) -> None:
        if self._records is not None:
            self._records.end(tracking.end_status(failed))
            self._records = None


class MlflowStoreLockHook:
    """Concurrent ``kedro run``s create a local SQLite MLflow store one at a time.

    kedro-mlflow creates the store (its tables, by migrations) and the experiment in its
    ``after_context_created`` hook; two runs doing so at once on a fresh project crash ("table
    experiments already exists", alembic's "Online migration expected to match one row"). This
    hook wraps every ``after_context_created`` implementation, kedro-mlflow's included whatever
    the order of registration (a pluggy wrapper runs around all plain implementations), in an
    exclusive lock on ``<store>.lock`` beside the SQLite file. Other stores (a tracking server)
    need no lock; nor does a run that starts inside an active MLflow run (kedro-mlflow then
    sets nothing up).
    """

    @hook_impl(wrapper=True)
    def after_context_created(self, context: Any) -> Generator[None, Any, Any]:
        store = _sqlite_store(context)
        if store is None:
            return (yield)
        lock = ExclusiveLock(store.with_name(store.name + ".lock"))
        holder = lock.try_acquire()
        if holder is not None:
            logger.info(
                "Waiting for %s to finish setting up the MLflow store %s", holder.describe(), store
            )
            lock.acquire()
        try:
            return (yield)
        finally:
            lock.release()


#: Where kedro-mlflow reads mlflow.yml from (its own patterns, added the same way).
_MLFLOW_CONFIG_PATTERNS = ["mlflow*", "mlflow*/**", "**/mlflow*"]
_SQLITE_PREFIX = "sqlite:///"


def _sqlite_store(context: Any) -> Path | None:
    """The SQLite file kedro-mlflow will set the store up in (SQLAlchemy resolves a relative
    ``sqlite:///`` path against the working folder), or None when it sets up no local store."""
    if mlflow.active_run() is not None:
        return None
    patterns = context.config_loader.config_patterns
    if "mlflow" not in patterns:
        patterns.update({"mlflow": list(_MLFLOW_CONFIG_PATTERNS)})
    try:
        server = (context.config_loader["mlflow"] or {}).get("server") or {}
    except MissingConfigException:
        server = {}
    uri = server.get("mlflow_tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not uri.startswith(_SQLITE_PREFIX):
        return None
    location = uri[len(_SQLITE_PREFIX) :].split("?", 1)[0]
    if not location or location == ":memory:":
        return None
    return Path(location).absolute()


def _checkpoints(dataset: Any, names: Mapping[str, Any]) -> dict[str, Path]:
    """Where the predictor folder ``dataset`` saved each of ``names``."""
    return {name: Path(dataset.filepath(name)) for name in names}


def _predictors(records: tracking.RunRecords, data: Any, dataset: Any) -> None:
    paths = _checkpoints(dataset, data)
    for name, predictor in data.items():
        tracking.record_predictor(records, name, predictor, paths[name], "training")


def _figures_by_predictor(records: tracking.RunRecords, data: Any, dataset: Any) -> None:
    """``<dataset>_<plot>.png`` figures into the run of their predictor, as
    ``plots/<plot>.png`` (the same name in every predictor's run, so runs compare)."""
    for key, figure in data.items():
        name, _, plot = key.rpartition("_")
        run_id = records.run_id(name, {"pipeline": "training"})
        records.figure(run_id, figure, f"plots/{plot}" if name else key)


def _figure_of(run: str, filename: str) -> Callable[[tracking.RunRecords, Any, Any], None]:
    def record(records: tracking.RunRecords, figure: Any, dataset: Any) -> None:
        records.figure(records.run_id(run, {"pipeline": run}), figure, filename)

    return record


def _generalized(records: tracking.RunRecords, data: Any, dataset: Any) -> None:
    tracking.record_generalized_models(records, data, _checkpoints(dataset, data))


def _adapted(records: tracking.RunRecords, data: Any, dataset: Any) -> None:
    run_id = records.run_id("finetuning", {"pipeline": "finetuning"})
    for path in _checkpoints(dataset, data).values():
        records.file(run_id, path)
    tracking.record_models(run_id, data, _checkpoints(dataset, data))


def _table_of(run: str, filename: str) -> Callable[[tracking.RunRecords, Any, Any], None]:
    def record(records: tracking.RunRecords, table: Any, dataset: Any) -> None:
        records.table(records.run_id(run, {"pipeline": run}), table, filename)

    return record


def _json_of(run: str, filename: str) -> Callable[[tracking.RunRecords, Any, Any], None]:
    def record(records: tracking.RunRecords, value: Any, dataset: Any) -> None:
        records.json(records.run_id(run, {"pipeline": run}), value, filename)

    return record


#: What each saved dataset adds to MLflow: ``record(records, data, catalog dataset)``.
RECORDS: dict[str, Callable[[tracking.RunRecords, Any, Any], None]] = {
    "latency_predictors": _predictors,
    "predictor_plots": _figures_by_predictor,
    "tuning_trials": lambda records, trials, dataset: tracking.record_trials(records, trials),
    "nas_results": lambda records, results, dataset: tracking.record_nas(records, results),
    "nas_pareto_plot": _figure_of("nas", "nas_pareto.png"),
    "nas_verification": _json_of("nas", "nas_verification.json"),
    "finetuning_curves": lambda records, curves, dataset: tracking.record_finetuning(
        records, curves
    ),
    "finetuning_plot": _figure_of("finetuning", "finetuning_curves.png"),
    "adapted_predictors": _adapted,
    "generalization_results": lambda records, results, dataset: tracking.record_generalization(
        records, results
    ),
    "generalization_plot": _figure_of("generalization", "generalization_leave_one_out.png"),
    "generalized_predictors": _generalized,
    "reference_subnets": _table_of("generalization", "reference_subnets.csv"),
}
