"""Sampling nodes: thin adapters from parameters and catalog entries to the search-space and
measurement modules."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pandas as pd

from ofa_latency_kedro.datasets import LatencyFolder
from ofa_latency_kedro.encoding.loading import load_latency_csv
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.measurement.campaign import SamplingTarget, measure_plan, summarize_dataset
from ofa_latency_kedro.nas.frontier import frontier_plan
from ofa_latency_kedro.pipelines.sampling.settings import SamplingSettings
from ofa_latency_kedro.search_space import Arch, subnet_table

logger = logging.getLogger(__name__)


def plan_subnets(
    sampling: dict[str, Any], measured_so_far: LatencyFolder, target: SamplingTarget
) -> pd.DataFrame:
    """The distinct subnets the dataset holds after this run: drawn reproducibly from
    ``sampling.seed`` (``strategy: random``), or the subnets it holds and new ones near the
    search budgets (``strategy: frontier``, `frontier_plan`)."""
    settings = SamplingSettings.from_dict(sampling)
    space = settings.search_space
    count = space.count()
    if settings.num_subnets > count:
        raise ParameterError(
            "sampling.num_subnets",
            f"asks for {settings.num_subnets} distinct subnets, but space '{space.name}' at "
            f"resolutions {list(space.resolutions)} has only {count}",
        )
    if settings.strategy == "frontier":
        file = measured_so_far.get(target.name)
        source = measured_so_far.path / f"{target.name}.csv" if file is None else file.path
        table = frontier_plan(
            None if file is None else load_latency_csv(file.path, on_bad_rows="skip"),
            settings.num_subnets,
            space,
            settings=settings.frontier,
            seed=settings.seed,
            source=str(source),
        )
    else:
        table = subnet_table(space.sample_distinct_batch(settings.num_subnets, seed=settings.seed))
    table.insert(0, "space", space.name)
    logger.info(
        "Planned %d distinct '%s' subnets (of %s in the space, strategy %s) at resolutions %s: "
        "%.0f-%.0f MMACs, %.2f-%.2f M params",
        len(table),
        space.name,
        f"{count:,}" if count < 10**6 else f"{count:.3g}",
        settings.strategy,
        sorted(set(table["resolution"].tolist())),
        table["macs"].min() / 1e6,
        table["macs"].max() / 1e6,
        table["params"].min() / 1e6,
        table["params"].max() / 1e6,
    )
    return table


def resolve_sampling_target(sampling: dict[str, Any]) -> SamplingTarget:
    """Which dataset this run writes and how it measures (``hardware: auto`` names this
    machine's device)."""
    settings = SamplingSettings.from_dict(sampling)
    return SamplingTarget.from_settings(settings, space=settings.search_space.name)


def measure_subnets(
    plan: pd.DataFrame,
    measured_so_far: LatencyFolder,
    target: SamplingTarget,
    sampling: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """Measure the planned subnets the dataset lacks; every group of rows is yielded (and so
    appended to the CSV) as soon as it is measured. The dataset's writer lock is held from
    reading what is there to the last write, so a second run on it stops at once."""
    settings = SamplingSettings.from_dict(sampling)
    archs = [
        Arch.parse(text, width_mult=width)
        for text, width in zip(plan["child_arch"], plan["width_mult"], strict=True)
    ]
    with measured_so_far.writing(target.name) as dataset:
        existing = dataset(settings.on_damaged_rows) if dataset.path.exists() else None
        sidecar = None if existing is None else existing.attrs.get("sidecar")
        steps = measure_plan(
            archs,
            existing,
            sidecar,
            target,
            progress=settings.progress,
            strategy=_strategy(settings, plan),
        )
        for kind, payload in steps:
            if kind == "rows":
                yield {f"{target.name}.csv": pd.DataFrame(payload)}
            else:
                yield {f"{target.name}.json": payload}


def _strategy(settings: SamplingSettings, plan: pd.DataFrame) -> dict[str, Any]:
    """How the plan was chosen, for the session's sidecar entry: the strategy, and for
    ``frontier`` the budgets its new subnets were drawn near."""
    if settings.strategy != "frontier":
        return {"strategy": settings.strategy}
    budgets = plan["budget_ms"].dropna().unique() if "budget_ms" in plan.columns else []
    return {"strategy": "frontier", "budgets_ms": sorted(float(b) for b in budgets)}


def report_sampling(raw_latency: LatencyFolder, target: SamplingTarget) -> dict[str, Any]:
    """Log and return the figures of the dataset this run wrote: size, latency, throughput,
    the repeat probe's noise within the run and across sessions, the reference measured at
    the session's start, and (as warnings) a drift of this machine beyond
    `REFERENCE_DRIFT_WARNING`."""
    frame = raw_latency[target.name]()
    report = summarize_dataset(frame, frame.attrs.get("sidecar"))
    session = report["last_session"]
    probe = session.get("repeat_probe") or {}
    latency = report["latency_ms"]
    logger.info(
        "Sampling done: %s holds %d subnets (%d measured now, %d already there); "
        "latency %.2f-%.2f ms (median %.2f); %s subnets/min; repeat probe: %s within the run, "
        "%s across sessions; reference subnet: %s",
        report["file"],
        report["rows"],
        session.get("measured", 0),
        session.get("already_measured", 0),
        latency["min"] or float("nan"),
        latency["max"] or float("nan"),
        latency["median"] or float("nan"),
        session.get("subnets_per_minute"),
        _noise(probe.get("within_run")),
        _noise(probe.get("across_sessions")),
        _reference(session, report["protocol"]),
    )
    for warning in report["warnings"]:
        logger.warning(warning)
    return report


def _noise(probe: dict[str, Any] | None) -> str:
    if not probe or not probe.get("subnets"):
        return "no subnets"
    return (
        f"{probe['subnets']} subnets, median difference {_percent(probe['median_rel_diff'])} "
        f"(max {_percent(probe['max_rel_diff'])})"
    )


def _reference(session: dict[str, Any], protocol: dict[str, Any] | None) -> str:
    now = session.get("reference_now_ms")
    if now is None:
        return str(session.get("reference_check", "not measured"))
    return (
        f"{now:.2f} ms now, the dataset's calibration {(protocol or {}).get('reference_ms'):.2f}"
        f" ms ({session['reference_drift']:+.1%}; {session.get('reference_check')})"
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"
