"""NAS nodes: load the chosen predictors, search under budgets, verify by measurement, export
configs and plots."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ofa_latency_kedro.datasets import AccuracyPredictorSource, LatencyFolder, PredictorFolder
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.measurement.log import LATENCY_COLUMNS, LatencyLog
from ofa_latency_kedro.measurement.session import utc_now
from ofa_latency_kedro.mlflow_models import with_registered_models
from ofa_latency_kedro.nas import (
    AccuracyPredictor,
    AccuracyPredictorUnavailable,
    run_nas,
    verify_results,
)
from ofa_latency_kedro.nas.plots import pareto_plot
from ofa_latency_kedro.nas.verify import unverified, verification_summary
from ofa_latency_kedro.pipelines.common import select_datasets
from ofa_latency_kedro.pipelines.nas.settings import NasSettings
from ofa_latency_kedro.predictors import LatencyPredictor, PredictorError
from ofa_latency_kedro.search_space import Arch, net_config

logger = logging.getLogger(__name__)


def _accuracy(source: AccuracyPredictorSource, objective: str) -> AccuracyPredictor | None:
    """OFA's accuracy predictor unless the objective is ``macs``; missing under ``auto``,
    None (`run_nas` warns and falls back); missing under ``accuracy``, an error."""
    if objective == "macs":
        return None
    try:
        return source.get()
    except AccuracyPredictorUnavailable as exc:
        if objective == "accuracy":
            raise
        logger.warning("%s", exc)
        return None


def _search(
    predictors: Mapping[str, LatencyPredictor],
    accuracy: AccuracyPredictor | None,
    settings: NasSettings,
    **changes: Any,
) -> pd.DataFrame:
    """`run_nas` with the settings of ``params:nas`` (and ``changes``); its errors about an
    argument name the parameter."""
    try:
        return run_nas(
            predictors,
            accuracy,
            progress=settings.progress,
            **{**settings.search_arguments(), **changes},
        )
    except ParameterError as exc:
        raise exc.within("nas") from None


def load_predictors(
    latency_predictors: PredictorFolder, nas: dict[str, Any]
) -> dict[str, LatencyPredictor]:
    """The latency predictors ``nas.predictors`` chooses, by dataset name, loaded once for
    the search and its verification (a registered model's checkpoint downloaded once, so
    both use the same version)."""
    settings = NasSettings.from_dict(nas)
    latency_predictors, wanted = with_registered_models(
        latency_predictors, settings.predictors, "nas.predictors"
    )
    names = select_datasets(
        latency_predictors, wanted, "nas.predictors", str(latency_predictors.path)
    )
    if not names:
        raise PredictorError(
            f"no latency predictor to search with: {latency_predictors.describe()} "
            "(run the training pipeline)"
        )
    return {name: latency_predictors[name]() for name in names}


def search_subnets(
    predictors: dict[str, LatencyPredictor],
    accuracy_predictor: AccuracyPredictorSource,
    nas: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the evolutionary search for every chosen latency predictor and budget."""
    settings = NasSettings.from_dict(nas)
    results = _search(predictors, _accuracy(accuracy_predictor, settings.objective), settings)
    return results, results.attrs.pop("populations")


def verify_subnets(
    candidates: pd.DataFrame,
    predictors: Mapping[str, LatencyPredictor],
    accuracy_predictor: AccuracyPredictorSource,
    raw_latency: LatencyFolder,
    nas: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """Measure each winner on its device when that device is this machine; search again,
    under a budget scaled by how far it missed, for a winner measuring more than 3% from its
    budget. Every winner measured is appended to its dataset (a ``verification`` session of
    its sidecar), so the next training learns from the subnets the search prefers."""
    settings = NasSettings.from_dict(nas)
    if not settings.verify:
        results = unverified(candidates, "not verified: nas.verify is false")
        return results, verification_summary(results), {}
    started = utc_now()
    measured: dict[str, list[dict[str, Any]]] = {}
    load_accuracy = functools.cache(lambda objective: _accuracy(accuracy_predictor, objective))

    def research(name: str, rows: pd.DataFrame, budgets: list[float]) -> pd.DataFrame:
        objective = str(rows["objective"].iloc[0])
        return _search(
            {name: predictors[name]},
            load_accuracy(objective),
            settings,
            constraints_ms=budgets,
            objective=objective,
            space=str(rows["space"].iloc[0]),
        )

    results = verify_results(
        candidates,
        {name: file.sidecar() for name, file in raw_latency.items()},
        research,
        rounds=settings.verify_rounds,
        on_measured=lambda name, rows: measured.setdefault(name, []).extend(rows),
    )
    summary = verification_summary(results)
    if summary["verified"]:
        logger.info(
            "Verification: %d of %d results measured; %d within %g%% of their budget (first "
            "round: %d); worst %+.1f%% over budget (first round: %+.1f%%); median prediction "
            "error %.1f%%; %d searched again under a tighter budget",
            summary["verified"],
            summary["rows"],
            summary["budgets_met"],
            summary["tolerance"] * 100,
            summary["first_round"]["budgets_met"],
            summary["worst_over_budget"] * 100,
            summary["first_round"]["worst_over_budget"] * 100,
            summary["median_abs_prediction_error"] * 100,
            summary["searched_again"],
        )
    else:
        logger.info(
            "Verification: nothing measured (%s)", "; ".join(summary["notes"]) or "no results"
        )
    return results, summary, _appended(raw_latency, measured, started)


def _appended(
    raw_latency: LatencyFolder, measured: dict[str, list[dict[str, Any]]], started: str
) -> dict[str, Any]:
    """The measured winners as rows to append to their datasets, and each dataset's sidecar
    with a ``verification`` session that says how many."""
    appended: dict[str, Any] = {}
    for name, rows in measured.items():
        log = LatencyLog(raw_latency[name].path)
        refused = log.refuses_rows()
        if refused is not None:
            logger.warning("Not appending %d measured winner(s): %s", len(rows), refused)
            continue
        fresh = log.new_records(rows)  # a subnet the dataset holds, or measured twice: once
        sidecar = raw_latency[name].sidecar() or {}
        session = {
            "kind": "verification",
            "started_at": started,
            "ended_at": utc_now(),
            "status": "complete",
            "measured": len(rows),
            "appended": len(fresh),
        }
        appended[f"{name}.csv"] = pd.DataFrame(fresh, columns=list(LATENCY_COLUMNS))
        appended[f"{name}.json"] = {**sidecar, "sessions": [*sidecar.get("sessions", []), session]}
        logger.info(
            "Appending %d of %d measured winner(s) to %s (the others it holds)",
            len(fresh),
            len(rows),
            name,
        )
    return appended


def export_subnets(
    results: pd.DataFrame, populations: dict[str, Any]
) -> tuple[dict[str, dict[str, Any]], Figure]:
    """One OFA net_config per result, the Pareto plot, and the MLflow record."""
    configs = {}
    for row in results[results["status"] == "ok"].itertuples():
        arch = Arch.parse(row.arch, width_mult=row.width_mult)
        configs[f"{row.hardware}_{row.space}_{row.budget_ms:g}ms"] = net_config(arch)
    figure = pareto_plot(results, populations)
    objective = results["objective"].iloc[0] if len(results) else "n/a"
    logger.info(
        "NAS results (objective: %s), %d net_config files:\n%s",
        objective,
        len(configs),
        results[
            [
                "hardware",
                "budget_ms",
                "status",
                "predicted_accuracy",
                "predicted_latency_ms",
                "measured_latency_ms",
                "macs",
            ]
        ].to_string(index=False),
    )
    return configs, figure
