"""Verification: measure what the search found, on the device the predictor was trained
for, with the protocol its dataset was measured with, and say whether each budget held.

A predictor is least accurate where a search drives it: the winners sit at the edge of what
fits the budget, often unlike the random subnets it was trained on. So a winner that measures
over its budget is searched again under a tighter budget, scaled by how far the predictor
missed on that very subnet, and measured again (``rounds`` times at most). The device, not
the predictor, has the last word; every row records the budget it was searched under and how
many rounds it took."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ofa_latency_kedro.measurement import LocalMeasurer, Protocol, detect_hardware
from ofa_latency_kedro.nas.search import WINNER_COLUMNS
from ofa_latency_kedro.search_space import Arch
from ofa_latency_kedro.search_space.table import dataset_names

logger = logging.getLogger(__name__)

#: A subnet may measure this much above its budget and still count as meeting it (the
#: target of the project: at most 3% above).
TOLERANCE = 0.03
#: Searches again under a tighter budget, at most, for a winner that measured over budget.
ROUNDS = 3
VERIFICATION_COLUMNS = (
    "verified",
    "measured_latency_ms",
    "measured_p90_ms",
    "prediction_error",
    "over_budget",
    "budget_met",
    "search_budget_ms",
    "verify_rounds",
    "first_measured_latency_ms",
    "first_macs",
    "verification_note",
)

#: ``research(name, rows, search_budgets_ms)``: the search of the predictor ``name`` again,
#: under ``search_budgets_ms`` (one per row of ``rows``), one result row per budget in order.
Research = Callable[[str, pd.DataFrame, list[float]], pd.DataFrame]


def same_machine(descriptor: Mapping[str, Any] | None, here: Mapping[str, Any]) -> bool:
    """Whether a dataset's hardware descriptor is this machine (host, CPU and GPU)."""
    if not descriptor:
        return False
    gpu = (descriptor.get("gpu") or {}).get("name")
    here_gpu = (here.get("gpu") or {}).get("name")
    return (
        descriptor.get("hostname") == here.get("hostname")
        and descriptor.get("cpu_model") == here.get("cpu_model")
        and (gpu is None or gpu == here_gpu)
    )


def unverified(results: pd.DataFrame, note: str | None) -> pd.DataFrame:
    """``results`` with empty verification columns (and ``note`` saying why)."""
    table = results.copy()
    for column in VERIFICATION_COLUMNS:
        table[column] = np.nan
    table["verified"] = False
    table["budget_met"] = None
    table["search_budget_ms"] = table["budget_ms"]
    table["verify_rounds"] = 0
    table["verification_note"] = note
    return table.astype({"verification_note": object, "budget_met": object})


#: ``on_measured(dataset, rows)``: latency-CSV rows of winners just measured (to append).
Measured = Callable[[str, list[dict[str, Any]]], None]


def _measure(
    measurer: LocalMeasurer,
    table: pd.DataFrame,
    index: pd.Index,
    *,
    name: str,
    sidecar: Mapping[str, Any],
    on_measured: Measured | None,
) -> None:
    """Measure the arch of each row of ``index``, fill its verification columns, and hand
    the measured rows to ``on_measured``."""
    rows = table.loc[index]
    archs = [
        Arch.parse(text, width_mult=w)
        for text, w in zip(rows["arch"], rows["width_mult"], strict=True)
    ]
    measured = [
        row
        for group in measurer.iter_groups(
            archs,
            hardware=str(sidecar.get("hardware")),
            space=sidecar.get("space"),
            progress=False,
        )
        for row in group
    ]
    if on_measured is not None:
        on_measured(name, measured)
    latency = np.array([m["latency"] for m in measured])
    budgets = rows["budget_ms"].to_numpy(dtype=float)
    table.loc[index, "verified"] = True
    table.loc[index, "measured_latency_ms"] = latency
    table.loc[index, "measured_p90_ms"] = [m["latency_p90"] for m in measured]
    table.loc[index, "prediction_error"] = (
        rows["predicted_latency_ms"].to_numpy(dtype=float) / latency - 1
    )
    table.loc[index, "over_budget"] = latency / budgets - 1
    table.loc[index, "budget_met"] = list(latency <= budgets * (1 + TOLERANCE))


def _settled(table: pd.DataFrame, index: pd.Index) -> np.ndarray:
    """Rows whose winner measures within `TOLERANCE` of its budget, above or below."""
    ratio = table.loc[index, "measured_latency_ms"] / table.loc[index, "budget_ms"]
    return ((ratio >= 1 - TOLERANCE) & (ratio <= 1 + TOLERANCE)).to_numpy()


def _fitness(record: pd.Series) -> float:
    """What the search maximised: predicted accuracy, or MACs under the proxy objective."""
    value = record["predicted_accuracy"] if record["objective"] == "accuracy" else record["macs"]
    return float(value)


def _keep_best(table: pd.DataFrame, index: pd.Index, best: dict[Any, pd.Series]) -> None:
    """Remember, per row, the fittest winner so far that measured within its budget."""
    for row in index:
        record = table.loc[row]
        if record["budget_met"] and (row not in best or _fitness(record) > _fitness(best[row])):
            best[row] = record.copy()


def _search_again(table: pd.DataFrame, index: pd.Index, name: str, research: Research) -> pd.Index:
    """Search the rows of ``index`` again, each under its search budget scaled by how far its
    winner measured from the budget (tighter when over, looser when well under); return the
    rows that found a subnet to measure."""
    rows = table.loc[index]
    scaled = (rows["search_budget_ms"] * rows["budget_ms"] / rows["measured_latency_ms"]).round(3)
    found = research(name, rows, scaled.tolist())
    if len(found) != len(rows):
        raise RuntimeError(
            f"the repeated search of {name} returned {len(found)} rows for {len(rows)}"
        )
    found.index = index
    feasible = index[(found["status"] == "ok").to_numpy()]
    for row in index.difference(feasible):
        logger.warning(
            "%s at %g ms: no subnet fits the search budget %g ms",
            name,
            rows.loc[row, "budget_ms"],
            scaled[row],
        )
    for column in WINNER_COLUMNS:
        table[column] = table[column].astype(object)
        table.loc[feasible, column] = found.loc[feasible, column].astype(object)
    table.loc[feasible, "search_budget_ms"] = scaled[feasible]
    table.loc[feasible, "verify_rounds"] += 1
    return feasible


def warn_if_reference_drifted(measurer: LocalMeasurer, name: str) -> None:
    """Measure the reference subnet once and warn when it differs from the dataset's
    ``reference_ms`` by more than `REFERENCE_DRIFT_WARNING`: the winners are still measured on
    the dataset's scale (relative to the reference, scaled by its ``reference_ms``)."""
    check = measurer.check_reference()
    if check is not None and check.drifted:
        logger.warning(
            check.warning(f"verifying {name}")
            + "; the winners are measured on that scale too, comparable with its rows"
        )


def verify_results(
    results: pd.DataFrame,
    sidecars: Mapping[str, Mapping[str, Any] | None],
    research: Research | None = None,
    rounds: int = ROUNDS,
    on_measured: Measured | None = None,
) -> pd.DataFrame:
    """``results`` with measured latency, prediction error and whether the budget held.

    A dataset's sidecar (written by the sampling pipeline) says how its device was measured;
    rows of a device that is not this machine, or with no sidecar, are left unverified with a
    note. Lookup-table devices are verified anywhere (the table is the device).

    With ``research``, a winner measuring more than `TOLERANCE` away from its budget is
    searched again under a search budget scaled by budget / measured (tighter when it ran
    over, looser when it left more than `TOLERANCE` unused) and measured again, ``rounds``
    times at most. The row ends with the fittest winner that measured within its budget, or,
    when none did, the last one, marked as missing it. Every measured winner's latency-CSV
    row (the dataset's protocol and reference) goes to ``on_measured``, to be appended to its
    dataset."""
    table = unverified(results, None)
    table.loc[table["status"] != "ok", "verification_note"] = "not verified: no subnet was found"
    here: dict[str, Any] | None = None
    for name, rows in table[table["status"] == "ok"].groupby(dataset_names(table), sort=False):
        sidecar = sidecars.get(name)
        if not sidecar:
            table.loc[rows.index, "verification_note"] = (
                f"not verified: no measurement record ({name}.json) for this dataset"
            )
            continue
        if sidecar.get("backend") != "lut":
            if here is None:
                here = detect_hardware(
                    gpu=any((s or {}).get("descriptor", {}).get("gpu") for s in sidecars.values())
                )
            if not same_machine(sidecar.get("descriptor"), here):
                where = (sidecar.get("descriptor") or {}).get("hostname")
                table.loc[rows.index, "verification_note"] = (
                    f"not verified: {name} was measured on {where}, not on this machine"
                )
                continue
        protocol = replace(Protocol.from_dict(sidecar.get("protocol") or {}), repeat_probe=0)
        with LocalMeasurer(
            sidecar["backend"], protocol, lut_dir=sidecar.get("lut_dir")
        ) as measurer:
            measurer.start()
            warn_if_reference_drifted(measurer, name)
            pending = rows.index
            _measure(measurer, table, pending, name=name, sidecar=sidecar, on_measured=on_measured)
            table.loc[pending, "first_measured_latency_ms"] = table.loc[
                pending, "measured_latency_ms"
            ]
            table.loc[pending, "first_macs"] = table.loc[pending, "macs"].astype(float)
            best: dict[Any, pd.Series] = {}
            _keep_best(table, pending, best)
            for _ in range(rounds if research is not None else 0):
                pending = pending[~_settled(table, pending)]
                if pending.empty:
                    break
                logger.info(
                    "%s: %d winner(s) measured more than %g%% from their budget; searching "
                    "again under scaled budgets",
                    name,
                    len(pending),
                    TOLERANCE * 100,
                )
                pending = _search_again(table, pending, name, research)
                if pending.empty:
                    break
                _measure(
                    measurer, table, pending, name=name, sidecar=sidecar, on_measured=on_measured
                )
                _keep_best(table, pending, best)
            searches = table.loc[rows.index, "verify_rounds"].copy()
            for row, record in best.items():
                table.loc[row, record.index] = record.to_numpy()
            table.loc[rows.index, "verify_rounds"] = searches
        for row in rows.index:
            record = table.loc[row]
            table.loc[row, "verification_note"] = (
                f"measured with {sidecar['backend']} on this machine"
                + (
                    f"; searched again {record['verify_rounds']} time(s), this winner under "
                    f"{record['search_budget_ms']:g} ms"
                    if record["verify_rounds"]
                    else ""
                )
            )
            logger.info(
                "Verified %s at %g ms: measured %.2f ms (predicted %.2f, %+.1f%%), %s",
                name,
                record["budget_ms"],
                record["measured_latency_ms"],
                record["predicted_latency_ms"],
                record["prediction_error"] * 100,
                "within budget"
                if record["measured_latency_ms"] <= record["budget_ms"]
                else f"{record['over_budget'] * 100:.1f}% over budget",
            )
    return table.infer_objects()


def verification_summary(table: pd.DataFrame) -> dict[str, Any]:
    verified = table[table["verified"] == True]  # noqa: E712 - a column of booleans
    first_over = verified["first_measured_latency_ms"] / verified["budget_ms"] - 1
    return {
        "rows": len(table),
        "verified": len(verified),
        "tolerance": TOLERANCE,
        "budgets_met": int(verified["budget_met"].astype(bool).sum()) if len(verified) else 0,
        "worst_over_budget": float(verified["over_budget"].max()) if len(verified) else None,
        "median_abs_prediction_error": float(verified["prediction_error"].abs().median())
        if len(verified)
        else None,
        "first_round": {
            "budgets_met": int((first_over <= TOLERANCE).sum()),
            "worst_over_budget": float(first_over.max()) if len(verified) else None,
        },
        "searched_again": int((verified["verify_rounds"] > 0).sum()) if len(verified) else 0,
        "notes": sorted(set(table["verification_note"].dropna())),
    }
