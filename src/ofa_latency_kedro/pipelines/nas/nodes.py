"""NAS nodes: search under budgets, verify by measurement, export configs and plots."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import yaml
from matplotlib.figure import Figure

from ofa_latency_kedro.datasets import AccuracyPredictorSource, LatencyFile
from ofa_latency_kedro.nas import (
    AccuracyPredictor,
    AccuracyPredictorUnavailable,
    run_nas,
    verify_results,
)
from ofa_latency_kedro.nas.plots import pareto_plot
from ofa_latency_kedro.nas.verify import unverified, verification_summary
from ofa_latency_kedro.predictors import LatencyPredictor
from ofa_latency_kedro.search_space import Arch, net_config

logger = logging.getLogger(__name__)


def _budgets(value: Any) -> list[float] | str:
    """``nas.constraints_ms``: a list of ms, ``auto``, or their text from ``--params``."""
    if isinstance(value, str) and value.strip() != "auto":
        value = yaml.safe_load(value)
    if value == "auto":
        return "auto"
    if isinstance(value, (int, float)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(
            f"nas.constraints_ms must be a list of milliseconds or 'auto', got {value!r}"
        )
    return [float(v) for v in value]


def _search_settings(nas: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `run_nas` that ``params:nas`` sets, besides the budgets."""
    return {
        "space": nas.get("space"),
        "resolutions": nas.get("resolutions", "seed"),
        "population_size": int(nas.get("population_size", 100)),
        "generations": int(nas.get("generations", 500)),
        "parent_ratio": float(nas.get("parent_ratio", 0.25)),
        "mutation_ratio": float(nas.get("mutation_ratio", 0.5)),
        "mutate_prob": float(nas.get("mutate_prob", 0.1)),
        "seed": int(nas.get("seed", 0)),
        "progress": nas.get("progress", True),
    }


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


def search_subnets(
    latency_predictors: dict[str, Callable[[], LatencyPredictor]],
    accuracy_predictor: AccuracyPredictorSource,
    nas: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the evolutionary search for every chosen latency predictor and budget."""
    wanted = nas.get("predictors", "all")
    names = list(latency_predictors) if wanted in (None, "all") else list(wanted)
    missing = sorted(set(names) - set(latency_predictors))
    if missing or not names:
        raise ValueError(
            f"nas.predictors names {', '.join(missing) or 'nothing'}; data/06_models/predictors "
            f"holds {', '.join(sorted(latency_predictors)) or 'no predictor (run the training pipeline)'}"
        )
    objective = nas.get("objective", "auto")
    results = run_nas(
        {name: latency_predictors[name]() for name in names},
        _accuracy(accuracy_predictor, objective),
        _budgets(nas.get("constraints_ms", "auto")),
        objective=objective,
        **_search_settings(nas),
    )
    return results, results.attrs.pop("populations")


def verify_subnets(
    candidates: pd.DataFrame,
    latency_predictors: dict[str, Callable[[], LatencyPredictor]],
    accuracy_predictor: AccuracyPredictorSource,
    raw_latency: dict[str, LatencyFile],
    nas: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Measure each winner on its device when that device is this machine; search again,
    under a budget scaled by how far it missed, for a winner measuring more than 3% from its
    budget."""
    if not nas.get("verify", True):
        results = unverified(candidates, "not verified: nas.verify is false")
        return results, verification_summary(results)
    load_latency = functools.cache(lambda name: latency_predictors[name]())
    load_accuracy = functools.cache(lambda objective: _accuracy(accuracy_predictor, objective))

    def research(name: str, rows: pd.DataFrame, budgets: list[float]) -> pd.DataFrame:
        objective = str(rows["objective"].iloc[0])
        return run_nas(
            {name: load_latency(name)},
            load_accuracy(objective),
            budgets,
            objective=objective,
            **{**_search_settings(nas), "space": str(rows["space"].iloc[0])},
        )

    results = verify_results(
        candidates,
        {name: file.sidecar() for name, file in raw_latency.items()},
        research,
        rounds=int(nas.get("verify_rounds", 3)),
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
    return results, summary


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
