"""Training nodes: one predictor per (hardware, space) dataset, tuned by Ray Tune when
asked, every one recorded in MLflow."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ofa_latency_kedro.predictors import (
    LatencyPredictor,
    TrainingConfig,
    fit_prepared,
    prepare_data,
)
from ofa_latency_kedro.predictors.metrics import METRIC_NAMES
from ofa_latency_kedro.predictors.plots import loss_curves, parity_plot
from ofa_latency_kedro.predictors.tuning import TuneSettings, ray_session, tune_predictor
from ofa_latency_kedro.progress import progress_bar
from ofa_latency_kedro.tracking import log_predictor_run

logger = logging.getLogger(__name__)


def _datasets(
    table: pd.DataFrame, wanted: str | list[str], min_rows: int
) -> dict[str, pd.DataFrame]:
    groups = {
        f"{hardware}_{space}": rows
        for (hardware, space), rows in table.groupby(
            ["hardware", "space"], sort=False, dropna=False
        )
    }
    if wanted not in (None, "all"):
        missing = sorted(set(wanted) - set(groups))
        if missing:
            raise ValueError(
                f"training.datasets names {', '.join(missing)}; the model input has {', '.join(groups)}"
            )
        groups = {name: groups[name] for name in wanted}
    small = [name for name, rows in groups.items() if len(rows) < min_rows]
    for name in small:
        logger.warning(
            "Skipping dataset %s: %d subnets, fewer than training.min_rows=%d",
            name,
            len(groups[name]),
            min_rows,
        )
    return {name: rows for name, rows in groups.items() if name not in small}


def _show_epoch(bar: Any) -> Callable[[dict[str, float]], None]:
    """Advance ``bar`` by one epoch and show the validation MAPE."""

    def show(scores: dict[str, float]) -> None:
        bar.set_postfix_str(f"val MAPE {scores['val_mape']:.2f}%", refresh=False)
        bar.update()

    return show


def train_predictors(
    model_input: pd.DataFrame, training: dict[str, Any], ray: dict[str, Any]
) -> tuple[dict[str, LatencyPredictor], pd.DataFrame, dict[str, Figure], pd.DataFrame]:
    """Train (or tune) one predictor per dataset; returns predictors, a metrics table, plots
    and the Ray Tune trials."""
    config = TrainingConfig.from_dict(training.get("config"))
    tune = dict(training.get("tune") or {})
    tuning = bool(tune.get("enabled", False))
    datasets = _datasets(
        model_input, training.get("datasets", "all"), int(training.get("min_rows", 30))
    )
    if not datasets:
        raise ValueError("no dataset has enough subnets to train a predictor (training.min_rows)")
    predictors, rows, figures, trials = {}, [], {}, []
    settings = None
    if tuning:
        storage = Path(tune.pop("storage_path", None) or "data/06_models/ray_tune").resolve()
        settings = TuneSettings.from_dict(
            {**tune, "storage_path": str(storage), "address": ray.get("address")}
        )
    with ray_session(ray.get("address")) if tuning else nullcontext():
        for name, rows_of_dataset in datasets.items():
            data = prepare_data(rows_of_dataset, kind=config.model)
            trial_table = None
            if settings is not None:
                outcome = tune_predictor(
                    data, settings, config, tune.get("search_space"), experiment=name
                )
                predictor, trial_table = outcome.predictor, outcome.trials.assign(dataset=name)
                trials.append(trial_table)
            else:
                with progress_bar(
                    config.epochs, f"train {name}", training.get("progress", True), unit="epoch"
                ) as bar:
                    predictor = fit_prepared(data, config, on_epoch=_show_epoch(bar))
            test = predictor.metrics.get("test") or predictor.metrics["val"]
            plots = {
                f"{name}_parity.png": parity_plot(
                    data.test.latency if len(data.test) else data.val.latency,
                    predictor.predict_batch(data.test.batch if len(data.test) else data.val.batch),
                    f"{name}: {'test' if len(data.test) else 'validation'} subnets",
                    test,
                ),
                f"{name}_loss.png": loss_curves(predictor.metadata.get("history") or {}, name),
            }
            run_id = log_predictor_run(
                name, predictor, figures=plots, trials=trial_table, tags={"pipeline": "training"}
            )
            predictor.metadata["mlflow_run_id"] = run_id
            predictors[name] = predictor
            figures.update(plots)
            rows.append(_metrics_row(name, predictor, tuning))
            logger.info(
                "Trained %s (%s%s): test MAE %.4f ms, MAPE %.3f%%, Spearman %.5f, in %.1f s -> data/06_models/predictors/%s.pt",
                name,
                predictor.kind,
                ", tuned" if tuning else "",
                test["mae"],
                test["mape"],
                test["spearman"],
                predictor.metadata["training"]["seconds"],
                name,
            )
    for figure in figures.values():
        plt.close(figure)
    trial_frame = (
        pd.concat(trials, ignore_index=True)
        if trials
        else pd.DataFrame(columns=["dataset", "trial", "status"])
    )
    return predictors, pd.DataFrame(rows), figures, trial_frame


def _metrics_row(name: str, predictor: LatencyPredictor, tuned: bool) -> dict[str, Any]:
    training = predictor.metadata["training"]
    row = {
        "dataset": name,
        "hardware": predictor.hardware,
        "space": predictor.space,
        "kind": predictor.kind,
        "depth": predictor.metadata["architecture"].get("depth"),
        "tuned": tuned,
        "train_rows": training["rows"]["train"],
        "val_rows": training["rows"]["val"],
        "test_rows": training["rows"]["test"],
        "seconds": training["seconds"],
    }
    for split in ("val", "test"):
        for metric in METRIC_NAMES:
            row[f"{split}_{metric}"] = predictor.metrics.get(split, {}).get(metric)
    row["mlflow_run_id"] = predictor.metadata.get("mlflow_run_id")
    return row
