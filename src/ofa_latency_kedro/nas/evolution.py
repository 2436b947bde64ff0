"""Regularized evolution under latency budgets (OFA's ``EvolutionFinder``), batched.

Every generation of every budget is scored in one call of each predictor: the population of
all budgets of one latency predictor is a single `ArchBatch`. Scores are cached by canonical
subnet (resolution and width included, inactive blocks ignored), so a subnet is predicted
once per search however often evolution meets it again. Children that miss the budget are
redrawn a bounded number of times, and a budget that no subnet of the space can meet is
reported as infeasible instead of searched forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.search_space import ArchBatch, SearchSpace
from ofa_latency_kedro.search_space.constants import (
    COMPOFA_EXPAND_FOR_DEPTH,
    DEPTH_CHOICES,
    EXPAND_CHOICES,
    KERNEL_CHOICES,
    MAX_DEPTH,
    NUM_BLOCKS,
    NUM_STAGES,
)
from ofa_latency_kedro.search_space.spaces import as_generator

logger = logging.getLogger(__name__)

Scorer = Callable[[ArchBatch], np.ndarray]


@dataclass(frozen=True)
class EvolutionSettings:
    """Regularized evolution, with OFA's defaults: ``population_size`` subnets per budget
    evolved for ``generations``; each generation keeps the best ``parent_ratio`` of them as
    parents and breeds the rest, ``mutation_ratio`` by mutation (each gene redrawn with
    probability ``mutate_prob``) and the others by crossover; ``seed`` makes it repeatable.

    Each child slot draws ``oversample`` candidates at once (their latencies predicted in the
    same call); with ``prefer_headroom`` the feasible candidate using most of the budget is
    kept, since a subnet that leaves latency unused rarely wins. A slot still empty after
    ``max_rounds`` draws takes a subnet already within the budget (a parent, or the space's
    smallest subnet). Parents are distinct subnets. Together these make
    the search as good as OFA's on average and steadier (`benchmarks/nas_benchmark.py`)."""

    population_size: int = 100
    generations: int = 500
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    mutate_prob: float = 0.1
    oversample: int = 2
    prefer_headroom: bool = True
    max_rounds: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (
            ("population_size", 2),
            ("generations", 0),
            ("oversample", 1),
            ("max_rounds", 1),
        ):
            if getattr(self, name) < minimum:
                raise ParameterError(
                    name, f"must be at least {minimum}, got {getattr(self, name)!r}"
                )
        if not 0 < self.parent_ratio <= 1:
            raise ParameterError("parent_ratio", f"must be in (0, 1], got {self.parent_ratio!r}")
        for name in ("mutation_ratio", "mutate_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ParameterError(name, f"must be in [0, 1], got {getattr(self, name)!r}")

    @property
    def parents(self) -> int:
        return max(1, round(self.parent_ratio * self.population_size))

    @property
    def mutations(self) -> int:
        return round(self.mutation_ratio * self.population_size)


class PredictionCache:
    """One predictor's values, computed once per canonical subnet (`ArchBatch.packed_keys`)."""

    def __init__(self, predict: Scorer) -> None:
        self.predict = predict
        self.values: dict[int, float] = {}
        self.predicted = 0

    def __call__(self, batch: ArchBatch, keys: Sequence[int] | None = None) -> np.ndarray:
        keys = batch.packed_keys() if keys is None else keys
        found = list(map(self.values.get, keys))
        missing = [i for i, value in enumerate(found) if value is None]
        if missing:
            first: dict[int, int] = {}
            for i in missing:
                first.setdefault(keys[i], i)
            rows = np.fromiter(first.values(), dtype=np.int64, count=len(first))
            self.values.update(zip(first, self.predict(batch[rows]).tolist(), strict=True))
            self.predicted += len(rows)
            for i in missing:
                found[i] = self.values[keys[i]]
        return np.array(found, dtype=np.float64)


def smallest_subnet(space: SearchSpace) -> ArchBatch:
    """The space's cheapest subnet: minimum depth, kernel, expand ratio and resolution."""
    kernels = (
        np.full(NUM_BLOCKS, min(KERNEL_CHOICES))
        if space.fixed_kernels is None
        else np.repeat(space.fixed_kernels, MAX_DEPTH)
    )
    depth = min(DEPTH_CHOICES)
    expand = COMPOFA_EXPAND_FOR_DEPTH[depth] if space.coupled_expand else min(EXPAND_CHOICES)
    return ArchBatch(
        ks=kernels[None, :].astype(np.int64),
        e=np.full((1, NUM_BLOCKS), expand, dtype=np.int64),
        d=np.full((1, NUM_STAGES), depth, dtype=np.int64),
        r=np.array([min(space.resolutions)], dtype=np.int64),
        width_mult=np.array([space.width_mult]),
    )


@dataclass
class BudgetResult:
    budget_ms: float
    status: str  # "ok" or "infeasible"
    message: str = ""
    arch: ArchBatch | None = None
    latency_ms: float = float("nan")
    fitness: float = float("nan")
    history: list[float] = field(default_factory=list)
    population: ArchBatch | None = None
    population_latency: np.ndarray = field(default_factory=lambda: np.empty(0))
    population_fitness: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass
class _Members:
    """Subnets with their cache keys (`ArchBatch.packed_keys`, an object array) and scores."""

    batch: ArchBatch
    keys: np.ndarray
    latency: np.ndarray
    fitness: np.ndarray

    def __getitem__(self, rows: np.ndarray | slice) -> _Members:
        return _Members(self.batch[rows], self.keys[rows], self.latency[rows], self.fitness[rows])

    def __len__(self) -> int:
        return len(self.latency)

    @staticmethod
    def join(parts: list[_Members]) -> _Members:
        return _Members(
            ArchBatch.concatenate([p.batch for p in parts]),
            np.concatenate([p.keys for p in parts]),
            np.concatenate([p.latency for p in parts]),
            np.concatenate([p.fitness for p in parts]),
        )

    def best_first(self, count: int) -> _Members:
        """The ``count`` fittest distinct subnets (repeats of one subnet count once)."""
        order = np.argsort(-self.fitness, kind="stable")
        seen: set[int] = set()
        chosen = []
        for position, key in zip(order.tolist(), self.keys[order].tolist(), strict=True):
            if key not in seen:
                seen.add(key)
                chosen.append(position)
                if len(chosen) == count:
                    break
        return self[np.array(chosen, dtype=np.int64)]


class _Breeder:
    """Draws children for every budget at once: candidates from ``make``, latency predicted
    for all of them together, the first ones within budget kept per slot, fitness predicted
    only for those kept."""

    def __init__(
        self,
        budgets: np.ndarray,
        latency: PredictionCache,
        fitness: PredictionCache,
        settings: EvolutionSettings,
    ) -> None:
        self.budgets = budgets
        self.latency, self.fitness = latency, fitness
        self.settings = settings

    def breed(
        self, makers: list[tuple[Callable[[int], ArchBatch], int]], fallback: list[_Members]
    ) -> list[_Members]:
        """For each (make, need) pair, ``need`` children per budget from ``make(k)`` (k
        candidates per budget, budget after budget); slots still empty after ``max_rounds``
        take members of ``fallback``, which are within budget already."""
        count = len(self.budgets)
        kept: list[list[_Members]] = [[] for _ in range(count)]
        have = np.zeros((len(makers), count), dtype=np.int64)
        needs = np.array([need for _, need in makers])[:, None]
        for _ in range(self.settings.max_rounds):
            missing = needs - have
            if not missing.any():
                break
            sizes = (missing.max(axis=1) * self.settings.oversample).tolist()
            drawn = [
                make(size) if size else None for (make, _), size in zip(makers, sizes, strict=True)
            ]
            parts = [d for d in drawn if d is not None]
            candidates = ArchBatch.concatenate(parts)
            keys = candidates.packed_keys()
            latency = self.latency(candidates, keys)
            key_array = np.empty(len(keys), dtype=object)
            key_array[:] = keys
            offset = 0
            for m, size in enumerate(sizes):
                if not size:
                    continue
                block = latency[offset : offset + count * size].reshape(count, size)
                within = block <= self.budgets[:, None]
                for b in np.nonzero(missing[m])[0]:
                    ok = np.nonzero(within[b])[0]
                    if self.settings.prefer_headroom:
                        ok = ok[np.argsort(-block[b, ok], kind="stable")]
                    hits = ok[: missing[m, b]]
                    rows = offset + b * size + hits
                    kept[b].append(
                        _Members(candidates[rows], key_array[rows], latency[rows], latency[rows])
                    )
                    have[m, b] += len(hits)
                offset += count * size
        children = [_Members.join(parts) if parts else None for parts in kept]
        fresh = [c for c in children if c is not None]
        if fresh:
            bred = _Members.join(fresh)
            fitness = self.fitness(bred.batch, bred.keys.tolist())
        result, offset = [], 0
        for b, child in enumerate(children):
            members = []
            if child is not None:
                child.fitness = fitness[offset : offset + len(child)]
                members.append(child)
                offset += len(child)
            short = int(needs.sum() - have[:, b].sum())
            if short:
                members.append(fallback[b][np.arange(short) % len(fallback[b])])
            result.append(_Members.join(members))
        return result


def evolve(
    space: SearchSpace,
    budgets_ms: list[float],
    latency: PredictionCache,
    fitness: PredictionCache,
    *,
    settings: EvolutionSettings,
    on_generation: Callable[[int], None] | None = None,
) -> list[BudgetResult]:
    """Search every budget at once; one result per budget, in the given order. Each
    generation keeps a budget's best ``parents`` distinct subnets and breeds the rest of the
    population from them, by mutation and crossover."""
    rng = as_generator(settings.seed)
    smallest_batch = smallest_subnet(space)
    smallest = _Members(
        smallest_batch,
        np.array(smallest_batch.packed_keys(), dtype=object),
        latency(smallest_batch),
        fitness(smallest_batch),
    )
    results: dict[int, BudgetResult] = {}
    feasible = []
    for i, budget in enumerate(budgets_ms):
        if smallest.latency[0] > budget:
            results[i] = BudgetResult(
                budget_ms=budget,
                status="infeasible",
                message=(
                    f"no subnet of '{space.name}' meets {budget:g} ms under this predictor: its "
                    f"smallest subnet is predicted at {smallest.latency[0]:.2f} ms"
                ),
            )
        else:
            feasible.append(i)
    if not feasible:
        return [results[i] for i in range(len(budgets_ms))]

    budgets = np.array([budgets_ms[i] for i in feasible], dtype=np.float64)
    count = len(budgets)
    breeder = _Breeder(budgets, latency, fitness, settings)
    populations = breeder.breed(
        [(lambda k: space.sample_batch(count * k, rng), settings.population_size)],
        [smallest] * count,
    )
    best = [p.best_first(1) for p in populations]
    histories: list[list[float]] = [[] for _ in range(count)]
    for generation in range(settings.generations):
        parents = [p.best_first(settings.parents) for p in populations]
        for b in range(count):
            if parents[b].fitness[0] > best[b].fitness[0]:
                best[b] = parents[b][:1]
            histories[b].append(float(best[b].fitness[0]))
        sizes = np.array([len(p) for p in parents])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        parent_batch = ArchBatch.concatenate([p.batch for p in parents])

        def pick(
            k: int, parent_batch: ArchBatch = parent_batch, starts=starts, sizes=sizes
        ) -> ArchBatch:
            rows = starts[:, None] + (rng.random((count, k)) * sizes[:, None]).astype(np.int64)
            return parent_batch[rows.ravel()]

        children = breeder.breed(
            [
                (
                    lambda k: space.mutate_batch(pick(k), settings.mutate_prob, rng),
                    settings.mutations,
                ),
                (
                    lambda k: space.crossover_batch(pick(k), pick(k), rng),
                    settings.population_size - settings.mutations,
                ),
            ],
            parents,
        )
        populations = [_Members.join([p, c]) for p, c in zip(parents, children, strict=True)]
        if on_generation is not None:
            on_generation(generation)
    for position, i in enumerate(feasible):
        final = populations[position].best_first(1)
        winner = final if final.fitness[0] > best[position].fitness[0] else best[position]
        results[i] = BudgetResult(
            budget_ms=budgets_ms[i],
            status="ok",
            arch=winner.batch,
            latency_ms=float(winner.latency[0]),
            fitness=float(winner.fitness[0]),
            history=histories[position],
            population=populations[position].batch,
            population_latency=populations[position].latency.copy(),
            population_fitness=populations[position].fitness.copy(),
        )
    return [results[i] for i in range(len(budgets_ms))]
