"""Measuring many subnets: rows in the latency-CSV format, progress, and the repeat probe."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ofa_latency_kedro.measurement.backends import Backend
from ofa_latency_kedro.measurement.log import LATENCY_COLUMNS
from ofa_latency_kedro.measurement.protocol import relative_differences
from ofa_latency_kedro.progress import progress_bar
from ofa_latency_kedro.search_space import Arch

logger = logging.getLogger(__name__)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def measurement_rows(
    archs: Sequence[Arch], backend: Backend, *, hardware: str, space: str | None
) -> list[dict[str, Any]]:
    """Time a group of subnets together (see `Backend.sample_subnets`) and return their
    latency-CSV rows."""
    measured = [backend.prepare(arch) for arch in archs]
    timings = backend.time_subnets(measured)
    finished = utc_now()
    return [
        {
            "child_arch": arch.to_seed_string(),
            "latency": timing.latency,
            "latency_p10": timing.p10,
            "latency_p90": timing.p90,
            "runs": timing.runs,
            "batch_size": backend.protocol.batch_size,
            "backend": backend.name,
            "hardware": hardware,
            "space": space,
            "width_mult": arch.width_mult,
            "measured_at": finished,
        }
        for arch, timing in zip(measured, timings, strict=True)
    ]


def iter_measured_groups(
    archs: Sequence[Arch],
    backend: Backend,
    *,
    hardware: str,
    space: str | None = None,
    progress: bool | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Measure subnets group by group (``protocol.interleave`` at a time), yielding each
    group's rows as soon as the group is done."""
    group = backend.protocol.interleave
    with progress_bar(len(archs), f"{backend.name} on {hardware}", progress) as bar:
        for start in range(0, len(archs), group):
            rows = measurement_rows(
                archs[start : start + group], backend, hardware=hardware, space=space
            )
            yield rows
            bar.update(len(rows))


def probe_indices(count: int, probes: int) -> np.ndarray:
    """Which of ``count`` measured subnets to measure again: spread evenly over the run."""
    if probes <= 0 or count == 0:
        return np.array([], dtype=int)
    return np.unique(np.linspace(0, count - 1, min(probes, count)).round().astype(int))


def probe_picks(
    rows: Sequence[dict[str, Any]],
    earlier: Sequence[dict[str, Any]],
    probes: int,
    seed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows the repeat probe measures again, ``probes`` at most: of the ``earlier`` rows
    (written by earlier sessions), ``probes // 2`` drawn with ``seed``; of ``rows`` (this
    run's), the rest, spread evenly. A run that measured nothing probes nothing."""
    if not rows or probes <= 0:
        return [], []
    drawn = np.random.default_rng(seed).choice(
        len(earlier), min(len(earlier), probes // 2), replace=False
    )
    across = [earlier[i] for i in sorted(drawn)]
    within = [rows[i] for i in probe_indices(len(rows), probes - len(across))]
    return within, across


def summarize_probe(first_ms: Sequence[float], second_ms: Sequence[float]) -> dict[str, Any]:
    """Noise: relative differences between two measurements of the same subnets."""
    if len(first_ms) == 0:
        return {"subnets": 0, "median_rel_diff": None, "max_rel_diff": None}
    diffs = relative_differences(np.asarray(first_ms), np.asarray(second_ms))
    return {
        "subnets": len(diffs),
        "median_rel_diff": float(np.median(diffs)),
        "max_rel_diff": float(np.max(diffs)),
    }


def summarize_probes(
    within: Sequence[dict[str, Any]],
    across: Sequence[dict[str, Any]],
    again: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The repeat probe's report: ``again`` holds the new rows of ``within`` (this run's
    rows) then of ``across`` (earlier sessions' rows), in order. ``within_run`` is the run's
    own noise; ``across_sessions`` the noise between sessions, with the time of the oldest
    row measured again."""
    if len(again) != len(within) + len(across):
        raise ValueError(
            f"the probe measured {len(again)} rows for {len(within)} + {len(across)} picked"
        )
    latency = [float(row["latency"]) for row in again]
    split = len(within)
    across_sessions = summarize_probe([float(r["latency"]) for r in across], latency[split:])
    across_sessions["oldest_measured_at"] = min(
        (r["measured_at"] for r in across if isinstance(r.get("measured_at"), str)), default=None
    )
    return {
        "within_run": summarize_probe([float(r["latency"]) for r in within], latency[:split]),
        "across_sessions": across_sessions,
    }


def latency_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(LATENCY_COLUMNS))
