"""Subnets as a table: the columns every dataset of the project shares."""

from __future__ import annotations

import pandas as pd

from ofa_latency_kedro.search_space.batch import ArchBatch
from ofa_latency_kedro.search_space.network import cost_table


def subnet_table(batch: ArchBatch) -> pd.DataFrame:
    """One row per subnet: the seed's ``child_arch`` text, canonical key, resolution, width,
    parameters and MACs (OFA's profiler figure)."""
    archs = batch.to_archs()
    costs = cost_table(batch)
    return pd.DataFrame(
        {
            "child_arch": [a.to_seed_string() for a in archs],
            "canonical_key": [a.canonical_key for a in archs],
            "resolution": batch.r,
            "width_mult": batch.width_mult,
            "params": costs.params,
            "macs": costs.macs,
        }
    )
