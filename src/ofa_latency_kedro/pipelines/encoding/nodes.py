"""Encoding nodes, one per stage: read and validate the latency CSVs, merge repeated
measurements, split without leakage, report."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from ofa_latency_kedro.datasets import LatencyFolder
from ofa_latency_kedro.encoding import (
    HardwareRegistry,
    LatencyDataError,
    leaked_subnets,
    load_latency_csv,
    split_table,
)
from ofa_latency_kedro.encoding.loading import merge_repeats
from ofa_latency_kedro.pipelines.common import select_datasets
from ofa_latency_kedro.pipelines.encoding.settings import EncodingSettings

logger = logging.getLogger(__name__)

#: Measurement columns the model input leaves out (how and when, not what, was measured).
DROPPED_COLUMNS = ("backend", "measured_at")


def read_latency_files(
    raw_latency: LatencyFolder, encoding: dict[str, Any], hardware: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """The rows of every selected latency CSV, validated (not merged); the reading report;
    and the hardware entries (``params:hardware`` completed by the files' sidecars)."""
    settings = EncodingSettings.from_dict(encoding)
    names = select_datasets(
        raw_latency, settings.datasets, "encoding.datasets", str(raw_latency.path)
    )
    if not names:
        raise LatencyDataError(
            f"no latency datasets in {raw_latency.path}: run `kedro run --pipelines sampling` "
            "or copy CSVs (e.g. the seed's) there"
        )
    files = [raw_latency[name] for name in names]
    registry = HardwareRegistry(hardware).with_sidecars(
        {file.path.stem: file.sidecar() for file in files}
    )
    widths = {
        name: entry["width_mult"]
        for name, entry in registry.entries.items()
        if entry.get("width_mult")
    }
    rows = load_latency_csv(
        [f.path for f in files], on_bad_rows=settings.on_bad_rows, merge=False, width_mult=widths
    )
    report = rows.attrs.pop("report")
    if report["rows_skipped"]:
        logger.warning(
            "Skipped %d bad rows (on_bad_rows: skip); see the encoding report",
            report["rows_skipped"],
        )
    return rows, report, dict(registry.entries)


def merge_repeated_measurements(
    rows: pd.DataFrame, read_report: dict[str, Any], encoding: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per distinct subnet of each dataset (``encoding.merge_repeats``), and the
    reading report with the rows left."""
    settings = EncodingSettings.from_dict(encoding)
    merged = merge_repeats(rows) if settings.merge_repeats else rows
    return merged, {**read_report, "rows_before_merge": len(rows), "rows": len(merged)}


def split_subnets(subnets: pd.DataFrame, encoding: dict[str, Any]) -> pd.DataFrame:
    """The model input: every subnet assigned to train, val or test, none on two sides."""
    settings = EncodingSettings.from_dict(encoding)
    table = split_table(subnets, settings.split, seed=settings.seed, fractions=settings.fractions)
    return table.drop(columns=[c for c in table.columns if c in DROPPED_COLUMNS])


def report_encoding(
    model_input: pd.DataFrame,
    merge_report: dict[str, Any],
    hardware_entries: dict[str, Any],
    encoding: dict[str, Any],
) -> dict[str, Any]:
    """The encoding report: what was read, skipped and merged, the split, each dataset's
    size per side and median latency, and the hardware entries of its devices."""
    settings = EncodingSettings.from_dict(encoding)
    datasets = []
    for (hardware_name, space), rows in model_input.groupby(
        ["hardware", "space"], sort=False, dropna=False
    ):
        counts = rows["split"].value_counts()
        datasets.append(
            {
                "hardware": hardware_name,
                "space": space,
                "rows": len(rows),
                "distinct_subnets": int(rows["canonical_key"].nunique()),
                **{name: int(counts.get(name, 0)) for name in ("train", "val", "test")},
                "latency_ms_median": float(rows["latency"].median()),
            }
        )
        logger.info(
            "Dataset %s/%s: %d subnets (train %d, val %d, test %d), median latency %.2f ms",
            hardware_name,
            space,
            len(rows),
            counts.get("train", 0),
            counts.get("val", 0),
            counts.get("test", 0),
            rows["latency"].median(),
        )
    return {
        **merge_report,
        "split": settings.split,
        "leaked_subnets": leaked_subnets(model_input),
        "datasets": datasets,
        "hardware": {
            str(name): hardware_entries.get(str(name))
            for name in dict.fromkeys(d["hardware"] for d in datasets)
        },
    }
