"""Frontier sampling: the subnets to measure next are those a search under the latency budgets
would look at, so that the predictor learns the region where its errors decide the winners.

`frontier_plan` trains the default predictor (`train_predictor`) on the subnets a dataset
already holds (its initial random set), runs the evolutionary search of `evolve` at each
budget (``auto``: the rule of `auto_budgets`, as NAS chooses them), aiming its searches at
latencies spread over ``band`` around the budget, and draws the new subnets from the searched
populations whose predicted latency lies within that band: the fittest first (most MACs, the
proxy objective), one budget and search after another, distinct by canonical key and new to
the dataset. The same rows, settings and seed give the same plan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ofa_latency_kedro.errors import LatencyDataError, ParameterError
from ofa_latency_kedro.nas.evolution import EvolutionSettings, PredictionCache, evolve
from ofa_latency_kedro.nas.search import auto_budgets, macs_millions, parse_budgets
from ofa_latency_kedro.predictors.training import train_predictor
from ofa_latency_kedro.search_space import ArchBatch, SearchSpace, subnet_table
from ofa_latency_kedro.search_space.table import as_latency_table

logger = logging.getLogger(__name__)

#: The columns a frontier plan adds to `subnet_table`'s: the budget a new subnet was drawn
#: for and its predicted latency (empty for the subnets the dataset holds already).
FRONTIER_COLUMNS = ("budget_ms", "predicted_latency_ms")


@dataclass(frozen=True)
class FrontierSettings:
    """``sampling.frontier``: how ``strategy: frontier`` chooses the subnets it measures.

    - ``min_rows``: the dataset must already hold this many distinct subnets (its initial
      random set) to train the predictor the search uses.
    - ``constraints_ms``: the budgets in ms (a list, one number, or such YAML text), or
      ``auto``: the 25th, 50th and 75th percentile of that predictor's training latencies
      (the rule of NAS's ``auto``).
    - ``band``: a searched subnet is near a budget when its predicted latency lies between
      ``budget * (1 - band)`` and ``budget * (1 + band)``.
    - ``searches``: evolutionary searches per budget, aimed at latencies spread evenly over
      the band up to ``budget * (1 + band)`` (`search_offsets`; one search: the budget),
      seeded ``sampling.seed``, +1, ..., each of ``generations`` generations (NAS's other
      evolution defaults).
    """

    min_rows: int = 50
    constraints_ms: str | float | tuple[float, ...] = "auto"
    band: float = 0.1
    searches: int = 3
    generations: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "constraints_ms", parse_budgets(self.constraints_ms))
        if self.min_rows < 10:
            raise ParameterError(
                "min_rows",
                f"must be at least 10 (the predictor needs validation rows), got {self.min_rows!r}",
            )
        if not 0 < self.band < 1:
            raise ParameterError("band", f"must be between 0 and 1, got {self.band!r}")
        for name, minimum in (("searches", 1), ("generations", 0)):
            if getattr(self, name) < minimum:
                raise ParameterError(
                    name, f"must be at least {minimum}, got {getattr(self, name)!r}"
                )


def frontier_plan(
    measured: pd.DataFrame | None,
    num_subnets: int,
    space: SearchSpace,
    *,
    settings: FrontierSettings | None = None,
    seed: int = 0,
    source: str = "the dataset",
) -> pd.DataFrame:
    """The plan of a frontier run: the distinct subnets of ``measured`` (rows of one dataset,
    named ``source`` in messages), then ``num_subnets`` minus their number new subnets of
    ``space`` near the budgets (none when the dataset holds enough). `subnet_table`'s
    columns and `FRONTIER_COLUMNS`; ``attrs["budgets_ms"]`` holds the budgets searched.

    A dataset holding fewer than ``settings.min_rows`` subnets is a `LatencyDataError`."""
    settings = settings or FrontierSettings()
    held = _distinct(measured)
    if len(held) < settings.min_rows:
        raise LatencyDataError(
            f"{source} holds {len(held)} distinct subnets, fewer than "
            f"sampling.frontier.min_rows ({settings.min_rows}): sampling.strategy frontier "
            "searches with a predictor trained on them. Measure an initial random set first "
            f"(sampling.strategy random, sampling.num_subnets at least {settings.min_rows})"
        )
    plan = _with_frontier_columns(subnet_table(ArchBatch.from_frame(held)))
    count = num_subnets - len(held)
    if count <= 0:
        logger.info(
            "Frontier plan: %s holds %d subnets, sampling.num_subnets is %d: nothing to add",
            source,
            len(held),
            num_subnets,
        )
        plan.attrs["budgets_ms"] = []
        return plan
    predictor = train_predictor(held, seed=seed)
    budgets = (
        auto_budgets(predictor)
        if settings.constraints_ms == "auto"
        else list(settings.constraints_ms)
    )
    candidates = _searched(predictor.predict_batch, space, budgets, settings, seed)
    new = _drawn(candidates, set(held["canonical_key"]), count, space, seed)
    plan = pd.concat([plan, new], ignore_index=True)
    plan.attrs["budgets_ms"] = budgets
    drawn = new["budget_ms"].value_counts()
    logger.info(
        "Frontier plan: a predictor trained on the %d subnets of %s (test MAPE %.2f%%) searched "
        "budgets %s ms (%d searches of %d generations); %d new subnets, %s",
        len(held),
        source,
        predictor.metrics.get("test", {}).get("mape", float("nan")),
        budgets,
        settings.searches,
        settings.generations,
        len(new),
        ", ".join(f"{drawn.get(b, 0)} near {b:g} ms" for b in budgets)
        + (
            f", {new['budget_ms'].isna().sum()} drawn at random"
            if new["budget_ms"].isna().any()
            else ""
        ),
    )
    return plan


def _distinct(measured: pd.DataFrame | None) -> pd.DataFrame:
    if measured is None or len(measured) == 0:
        return pd.DataFrame(columns=["child_arch", "canonical_key", "latency"])
    table = as_latency_table(measured)
    return table.drop_duplicates("canonical_key").reset_index(drop=True)


def _with_frontier_columns(table: pd.DataFrame) -> pd.DataFrame:
    for column in FRONTIER_COLUMNS:
        table[column] = np.nan
    return table


@dataclass(frozen=True)
class _Candidates:
    """The distinct subnets one search ended with for one budget, best first: those within
    the band by fitness, then the others by distance to the budget."""

    budget_ms: float
    batch: ArchBatch
    keys: list[str]
    latency_ms: np.ndarray


def search_offsets(settings: FrontierSettings) -> np.ndarray:
    """Where each search aims, relative to the budget: evenly over the band, the lowest one
    step above its lower edge, since a search's population lies below where it aims (one
    search: the budget)."""
    if settings.searches == 1:
        return np.zeros(1)
    return np.linspace(-settings.band, settings.band, settings.searches + 1)[1:]


def _searched(
    predict, space: SearchSpace, budgets: list[float], settings: FrontierSettings, seed: int
) -> list[_Candidates]:
    """One list of candidates per (search, budget), search after search."""
    latency = PredictionCache(predict)
    fitness = PredictionCache(macs_millions)
    candidates = []
    for search, offset in enumerate(search_offsets(settings)):
        results = evolve(
            space,
            [b * (1 + offset) for b in budgets],
            latency,
            fitness,
            settings=EvolutionSettings(generations=settings.generations, seed=seed + search),
        )
        for budget, result in zip(budgets, results, strict=True):
            if result.status != "ok":
                logger.warning("Frontier search: %s", result.message)
                continue
            keys = result.population.canonical_keys()
            first = np.sort(np.unique(keys, return_index=True)[1])
            predicted = result.population_latency[first]
            macs = result.population_fitness[first]
            distance = np.abs(predicted / budget - 1)
            near = distance <= settings.band
            order = np.lexsort((np.where(near, -macs, distance), ~near))
            candidates.append(
                _Candidates(
                    budget,
                    result.population[first[order]],
                    [keys[i] for i in first[order]],
                    predicted[order],
                )
            )
    return candidates


def _drawn(
    candidates: list[_Candidates], held: set[str], count: int, space: SearchSpace, seed: int
) -> pd.DataFrame:
    """``count`` new subnets: one from each list of candidates in turn (so spread over the
    budgets and the band), each list's best first; when the searches found too few, the rest
    drawn at random from ``space``."""
    taken: set[str] = set(held)
    rows: list[tuple[ArchBatch, float, float]] = []
    positions = [0] * len(candidates)
    while len(rows) < count and any(
        p < len(c.keys) for p, c in zip(positions, candidates, strict=True)
    ):
        for b, found in enumerate(candidates):
            while positions[b] < len(found.keys) and found.keys[positions[b]] in taken:
                positions[b] += 1
            if positions[b] < len(found.keys) and len(rows) < count:
                i = positions[b]
                taken.add(found.keys[i])
                rows.append((found.batch[[i]], found.budget_ms, float(found.latency_ms[i])))
                positions[b] += 1
    parts = []
    if rows:
        table = subnet_table(ArchBatch.concatenate([r[0] for r in rows]))
        table["budget_ms"] = [r[1] for r in rows]
        table["predicted_latency_ms"] = [r[2] for r in rows]
        parts.append(table)
    missing = count - len(rows)
    if missing:
        logger.warning(
            "Frontier plan: the searches found %d new subnets near the budgets, %d are asked "
            "for; the other %d are drawn at random",
            len(rows),
            count,
            missing,
        )
        pool = space.sample_distinct_batch(min(space.count(), len(taken) + missing), seed=seed)
        fresh = [i for i, key in enumerate(pool.canonical_keys()) if key not in taken]
        parts.append(_with_frontier_columns(subnet_table(pool[fresh[:missing]])))
    return pd.concat(parts, ignore_index=True)
