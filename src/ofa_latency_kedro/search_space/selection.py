"""Which subnets of a pool to measure: a handful that covers the range (`pick_subnets`), for
few-shot adaptation to a new device and for the reference set that describes one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.search_space.batch import ArchBatch
from ofa_latency_kedro.search_space.network import block_cost_table
from ofa_latency_kedro.search_space.table import as_latency_table

SAMPLERS = ("random", "informative")


def pick_subnets(
    pool: pd.DataFrame, k: int, *, sampler: str = "random", seed: int = 0
) -> pd.DataFrame:
    """``k`` rows of ``pool`` (a table with ``child_arch`` or arch columns) to measure.
    ``informative`` spreads them over MACs, depth and resolution (farthest-point sampling
    from a seeded start), so that a few samples cover the range a calibration has to span;
    ``random`` draws uniformly."""
    if sampler not in SAMPLERS:
        raise ParameterError("sampler", f"must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if k > len(pool):
        raise ParameterError("k", f"cannot pick {k} subnets from a pool of {len(pool)}")
    rng = np.random.default_rng(seed)
    if sampler == "random":
        return pool.iloc[np.sort(rng.choice(len(pool), size=k, replace=False))]
    batch = ArchBatch.from_frame(as_latency_table(pool))
    points = np.stack(
        [np.log(block_cost_table(batch).macs_exact), batch.d.sum(axis=1), batch.r], axis=1
    ).astype(float)
    points = (points - points.mean(axis=0)) / (points.std(axis=0) + 1e-9)
    chosen = [int(rng.integers(len(points)))]
    distance = np.linalg.norm(points - points[chosen[0]], axis=1)
    while len(chosen) < k:
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return pool.iloc[np.sort(chosen)]
