"""`run_nas`: the most accurate subnet under each latency budget, for one or more devices.

``objective``: ``accuracy`` ranks subnets by OFA's accuracy predictor (required); ``macs``
maximises multiply-accumulates under the budget, a documented proxy for accuracy when the
predictor cannot be had; ``auto`` uses the accuracy predictor when one is given, else falls
back to ``macs`` with a warning. The objective used is a column of every result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ofa_latency_kedro.nas.accuracy import AccuracyPredictor, AccuracyPredictorUnavailable
from ofa_latency_kedro.nas.evolution import EvolutionSettings, PredictionCache, evolve
from ofa_latency_kedro.predictors import LatencyPredictor
from ofa_latency_kedro.progress import progress_bar
from ofa_latency_kedro.search_space import ArchBatch, cost_table, get_space
from ofa_latency_kedro.search_space.network import block_cost_table

logger = logging.getLogger(__name__)

OBJECTIVES = ("accuracy", "macs", "auto")
#: What a search found for one budget (a repeated search replaces exactly these).
WINNER_COLUMNS = (
    "status",
    "predicted_accuracy",
    "predicted_latency_ms",
    "macs",
    "params",
    "resolution",
    "arch",
    "canonical_key",
    "message",
)
RESULT_COLUMNS = (
    "hardware",
    "space",
    "width_mult",
    "budget_ms",
    "objective",
    *WINNER_COLUMNS[:-1],
    "search_seconds",
    "population_size",
    "generations",
    "seed",
    "message",
)


def resolve_objective(objective: str, accuracy_predictor: AccuracyPredictor | None) -> str:
    """The objective a search will use; ``auto`` without an accuracy predictor falls back to
    ``macs`` with a warning, ``accuracy`` without one is an error."""
    if objective not in OBJECTIVES:
        raise ValueError(f"nas.objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if objective == "macs":
        return "macs"
    if accuracy_predictor is not None:
        return "accuracy"
    if objective == "accuracy":
        raise AccuracyPredictorUnavailable(
            "nas.objective is 'accuracy' but no accuracy predictor was given; put OFA's "
            "acc_predictor.pth at data/06_models/acc_predictor.pth, or use nas.objective: macs"
        )
    logger.warning(
        "No accuracy predictor: searching with objective 'macs' (maximise MACs under the "
        "budget), a proxy for accuracy. Results are labelled objective=macs."
    )
    return "macs"


def macs_millions(batch: ArchBatch) -> np.ndarray:
    return block_cost_table(batch).macs_exact / 1e6


def auto_budgets(predictor: LatencyPredictor) -> list[float]:
    """Budgets at the 25th, 50th and 75th percentile of the predictor's training latencies."""
    spread = predictor.metadata.latency_ms or {}
    if not all(k in spread for k in ("p25", "median", "p75")):
        raise ValueError(
            f"{predictor!r} does not record its training latencies, so nas.constraints_ms: auto "
            "cannot choose budgets; give them as a list of milliseconds"
        )
    return [round(float(spread[k]), 1) for k in ("p25", "median", "p75")]


def _search_space(predictor: LatencyPredictor, space: str | None, resolutions: str | Sequence[int]):
    name = space or predictor.space or "ofa"
    width = predictor.width_mult or 1.0
    searched = get_space(name, resolutions=resolutions, width_mult=width)
    trained = predictor.resolutions
    if trained is not None:
        inside = [r for r in searched.resolutions if trained[0] <= r <= trained[-1]]
        if not inside:
            raise ValueError(
                f"{predictor!r} was trained at resolutions {trained[0]}..{trained[-1]}, none of "
                f"the search space's {searched.resolutions}"
            )
        if len(inside) < len(searched.resolutions):
            logger.warning(
                "Searching resolutions %s only: the predictor for %s was trained at %d..%d",
                inside,
                predictor.hardware,
                trained[0],
                trained[-1],
            )
            searched = get_space(name, resolutions=inside, width_mult=width)
    return searched


def run_nas(
    latency_predictors: LatencyPredictor | Mapping[str, LatencyPredictor],
    accuracy_predictor: AccuracyPredictor | None = None,
    constraints_ms: Sequence[float] | str = "auto",
    *,
    space: str | None = None,
    objective: str = "auto",
    resolutions: str | Sequence[int] = "seed",
    population_size: int = 100,
    generations: int = 500,
    parent_ratio: float = 0.25,
    mutation_ratio: float = 0.5,
    mutate_prob: float = 0.1,
    seed: int = 0,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Regularized evolution per latency budget for every latency predictor.

    One row per (predictor, budget): the winner's predicted accuracy (NaN under the ``macs``
    objective), predicted latency, MACs, parameters, resolution and arch (the seed's dict
    string), or ``status: infeasible`` with a message when no subnet of the space can meet
    the budget under that predictor. ``frame.attrs["populations"]`` holds each search's
    final population (latency, fitness) for plots. ``progress``: a bar over generations
    with rate and ETA (None: only on a terminal).
    """
    if isinstance(latency_predictors, LatencyPredictor):
        latency_predictors = {
            f"{latency_predictors.hardware}_{latency_predictors.space}": latency_predictors
        }
    used = resolve_objective(objective, accuracy_predictor)
    settings = EvolutionSettings(
        population_size=population_size,
        generations=generations,
        parent_ratio=parent_ratio,
        mutation_ratio=mutation_ratio,
        mutate_prob=mutate_prob,
        seed=seed,
    )
    fitness_fn = accuracy_predictor.predict if used == "accuracy" else macs_millions
    rows, populations = [], {}
    for name, predictor in latency_predictors.items():
        budgets = (
            auto_budgets(predictor)
            if constraints_ms == "auto"
            else [float(b) for b in constraints_ms]
        )
        if not budgets or any(not np.isfinite(b) or b <= 0 for b in budgets):
            raise ValueError(f"latency budgets must be positive numbers of ms, got {budgets}")
        searched = _search_space(predictor, space, resolutions)
        started = time.perf_counter()
        description = f"search {name} ({len(budgets)} budgets)"
        with progress_bar(generations, description, progress, unit="generation") as bar:
            results = evolve(
                searched,
                budgets,
                PredictionCache(predictor.predict_batch),
                PredictionCache(fitness_fn),
                settings=settings,
                on_generation=lambda _generation: bar.update(),
            )
        seconds = time.perf_counter() - started
        for result in results:
            row: dict[str, Any] = {
                "hardware": predictor.hardware or name,
                "space": searched.name,
                "width_mult": searched.width_mult,
                "budget_ms": result.budget_ms,
                "objective": used,
                "status": result.status,
                "search_seconds": seconds / len(results),
                "population_size": population_size,
                "generations": generations,
                "seed": seed,
                "message": result.message,
            }
            if result.status == "ok":
                arch = result.arch.to_archs()[0]
                costs = cost_table(result.arch)
                row.update(
                    predicted_accuracy=result.fitness if used == "accuracy" else np.nan,
                    predicted_latency_ms=result.latency_ms,
                    macs=int(costs.macs[0]),
                    params=int(costs.params[0]),
                    resolution=arch.r,
                    arch=arch.to_seed_string(),
                    canonical_key=arch.canonical_key,
                )
                populations[f"{name}@{result.budget_ms:g}ms"] = {
                    "latency_ms": result.population_latency.tolist(),
                    "fitness": result.population_fitness.tolist(),
                }
                logger.info(
                    "%s, budget %g ms: %s %.4f at %.2f ms predicted (%s, r=%d, %.0f MMACs)",
                    name,
                    result.budget_ms,
                    "accuracy" if used == "accuracy" else "MMACs",
                    result.fitness,
                    result.latency_ms,
                    searched.name,
                    arch.r,
                    costs.macs[0] / 1e6,
                )
            else:
                logger.warning("%s: %s", name, result.message)
            rows.append(row)
        logger.info(
            "Searched %d budget(s) for %s in %.2f s (%.2f s per budget; population %d, %d generations)",
            len(budgets),
            name,
            seconds,
            seconds / len(budgets),
            population_size,
            generations,
        )
    frame = pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS))
    frame.attrs["populations"] = populations
    return frame
