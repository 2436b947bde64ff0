"""Training nodes, one per stage: prepare each (hardware, space) dataset, fit (or tune with Ray
Tune) its predictor, evaluate, plot. (The MLflow records of what they make are written by
`ofa_latency_kedro.hooks`.)"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ofa_latency_kedro.encoding.loading import LatencyDataError
from ofa_latency_kedro.pipelines.common import RaySettings, select_datasets
from ofa_latency_kedro.pipelines.training.settings import TrainingSettings
from ofa_latency_kedro.predictors import (
    LatencyPredictor,
    PreparedData,
    fit_prepared,
    prepare_data,
)
from ofa_latency_kedro.predictors.metrics import INTERVAL_METRIC_NAMES, METRIC_NAMES
from ofa_latency_kedro.predictors.plots import loss_curves, parity_plot
from ofa_latency_kedro.predictors.tuning import ray_session, tune_predictor
from ofa_latency_kedro.progress import progress_bar
from ofa_latency_kedro.search_space.table import dataset_names

logger = logging.getLogger(__name__)


def _datasets(model_input: pd.DataFrame, settings: TrainingSettings) -> dict[str, pd.DataFrame]:
    groups = dict(tuple(model_input.groupby(dataset_names(model_input), sort=False)))
    names = select_datasets(groups, settings.datasets, "training.datasets", "the model input")
    chosen = {}
    for name in names:
        if len(groups[name]) < settings.min_rows:
            logger.warning(
                "Skipping dataset %s: %d subnets, fewer than training.min_rows=%d",
                name,
                len(groups[name]),
                settings.min_rows,
            )
        else:
            chosen[name] = groups[name]
    if not chosen:
        raise LatencyDataError(
            "no dataset has enough subnets to train a predictor (training.min_rows)"
        )
    return chosen


def _show_epoch(bar: Any) -> Callable[[dict[str, float]], None]:
    """Advance ``bar`` by one epoch and show the validation MAPE."""

    def show(scores: dict[str, float]) -> None:
        bar.set_postfix_str(f"val MAPE {scores['val_mape']:.2f}%", refresh=False)
        bar.update()

    return show


def prepare_datasets(
    model_input: pd.DataFrame, training: dict[str, Any]
) -> dict[str, PreparedData]:
    """Each chosen dataset with enough subnets, its splits encoded for the predictor kind."""
    settings = TrainingSettings.from_dict(training)
    return {
        name: prepare_data(rows, kind=settings.config.kind)
        for name, rows in _datasets(model_input, settings).items()
    }


def fit_predictors(
    prepared: dict[str, PreparedData], training: dict[str, Any], ray: dict[str, Any]
) -> tuple[dict[str, LatencyPredictor], pd.DataFrame]:
    """One predictor per dataset, trained on the defaults or tuned by Ray Tune
    (``training.tune``); and the Ray Tune trials (an empty table without tuning)."""
    settings = TrainingSettings.from_dict(training)
    address = RaySettings.from_dict(ray).address
    predictors, trials = {}, []
    with ray_session(address) if settings.tune.enabled else nullcontext():
        for name, data in prepared.items():
            if settings.tune.enabled:
                outcome = tune_predictor(
                    data, settings.tune, settings.config, address=address, experiment=name
                )
                predictors[name] = outcome.predictor
                trials.append(outcome.trials.assign(dataset=name))
            else:
                description = f"train {name}"
                with progress_bar(
                    settings.config.epochs, description, settings.progress, unit="epoch"
                ) as bar:
                    predictors[name] = fit_prepared(
                        data, settings.config, on_epoch=_show_epoch(bar)
                    )
    trial_frame = (
        pd.concat(trials, ignore_index=True)
        if trials
        else pd.DataFrame(columns=["dataset", "trial", "status"])
    )
    return predictors, trial_frame


def evaluate_predictors(
    predictors: dict[str, LatencyPredictor], training: dict[str, Any]
) -> tuple[dict[str, LatencyPredictor], pd.DataFrame]:
    """The predictors, to be saved, and their scores on the held-out subnets as a table
    (test, or validation where a dataset has no test subnets)."""
    tuned = TrainingSettings.from_dict(training).tune.enabled
    for name, predictor in predictors.items():
        test = _held_out_scores(predictor)
        logger.info(
            "Trained %s (%s%s): test MAE %.4f ms, MAPE %.3f%%, Spearman %.5f, in %.1f s",
            name,
            predictor.kind,
            ", tuned" if tuned else "",
            test["mae"],
            test["mape"],
            test["spearman"],
            predictor.metadata.training["seconds"],
        )
    rows = [_metrics_row(name, predictor, tuned) for name, predictor in predictors.items()]
    return predictors, pd.DataFrame(rows)


def plot_predictors(
    prepared: dict[str, PreparedData], predictors: dict[str, LatencyPredictor]
) -> dict[str, Figure]:
    """A parity plot (test subnets, or validation ones where there are none) and the loss
    curves of each predictor, as ``<dataset>_parity.png`` and ``<dataset>_loss.png``."""
    figures = {}
    for name, predictor in predictors.items():
        data = prepared[name]
        shown = data.test if len(data.test) else data.val
        figures[f"{name}_parity.png"] = parity_plot(
            shown.latency,
            predictor.predict_batch(shown.batch),
            f"{name}: {'test' if len(data.test) else 'validation'} subnets",
            _held_out_scores(predictor),
        )
        figures[f"{name}_loss.png"] = loss_curves(predictor.metadata.history, name)
    return figures


def _held_out_scores(predictor: LatencyPredictor) -> dict[str, Any]:
    """Its scores on the held-out subnets: test, or validation where its dataset has no test
    subnets (what the log line and the parity plot report)."""
    return predictor.metrics.get("test") or predictor.metrics["val"]


def _metrics_row(name: str, predictor: LatencyPredictor, tuned: bool) -> dict[str, Any]:
    training = predictor.metadata.training
    row = {
        "dataset": name,
        "hardware": predictor.hardware,
        "space": predictor.space,
        "kind": predictor.kind,
        "depth": predictor.metadata.architecture.get("depth"),
        "tuned": tuned,
        "train_rows": training["rows"]["train"],
        "val_rows": training["rows"]["val"],
        "test_rows": training["rows"]["test"],
        "seconds": training["seconds"],
    }
    for split in ("val", "test"):
        for metric in METRIC_NAMES:
            row[f"{split}_{metric}"] = predictor.metrics.get(split, {}).get(metric)
    for metric in INTERVAL_METRIC_NAMES:  # of the 90% intervals, on the test rows
        row[f"test_{metric}"] = predictor.metrics.get("test", {}).get(metric)
    return row
