"""Sampling nodes: thin adapters from parameters to the search-space module."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from ofa_latency_kedro.search_space import get_space, subnet_table

logger = logging.getLogger(__name__)


def plan_subnets(sampling: dict[str, Any]) -> pd.DataFrame:
    """Draw the distinct subnets to measure, reproducibly from ``sampling.seed``."""
    space = get_space(
        sampling["space"],
        resolutions=sampling.get("resolutions", "seed"),
        width_mult=sampling.get("width_mult", 1.0),
    )
    batch = space.sample_distinct_batch(int(sampling["num_subnets"]), seed=sampling.get("seed", 0))
    table = subnet_table(batch)
    table.insert(0, "space", space.name)
    logger.info(
        "Planned %d distinct '%s' subnets (of %s in the space) at resolutions %s: "
        "%.0f-%.0f MMACs, %.2f-%.2f M params",
        len(table),
        space.name,
        f"{space.count():.3g}",
        sorted(set(table["resolution"].tolist())),
        table["macs"].min() / 1e6,
        table["macs"].max() / 1e6,
        table["params"].min() / 1e6,
        table["params"].max() / 1e6,
    )
    return table
