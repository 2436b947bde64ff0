"""Subnets as a table: the columns every dataset of the project shares."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ofa_latency_kedro.search_space.arch import Arch
from ofa_latency_kedro.search_space.batch import ARCH_COLUMNS, ArchBatch
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


def as_latency_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A table with arch columns: `load_latency_csv` output as is, or any frame with
    ``child_arch`` and ``latency`` columns (parsed here)."""
    if all(column in frame.columns for column in ARCH_COLUMNS):
        return frame
    if "child_arch" not in frame.columns or "latency" not in frame.columns:
        raise ValueError("a latency table needs the columns child_arch and latency")
    widths = frame["width_mult"] if "width_mult" in frame.columns else [None] * len(frame)
    batch = ArchBatch.from_archs(
        [
            Arch.parse(text, width_mult=width)
            for text, width in zip(frame["child_arch"], widths, strict=True)
        ]
    )
    table = frame.drop(columns=[c for c in ARCH_COLUMNS if c in frame.columns]).reset_index(
        drop=True
    )
    table = pd.concat([table, batch.to_frame()], axis=1)
    if "canonical_key" not in table.columns:
        table["canonical_key"] = batch.canonical_keys()
    for column, default in (("hardware", None), ("space", None), ("source", "table")):
        if column not in table.columns:
            table[column] = default
    if "line" not in table.columns:
        table["line"] = np.arange(2, len(table) + 2)
    return table


def dataset_names(table: pd.DataFrame) -> pd.Series:
    """``<hardware>_<space>`` of every row: the name of its dataset (CSV, predictor, head)."""
    return table["hardware"].astype(str) + "_" + table["space"].astype(str)
