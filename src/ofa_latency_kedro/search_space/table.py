"""Subnets as a table: the columns every dataset of the project shares."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ofa_latency_kedro.errors import LatencyDataError
from ofa_latency_kedro.search_space.batch import ARCH_COLUMNS, ArchBatch
from ofa_latency_kedro.search_space.network import cost_table
from ofa_latency_kedro.search_space.spaces import infer_space


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


def child_arch_batch(frame: pd.DataFrame) -> ArchBatch:
    """The batch of a frame's ``child_arch`` (and ``width_mult``, when it has one), read a
    whole list at a time per width."""
    if "width_mult" not in frame.columns:
        return ArchBatch.from_archs(frame["child_arch"].tolist())
    widths = frame["width_mult"].to_numpy()
    parts, order = [], []
    for width in pd.unique(widths):
        rows = np.flatnonzero(pd.isna(widths) if pd.isna(width) else widths == width)
        chosen = None if pd.isna(width) else float(width)
        parts.append(
            ArchBatch.from_archs(frame["child_arch"].iloc[rows].tolist(), width_mult=chosen)
        )
        order.append(rows)
    return ArchBatch.concatenate(parts)[np.argsort(np.concatenate(order), kind="stable")]


def _fill_spaces(table: pd.DataFrame, batch: ArchBatch) -> None:
    """Rows without a ``space``: the space their subnets belong to, per hardware, when only
    one space holds them (else left empty: `dataset_names` says what is missing)."""
    missing = table["space"].isna().to_numpy()
    if not missing.any():
        return
    hardware = table["hardware"].astype(object).where(table["hardware"].notna(), "")
    for name in pd.unique(hardware[missing]):
        rows = missing & (hardware == name).to_numpy()
        space = infer_space(batch[rows])
        if space is not None:
            table.loc[rows, "space"] = space


def as_latency_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A table with arch columns: `load_latency_csv` output as is, or any frame with
    ``child_arch`` and ``latency`` columns (parsed here). Without a ``space`` column, the
    space of each device's rows is the one space that holds its subnets, when only one does."""
    if all(column in frame.columns for column in ARCH_COLUMNS):
        return frame
    missing = [c for c in ("child_arch", "latency") if c not in frame.columns]
    if missing:
        raise LatencyDataError(
            f"a latency table needs the columns child_arch and latency; it lacks "
            f"{', '.join(missing)} (it has {', '.join(map(str, frame.columns)) or 'none'})"
        )
    batch = child_arch_batch(frame)
    table = frame.drop(columns=[c for c in ARCH_COLUMNS if c in frame.columns]).reset_index(
        drop=True
    )
    table = pd.concat([table, batch.to_frame()], axis=1)
    if "canonical_key" not in table.columns:
        table["canonical_key"] = batch.canonical_keys()
    for column, default in (("hardware", None), ("space", None), ("source", "table")):
        if column not in table.columns:
            table[column] = default
    table["space"] = table["space"].astype(object)
    _fill_spaces(table, batch)
    if "line" not in table.columns:
        table["line"] = np.arange(2, len(table) + 2)
    return table


def dataset_names(table: pd.DataFrame) -> pd.Series:
    """``<hardware>_<space>`` of every row: the name of its dataset (CSV, predictor, head);
    a `LatencyDataError` names the column that leaves rows without one."""
    if "hardware" not in table.columns or table["hardware"].isna().any():
        raise LatencyDataError(
            "rows of several devices need a 'hardware' column naming each row's device"
        )
    if "space" not in table.columns or table["space"].isna().any():
        unnamed = table.loc[table.get("space", pd.Series(index=table.index)).isna(), "hardware"]
        raise LatencyDataError(
            f"the rows of {', '.join(map(str, pd.unique(unnamed)))} have no 'space' and their "
            "subnets fit several search spaces, so it cannot be inferred: give a 'space' "
            "column (ofa, compofa or compofa-elastic)"
        )
    return table["hardware"].astype(str) + "_" + table["space"].astype(str)
