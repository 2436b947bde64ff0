"""Verification: winners measured on their device; over budget, searched again tighter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ofa_latency_kedro.measurement import detect_hardware, measure
from ofa_latency_kedro.nas import verify_results
from ofa_latency_kedro.nas.search import RESULT_COLUMNS
from ofa_latency_kedro.nas.verify import TOLERANCE, verification_summary
from ofa_latency_kedro.search_space import Arch, ArchBatch, cost_table
from tests.measurement.test_drift import PROTOCOL as STEADY_PROTOCOL
from tests.measurement.test_drift import steady_ms, use_steady_backend

LARGE = Arch.parse({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": [224]}, width_mult=1.2)
MEDIUM = Arch.parse({"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5, "r": [192]}, width_mult=1.2)
SMALL = Arch.parse({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": [160]}, width_mult=1.2)


@pytest.fixture(scope="module")
def lut_dir(shared_dir: Path) -> Path:
    return shared_dir / "seed_data" / "latency_table@note10"


@pytest.fixture(scope="module")
def table_ms(lut_dir: Path) -> dict[str, float]:
    frame = measure([LARGE, MEDIUM, SMALL], backend="lut", lut_dir=lut_dir)
    return dict(zip(["large", "medium", "small"], frame["latency"], strict=True))


@pytest.fixture
def sidecars(lut_dir: Path) -> dict:
    """A lookup-table device is verified anywhere: the table is the device."""
    return {
        "note10_ofa": {"backend": "lut", "lut_dir": str(lut_dir), "hardware": "note10"},
    }


def result_row(arch: Arch, budget: float, predicted: float, **extra) -> dict:
    row = dict.fromkeys(RESULT_COLUMNS)
    row.update(
        hardware="note10",
        space="ofa",
        width_mult=arch.width_mult,
        budget_ms=budget,
        objective="macs",
        status="ok",
        predicted_latency_ms=predicted,
        macs=int(cost_table(ArchBatch.from_archs([arch])).macs[0]),
        params=1,
        resolution=arch.r,
        arch=arch.to_seed_string(),
        canonical_key=arch.canonical_key,
        **extra,
    )
    return row


def results(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows)).reindex(columns=list(RESULT_COLUMNS))


class Research:
    """A stand-in for the search: the next of ``archs`` (None: nothing found) per call, for
    every budget asked."""

    def __init__(self, *archs: Arch | None) -> None:
        self.archs = list(archs)
        self.calls: list[tuple[str, list[float]]] = []

    def __call__(self, name: str, rows: pd.DataFrame, budgets: list[float]) -> pd.DataFrame:
        arch = self.archs[min(len(self.calls), len(self.archs) - 1)]
        self.calls.append((name, budgets))
        if arch is None:
            found = [
                {**result_row(SMALL, b, np.nan), "status": "infeasible", "arch": None}
                for b in budgets
            ]
        else:
            found = [result_row(arch, b, b) for b in budgets]
        return results(*found)


def test_a_miss_is_searched_again_tighter_then_looser_and_the_best_fit_is_kept(sidecars, table_ms):
    large, medium, small = table_ms["large"], table_ms["medium"], table_ms["small"]
    budget = medium * 1.01
    settled = small * (1 + TOLERANCE / 2)
    candidates = results(
        result_row(LARGE, budget, budget * 0.95), result_row(SMALL, settled, small)
    )
    research = Research(SMALL, MEDIUM)  # too small after tightening, then a good fit
    table = verify_results(candidates, sidecars, research)
    tightened = round(budget * budget / large, 3)
    assert research.calls == [
        ("note10_ofa", [pytest.approx(tightened)]),
        ("note10_ofa", [pytest.approx(tightened * budget / small, abs=1e-3)]),
    ]
    first, second = table.iloc[0], table.iloc[1]
    assert first["arch"] == MEDIUM.to_seed_string() and first["verify_rounds"] == 2
    assert first["first_measured_latency_ms"] == pytest.approx(large)
    assert first["measured_latency_ms"] == pytest.approx(medium) and first["budget_met"]
    assert "searched again 2 time(s)" in first["verification_note"]
    assert second["verify_rounds"] == 0 and second["budget_met"]
    assert second["measured_latency_ms"] == pytest.approx(small)
    assert second["prediction_error"] == pytest.approx(0.0)
    summary = verification_summary(table)
    assert summary["verified"] == 2 and summary["budgets_met"] == 2
    assert summary["first_round"]["budgets_met"] == 1
    assert summary["first_round"]["worst_over_budget"] == pytest.approx(large / budget - 1)
    assert summary["searched_again"] == 1


def test_the_fittest_winner_within_budget_is_kept_over_later_misses(sidecars, table_ms):
    large, medium = table_ms["large"], table_ms["medium"]
    budget = medium * 1.1  # MEDIUM is within budget but leaves 10% of it unused
    research = Research(LARGE)  # the looser searches only find subnets over budget
    table = verify_results(results(result_row(MEDIUM, budget, budget)), sidecars, research)
    row = table.iloc[0]
    assert large > budget * (1 + TOLERANCE) and len(research.calls) == 3
    assert row["arch"] == MEDIUM.to_seed_string() and row["budget_met"]
    assert row["measured_latency_ms"] == pytest.approx(medium) and row["verify_rounds"] == 3
    assert row["search_budget_ms"] == budget


def test_rounds_are_bounded_and_a_miss_stays_marked(sidecars, table_ms):
    large = table_ms["large"]
    candidates = results(result_row(LARGE, large / 1.2, large / 1.2))
    research = Research(LARGE)  # a search that keeps returning the same subnet
    table = verify_results(candidates, sidecars, research, rounds=2)
    assert len(research.calls) == 2
    row = table.iloc[0]
    assert not row["budget_met"] and row["verify_rounds"] == 2
    assert row["over_budget"] == pytest.approx(0.2)
    assert verification_summary(table)["budgets_met"] == 0


def test_within_tolerance_is_met_without_a_new_search(sidecars, table_ms):
    large = table_ms["large"]
    budget = large / (1 + TOLERANCE / 2)
    research = Research(SMALL)
    table = verify_results(results(result_row(LARGE, budget, budget)), sidecars, research)
    assert research.calls == [] and table.iloc[0]["budget_met"]


def test_an_infeasible_tighter_budget_keeps_the_last_winner(sidecars, table_ms):
    large = table_ms["large"]
    candidates = results(result_row(LARGE, large / 1.2, large / 1.2))
    table = verify_results(candidates, sidecars, Research(None))
    row = table.iloc[0]
    assert row["status"] == "ok" and row["arch"] == LARGE.to_seed_string()
    assert not row["budget_met"] and row["measured_latency_ms"] == pytest.approx(large)


def test_without_research_a_miss_is_only_reported(sidecars, table_ms):
    large = table_ms["large"]
    table = verify_results(results(result_row(LARGE, large / 1.2, large)), sidecars)
    assert not table.iloc[0]["budget_met"] and table.iloc[0]["verify_rounds"] == 0


def test_other_machines_and_missing_records_are_left_unverified(table_ms):
    candidates = results(
        result_row(SMALL, 50, 10),
        {**result_row(SMALL, 50, 10), "hardware": "jetson"},
    )
    sidecars = {
        "note10_ofa": {
            "backend": "torch-cpu",
            "hardware": "note10",
            "descriptor": {"hostname": "a-phone-farm", "cpu_model": "Snapdragon"},
        }
    }
    research = Research(SMALL)
    table = verify_results(candidates, sidecars, research)
    assert not table["verified"].any() and research.calls == []
    assert table["measured_latency_ms"].isna().all()
    assert "measured on a-phone-farm, not on this machine" in table.iloc[0]["verification_note"]
    assert "no measurement record (jetson_ofa.json)" in table.iloc[1]["verification_note"]
    assert verification_summary(table)["verified"] == 0


def test_infeasible_results_are_not_measured(sidecars):
    row = {**result_row(SMALL, 0.1, np.nan), "status": "infeasible", "arch": None}
    table = verify_results(results(row), sidecars, Research(SMALL))
    assert not table.iloc[0]["verified"]
    assert table.iloc[0]["verification_note"] == "not verified: no subnet was found"


@pytest.mark.parametrize(("speed", "warned"), [(1.1, True), (1.04, False)])
def test_verification_warns_when_the_reference_moved_from_the_datasets_calibration(
    monkeypatch, caplog, speed, warned
):
    """A machine that now runs the reference ``speed`` times slower (see `SteadyBackend`):
    beyond 5% a warning with both figures; the winners are measured on the dataset's scale."""
    steady = use_steady_backend(monkeypatch, speed=speed)
    here = detect_hardware()
    sidecars = {
        "note10_ofa": {
            "backend": steady.name,
            "hardware": "note10",
            "descriptor": {"hostname": here["hostname"], "cpu_model": here["cpu_model"]},
            "protocol": {**STEADY_PROTOCOL.to_dict(), "reference": True, "reference_ms": 10.0},
        }
    }
    table = verify_results(results(result_row(SMALL, 50, 10)), sidecars)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    expected = (
        f"verifying note10_ofa: this machine's reference subnet now measures {10 * speed:.2f} "
        f"ms, the dataset's calibration 10.00 ms (+{speed - 1:.1%}): the machine runs slower "
        "than when the dataset was calibrated, by more than 5%; the dataset keeps its own scale "
        "(rows are reported relative to the reference and scaled by 10.00 ms); the winners are "
        "measured on that scale too, comparable with its rows"
    )
    assert warnings == ([expected] if warned else [])
    assert steady.calibrations == 1  # one reference measurement for the dataset's check
    assert table.iloc[0]["verified"]
    assert table.iloc[0]["measured_latency_ms"] == pytest.approx(steady_ms(SMALL))


def test_a_dataset_verified_after_another_was_searched_again_keeps_numeric_columns(
    sidecars, table_ms
):
    budget = table_ms["medium"] * 1.01
    other = {**result_row(MEDIUM, budget, budget), "hardware": "note10b"}
    candidates = results(result_row(LARGE, budget, budget * 0.95), other)
    both = {**sidecars, "note10b_ofa": sidecars["note10_ofa"]}
    table = verify_results(candidates, both, Research(MEDIUM))
    assert table["budget_met"].tolist() == [True, True]
    assert table["first_macs"].tolist() == [
        float(cost_table(ArchBatch.from_archs([arch])).macs[0]) for arch in (LARGE, MEDIUM)
    ]
    assert table["first_macs"].dtype == np.float64
