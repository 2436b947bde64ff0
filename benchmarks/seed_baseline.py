"""The seed's code paths, re-implemented for side-by-side benchmarks (the seed's own files are
not part of ../shared): its per-subnet latency encoding and prediction, and its search
(CompOFA's modified ``EvolutionFinder``: Python dicts, one latency prediction per candidate,
accuracy predicted per generation).

The search keeps the seed's algorithm (including its first population: only the first
``mutation_ratio * population`` random subnets enter it) but keys its latency cache by the
whole subnet, resolution included: the corrected baseline the NAS issue's quality figures
refer to.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ofa_latency_kedro.search_space import Arch

KERNELS, EXPANDS, DEPTHS = (3, 5, 7), (3, 4, 6), (2, 3, 4)
COUPLED_EXPAND = {2: 3, 3: 4, 4: 6}
FIXED_KERNELS = (3, 5, 3, 3, 5)


def seed_encoding(child_arch: dict[str, Any]) -> torch.Tensor:
    """The seed's latency_encoding/spec2feats: Python lists, one subnet at a time."""
    ks_list, ex_list, d_list = (copy.deepcopy(child_arch[k]) for k in ("ks", "e", "d"))
    r = copy.deepcopy(child_arch["r"])[0]
    start, end = 0, 4
    for d in d_list:
        for j in range(start + d, end):
            ks_list[j] = 0
            ex_list[j] = 0
        start += 4
        end += 4
    ks_map, ex_map = {3: 0, 5: 1, 7: 2}, {3: 0, 4: 1, 6: 2}
    ks_onehot, ex_onehot, r_onehot = [0] * 60, [0] * 60, [0] * 8
    for i in range(20):
        if ks_list[i] != 0:
            ks_onehot[i * 3 + ks_map[ks_list[i]]] = 1
        if ex_list[i] != 0:
            ex_onehot[i * 3 + ex_map[ex_list[i]]] = 1
    r_onehot[(r - 112) // 16] = 1
    return torch.Tensor(ks_onehot + ex_onehot + r_onehot).reshape(1, -1)


def seed_predict_one(model: torch.nn.Module, child_arch: dict[str, Any]) -> float:
    """The seed's predict_efficiency without its cache: encode, forward, ``.item()``."""
    with torch.no_grad():
        return model(seed_encoding(child_arch).type(torch.FloatTensor)).item()


def seed_per_subnet(model: torch.nn.Module, archs: list[Arch]) -> np.ndarray:
    return np.array([seed_predict_one(model, arch.to_seed_dict()) for arch in archs])


class SeedEvolution:
    """The seed's regularized evolution for ``ofa``, ``compofa`` and ``compofa-elastic``."""

    def __init__(
        self,
        space: str,
        latency: Callable[[dict[str, Any]], float],
        accuracy: Callable[[list[dict[str, Any]]], np.ndarray],
        *,
        resolutions: tuple[int, ...] = (160, 176, 192, 208, 224),
        population_size: int = 100,
        generations: int = 500,
        parent_ratio: float = 0.25,
        mutation_ratio: float = 0.5,
        mutate_prob: float = 0.1,
    ) -> None:
        self.space, self.resolutions = space, resolutions
        self.latency_fn, self.accuracy = latency, accuracy
        self.population_size, self.generations = population_size, generations
        self.parents = int(round(parent_ratio * population_size))
        self.mutations = int(round(mutation_ratio * population_size))
        self.mutate_prob = mutate_prob
        self.cache: dict[str, float] = {}

    def latency(self, sample: dict[str, Any]) -> float:
        key = str(sample)  # the whole subnet, resolution included
        if key not in self.cache:
            self.cache[key] = self.latency_fn(sample)
        return self.cache[key]

    def _kernels(self) -> list[int]:
        if self.space == "compofa":
            return [k for k in FIXED_KERNELS for _ in range(4)]
        return [random.choice(KERNELS) for _ in range(20)]

    def random_sample(self) -> dict[str, Any]:
        d = [random.choice(DEPTHS) for _ in range(5)]
        if self.space == "ofa":
            e = [random.choice(EXPANDS) for _ in range(20)]
        else:
            e = [COUPLED_EXPAND[depth] for depth in d for _ in range(4)]
        return {
            "wid": None,
            "ks": self._kernels(),
            "e": e,
            "d": d,
            "r": [random.choice(self.resolutions)],
        }

    def _mutate(self, sample: dict[str, Any]) -> dict[str, Any]:
        new = copy.deepcopy(sample)
        if random.random() < self.mutate_prob:
            new["r"][0] = random.choice(self.resolutions)
        for block in range(20):
            if random.random() < self.mutate_prob:
                if self.space == "ofa":
                    new["e"][block] = random.choice(EXPANDS)
                else:
                    new["e"][block] = COUPLED_EXPAND[sample["d"][block // 4]]
                if self.space != "compofa":
                    new["ks"][block] = random.choice(KERNELS)
        for stage in range(5):
            if random.random() < self.mutate_prob:
                old, new["d"][stage] = new["d"][stage], random.choice(DEPTHS)
                if self.space != "ofa" and new["d"][stage] != old:
                    new["e"][stage * 4 : stage * 4 + 4] = [COUPLED_EXPAND[new["d"][stage]]] * 4
        return new

    def _crossover(self, first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
        new = copy.deepcopy(first)
        if self.space == "ofa":
            for key in ("ks", "e", "d", "r"):
                new[key] = [
                    random.choice(pair) for pair in zip(first[key], second[key], strict=True)
                ]
            return new
        new["r"] = [random.choice(pair) for pair in zip(first["r"], second["r"], strict=True)]
        new["ks"] = [random.choice(pair) for pair in zip(first["ks"], second["ks"], strict=True)]
        for stage in range(5):
            parent = random.choice((first, second))
            new["d"][stage] = parent["d"][stage]
            new["e"][stage * 4 : stage * 4 + 4] = parent["e"][stage * 4 : stage * 4 + 4]
        return new

    def _child(
        self, make: Callable[[], dict[str, Any]], budget: float
    ) -> tuple[dict, float] | None:
        for _ in range(50):
            sample = make()
            latency = self.latency(sample)
            if latency <= budget:
                return sample, latency
        return None

    def search(self, budget: float, seed: int) -> tuple[float, dict[str, Any], float]:
        """Best (accuracy, subnet, latency) under ``budget``. Like the seed, it loops forever
        when no subnet meets the budget: give it feasible budgets only."""
        random.seed(seed)
        np.random.seed(seed)
        pool = []
        while len(pool) < self.population_size:
            sample = self.random_sample()
            latency = self.latency(sample)
            if latency <= budget:
                pool.append((sample, latency))
        accuracy = self.accuracy([s for s, _ in pool])
        population = [(accuracy[i], *pool[i]) for i in range(self.mutations)]
        best = (-np.inf, None, None)
        for _ in range(self.generations):
            parents = sorted(population, key=lambda member: member[0], reverse=True)[: self.parents]
            if parents[0][0] > best[0]:
                best = parents[0]
            children = []
            while len(children) < self.mutations:
                parent = parents[np.random.randint(len(parents))][1]
                child = self._child(lambda parent=parent: self._mutate(parent), budget)
                if child is not None:
                    children.append(child)
            while len(children) < self.population_size:
                first = parents[np.random.randint(len(parents))][1]
                second = parents[np.random.randint(len(parents))][1]
                child = self._child(
                    lambda first=first, second=second: self._crossover(first, second), budget
                )
                if child is not None:
                    children.append(child)
            accuracy = self.accuracy([s for s, _ in children])
            population = parents + [(accuracy[i], *children[i]) for i in range(len(children))]
        return best
