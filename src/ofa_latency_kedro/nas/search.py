"""`run_nas`: the most accurate subnet under each latency budget, for one or more devices.

``objective``: ``accuracy`` ranks subnets by OFA's accuracy predictor (required); ``macs``
maximises multiply-accumulates under the budget, a documented proxy for accuracy when the
predictor cannot be had; ``auto`` uses the accuracy predictor when one is given, else falls
back to ``macs`` with a warning. The objective used is a column of every result.
`SearchSettings` holds every setting of a search and its default (the nas pipeline's
``params:nas`` extends it); `run_nas` checks its arguments with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.nas.accuracy import AccuracyPredictor, AccuracyPredictorUnavailable
from ofa_latency_kedro.nas.evolution import EvolutionSettings, PredictionCache, evolve
from ofa_latency_kedro.predictors import LatencyPredictor
from ofa_latency_kedro.progress import progress_bar
from ofa_latency_kedro.search_space import ArchBatch, cost_table, get_space
from ofa_latency_kedro.search_space.network import block_cost_table
from ofa_latency_kedro.search_space.spaces import subspaces
from ofa_latency_kedro.settings_dict import from_settings

logger = logging.getLogger(__name__)

OBJECTIVES = ("accuracy", "macs", "auto")
#: How a winner must meet its budget: its interval's upper bound, or its prediction.
SAFETY_RULES = ("interval", "none")
#: What a search found for one budget (a repeated search replaces exactly these).
WINNER_COLUMNS = (
    "status",
    "extrapolated",
    "predicted_accuracy",
    "predicted_latency_ms",
    "predicted_upper_ms",
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
    "safety",
    *WINNER_COLUMNS[:-1],
    "search_seconds",
    "population_size",
    "generations",
    "seed",
    "message",
)


def parse_budgets(value: str | float | Sequence[float]) -> str | tuple[float, ...]:
    """``auto``, or the budgets as positive numbers of ms; a text other than ``auto`` is read
    as YAML (``"[12, 18]"``, as ``--params`` may pass it)."""
    if isinstance(value, str) and value.strip() != "auto":
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            pass
    if isinstance(value, str) and value.strip() == "auto":
        return "auto"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise ParameterError(
            "constraints_ms", f"must be a list of milliseconds or 'auto', got {value!r}"
        )
    budgets = tuple(float(v) for v in value)
    if not budgets or not all(math.isfinite(b) and b > 0 for b in budgets):
        raise ParameterError(
            "constraints_ms", f"must be positive numbers of ms, got {list(budgets)}"
        )
    return budgets


@dataclass(frozen=True)
class SearchSettings(EvolutionSettings):
    """A search under latency budgets: the `EvolutionSettings` and

    - ``constraints_ms``: the budgets in ms (a list, one number, or such YAML text), or
      ``auto``: the 25th, 50th and 75th percentile of each predictor's training latencies.
    - ``objective``: ``accuracy`` (OFA's accuracy predictor, required), ``macs`` (a proxy:
      the most MACs under the budget) or ``auto`` (accuracy when a predictor is given).
    - ``space``: None searches each predictor's own space; else ``ofa``, ``compofa`` or
      ``compofa-elastic``.
    - ``resolutions``: ``seed``, ``ofa`` or a list, kept within the resolutions each
      predictor was trained at.
    - ``safety``: ``interval`` keeps a winner whose ``safety_level`` interval's upper bound
      (`LatencyPredictor.predict_interval`) is within the budget, so a prediction that is
      off the way the predictor's validation errors go still meets it; ``none`` keeps a
      winner whose predicted latency is within the budget. A predictor without interval
      calibration is searched with ``none`` (and says so).
    """

    constraints_ms: str | float | tuple[float, ...] = "auto"
    objective: Literal[OBJECTIVES] = "auto"
    space: str | None = None
    resolutions: str | tuple[int, ...] = "seed"
    safety: Literal[SAFETY_RULES] = "interval"
    safety_level: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "constraints_ms", parse_budgets(self.constraints_ms))
        if self.objective not in OBJECTIVES:
            raise ParameterError(
                "objective", f"must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"
            )
        if self.safety not in SAFETY_RULES:
            raise ParameterError(
                "safety", f"must be one of {', '.join(SAFETY_RULES)}, got {self.safety!r}"
            )
        if not 0 < self.safety_level < 1:
            raise ParameterError(
                "safety_level", f"must be between 0 and 1, got {self.safety_level!r}"
            )
        checks = [("resolutions", {"name": "ofa", "resolutions": self.resolutions})]
        if self.space is not None:
            checks.insert(0, ("space", {"name": self.space}))
        for name, arguments in checks:
            try:
                get_space(**arguments)
            except ValueError as exc:
                raise ParameterError(name, f"is not usable: {exc}") from None

    def search_arguments(self) -> dict[str, Any]:
        """The keyword arguments of `run_nas` these settings stand for."""
        return {f.name: getattr(self, f.name) for f in fields(SearchSettings)}


def _safety_margin(
    predictor: LatencyPredictor, settings: SearchSettings, name: str
) -> tuple[str, float]:
    """The rule a search of ``predictor`` uses and the factor its predictions are multiplied
    by to meet the budget: the upper bound of its ``safety_level`` interval over the
    prediction (its conformal calibration's), or 1 (a predictor without a calibration, or with
    too few residuals for a bounded interval, is searched on its prediction, with a warning)."""
    if settings.safety == "none":
        return "none", 1.0
    conformal = predictor.metadata.conformal
    if conformal is None:
        logger.warning(
            "%s carries no interval calibration: searching with nas.safety none (winners "
            "predicted within the budget)",
            name,
        )
        return "none", 1.0
    upper = float(np.exp(conformal.bounds(settings.safety_level)[1]))
    if not np.isfinite(upper):
        logger.warning(
            "%s: its interval calibration (%d residuals, %s) is too small for a bounded %g "
            "interval: searching with nas.safety none (winners predicted within the budget); "
            "measure more subnets, or lower nas.safety_level",
            name,
            len(conformal.log_residuals),
            conformal.source,
            settings.safety_level,
        )
        return "none", 1.0
    return "interval", max(1.0, upper)


def resolve_objective(objective: str, accuracy_predictor: AccuracyPredictor | None) -> str:
    """The objective a search will use; ``auto`` without an accuracy predictor falls back to
    ``macs`` with a warning, ``accuracy`` without one is an error."""
    if objective not in OBJECTIVES:
        raise ParameterError(
            "objective", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
    if objective == "macs":
        return "macs"
    if accuracy_predictor is not None:
        return "accuracy"
    if objective == "accuracy":
        raise AccuracyPredictorUnavailable(
            "the objective is 'accuracy' but no accuracy predictor was given: load OFA's "
            "acc_predictor.pth (`load_accuracy_predictor`, or the catalog's accuracy_predictor "
            "entry), or search with objective macs"
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
        raise ParameterError(
            "constraints_ms",
            f"is auto, but {predictor!r} does not record its training latencies to choose "
            "budgets from; give them as a list of milliseconds",
        )
    return [round(float(spread[k]), 1) for k in ("p25", "median", "p75")]


def _search_space(predictor: LatencyPredictor, space: str | None, resolutions: str | Sequence[int]):
    name = space or predictor.space or "ofa"
    width = predictor.width_mult or 1.0
    searched = get_space(name, resolutions=resolutions, width_mult=width)
    if predictor.space is not None and searched.name not in subspaces(predictor.space):
        raise ParameterError(
            "space",
            f"is '{searched.name}', whose subnets lie outside the space '{predictor.space}' "
            f"{predictor!r} was trained on (search {', '.join(subspaces(predictor.space))})",
        )
    trained = predictor.resolutions
    if trained is not None:
        inside = [r for r in searched.resolutions if trained[0] <= r <= trained[-1]]
        if not inside:
            raise ParameterError(
                "resolutions",
                f"leaves nothing to search: {predictor!r} was trained at resolutions "
                f"{trained[0]}..{trained[-1]}, none of the search space's {searched.resolutions}",
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
    constraints_ms: Sequence[float] | float | str = SearchSettings.constraints_ms,
    *,
    space: str | None = SearchSettings.space,
    objective: str = SearchSettings.objective,
    resolutions: str | Sequence[int] = SearchSettings.resolutions,
    safety: str = SearchSettings.safety,
    safety_level: float = SearchSettings.safety_level,
    progress: bool | None = None,
    **evolution: Any,
) -> pd.DataFrame:
    """Regularized evolution per latency budget for every latency predictor.

    The arguments are the fields of `SearchSettings` (their defaults are its defaults);
    ``evolution`` takes the `EvolutionSettings` (``population_size``, ``generations``,
    ``parent_ratio``, ``mutation_ratio``, ``mutate_prob``, ``seed``, ...), and a `ParameterError`
    names an argument that is unknown or out of range.

    One row per (predictor, budget): the winner's predicted accuracy (NaN under the ``macs``
    objective), predicted latency, MACs, parameters, resolution and arch (the seed's dict
    string), or ``status: infeasible`` with a message when no subnet of the space can meet
    the budget under that predictor. ``frame.attrs["populations"]`` holds each search's
    final population (latency, fitness) for plots. ``progress``: a bar over generations
    with rate and ETA (None: only on a terminal).
    """
    settings = from_settings(
        SearchSettings,
        {
            "constraints_ms": constraints_ms,
            "space": space,
            "objective": objective,
            "resolutions": resolutions,
            "safety": safety,
            "safety_level": safety_level,
            **evolution,
        },
    )
    if isinstance(latency_predictors, LatencyPredictor):
        latency_predictors = {
            f"{latency_predictors.hardware}_{latency_predictors.space}": latency_predictors
        }
    used = resolve_objective(settings.objective, accuracy_predictor)
    fitness_fn = accuracy_predictor.predict if used == "accuracy" else macs_millions
    rows, populations = [], {}
    for name, predictor in latency_predictors.items():
        budgets = (
            auto_budgets(predictor)
            if settings.constraints_ms == "auto"
            else list(settings.constraints_ms)
        )
        searched = _search_space(predictor, settings.space, settings.resolutions)
        rule, margin = _safety_margin(predictor, settings, name)
        started = time.perf_counter()
        description = f"search {name} ({len(budgets)} budgets)"
        with progress_bar(settings.generations, description, progress, unit="generation") as bar:
            results = evolve(
                searched,
                budgets,
                PredictionCache(lambda batch, p=predictor, m=margin: p.predict_batch(batch) * m),
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
                "safety": rule,
                "extrapolated": False,
                "search_seconds": seconds / len(results),
                "population_size": settings.population_size,
                "generations": settings.generations,
                "seed": settings.seed,
                "message": result.message,
            }
            if result.status == "ok":
                arch = result.arch.to_archs()[0]
                costs = cost_table(result.arch)
                row.update(
                    predicted_accuracy=result.fitness if used == "accuracy" else np.nan,
                    predicted_latency_ms=result.latency_ms / margin,
                    predicted_upper_ms=result.latency_ms if rule == "interval" else np.nan,
                    macs=int(costs.macs[0]),
                    params=int(costs.params[0]),
                    resolution=arch.r,
                    arch=arch.to_seed_string(),
                    canonical_key=arch.canonical_key,
                )
                reason = predictor.extrapolation(
                    result.arch, np.array([result.latency_ms / margin])
                )[0]
                row["extrapolated"] = bool(reason)
                if reason:
                    row["message"] = f"extrapolated: {reason}"
                    logger.warning(
                        "%s, budget %g ms: the winner lies outside what the predictor was "
                        "trained on (%s); measure it before trusting its latency",
                        name,
                        result.budget_ms,
                        reason,
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
            settings.population_size,
            settings.generations,
        )
    frame = pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS))
    frame.attrs["populations"] = populations
    return frame
