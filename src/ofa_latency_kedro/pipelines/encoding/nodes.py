"""Encoding nodes: validate and merge every latency CSV, then split without leakage."""

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
from ofa_latency_kedro.pipelines.common import select_datasets
from ofa_latency_kedro.pipelines.encoding.settings import EncodingSettings

logger = logging.getLogger(__name__)


def build_model_input(
    raw_latency: LatencyFolder, encoding: dict[str, Any], hardware: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every selected latency CSV, validated, merged per subnet and split train/val/test."""
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
    table = load_latency_csv(
        [f.path for f in files],
        on_bad_rows=settings.on_bad_rows,
        merge=settings.merge_repeats,
        width_mult=widths,
    )
    report = dict(table.attrs["report"])
    table = split_table(
        table,
        settings.split,
        seed=settings.seed,
        fractions=settings.fractions,
    )
    datasets = []
    for (hardware_name, space), rows in table.groupby(
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
    report.update(
        split=settings.split,
        leaked_subnets=leaked_subnets(table),
        datasets=datasets,
        hardware={
            str(name): registry.entries.get(str(name))
            for name in dict.fromkeys(d["hardware"] for d in datasets)
        },
    )
    if report["rows_skipped"]:
        logger.warning(
            "Skipped %d bad rows (on_bad_rows: skip); see the encoding report",
            report["rows_skipped"],
        )
    return table.drop(columns=[c for c in table.columns if c in ("backend", "measured_at")]), report
