"""Encoding nodes: validate and merge every latency CSV, then split without leakage."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from ofa_latency_kedro.datasets import LatencyFile
from ofa_latency_kedro.encoding import (
    HardwareRegistry,
    leaked_subnets,
    load_latency_csv,
    split_table,
)

logger = logging.getLogger(__name__)


def _selected(files: dict[str, LatencyFile], wanted: str | list[str]) -> list[LatencyFile]:
    if wanted in (None, "all"):
        return list(files.values())
    missing = sorted(set(wanted) - set(files))
    if missing:
        raise ValueError(
            f"encoding.datasets names {', '.join(missing)}, which data/01_raw/latency does not hold "
            f"(it holds {', '.join(sorted(files)) or 'nothing'})"
        )
    return [files[name] for name in wanted]


def build_model_input(
    raw_latency: dict[str, LatencyFile], encoding: dict[str, Any], hardware: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every selected latency CSV, validated, merged per subnet and split train/val/test."""
    files = _selected(raw_latency, encoding.get("datasets", "all"))
    if not files:
        raise ValueError(
            "no latency datasets in data/01_raw/latency: run `kedro run --pipelines sampling` "
            "or copy CSVs (e.g. the seed's) there"
        )
    registry = HardwareRegistry(hardware, source="conf/*/hardware.yml").with_sidecars(
        {file.path.stem: file.sidecar() for file in files}
    )
    widths = {
        name: entry["width_mult"]
        for name, entry in registry.entries.items()
        if entry.get("width_mult")
    }
    table = load_latency_csv(
        [f.path for f in files],
        on_bad_rows=encoding.get("on_bad_rows", "raise"),
        merge=encoding.get("merge_repeats", True),
        width_mult=widths,
    )
    report = dict(table.attrs["report"])
    table = split_table(
        table,
        encoding.get("split", "key"),
        seed=encoding.get("seed", 0),
        fractions=tuple(encoding.get("fractions", (0.7, 0.15, 0.15))),
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
        split=encoding.get("split", "key"),
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
