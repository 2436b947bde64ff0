"""Frontier sampling: new subnets drawn from searches near the latency budgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ofa_latency_kedro.encoding.loading import load_latency_csv
from ofa_latency_kedro.errors import LatencyDataError, ParameterError
from ofa_latency_kedro.nas.frontier import FrontierSettings, frontier_plan, search_offsets
from ofa_latency_kedro.predictors.training import train_predictor
from ofa_latency_kedro.search_space import Arch, ArchBatch, get_space
from ofa_latency_kedro.search_space.table import as_latency_table

#: Small searches: the tests check what is drawn, not how good the search is.
QUICK = FrontierSettings(searches=2, generations=20)


@pytest.fixture(scope="module")
def measured(shared_dir: Path) -> pd.DataFrame:
    """60 rows of the seed's Tesla P40 dataset: an initial random set."""
    table = load_latency_csv(shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv")
    return table.iloc[:60].reset_index(drop=True)


@pytest.fixture(scope="module")
def plan(measured: pd.DataFrame) -> pd.DataFrame:
    return frontier_plan(measured, 90, get_space("ofa"), settings=QUICK, seed=0, source="p40.csv")


def test_the_plan_holds_the_dataset_then_new_distinct_subnets(plan, measured):
    assert len(plan) == 90
    assert plan["canonical_key"].is_unique
    assert plan["canonical_key"].head(60).tolist() == measured["canonical_key"].tolist()
    assert plan[["budget_ms", "predicted_latency_ms"]].head(60).isna().all().all()
    new = plan.iloc[60:]
    assert not new["canonical_key"].isin(measured["canonical_key"]).any()
    assert all(get_space("ofa").contains(Arch.parse(text)) for text in new["child_arch"])


def test_new_subnets_are_predicted_near_the_auto_budgets_and_spread_over_them(plan, measured):
    predictor = train_predictor(measured, seed=0)
    spread = predictor.metadata.latency_ms
    budgets = [round(spread[k], 1) for k in ("p25", "median", "p75")]
    assert plan.attrs["budgets_ms"] == budgets
    new = plan.iloc[60:]
    assert new["budget_ms"].value_counts().to_dict() == dict.fromkeys(budgets, 10)
    predicted = predictor.predict_batch(
        ArchBatch.from_frame(as_latency_table(new.assign(latency=1.0)))
    )
    np.testing.assert_allclose(new["predicted_latency_ms"], predicted, rtol=1e-6)
    assert (np.abs(predicted / new["budget_ms"] - 1) <= QUICK.band).all()
    below = new["predicted_latency_ms"] < new["budget_ms"]
    assert below.any() and (~below).any()  # the band on both sides of each budget


def test_the_same_seed_gives_the_same_plan(plan, measured):
    again = frontier_plan(measured, 90, get_space("ofa"), settings=QUICK, seed=0)
    pd.testing.assert_frame_equal(again, plan)


def test_given_budgets_are_searched(measured):
    settings = FrontierSettings(constraints_ms="[30, 45]", searches=1, generations=10)
    plan = frontier_plan(measured, 70, get_space("ofa"), settings=settings)
    assert plan.attrs["budgets_ms"] == [30.0, 45.0]
    new = plan.iloc[60:]
    assert new["budget_ms"].value_counts().to_dict() == {30.0: 5, 45.0: 5}
    assert (np.abs(new["predicted_latency_ms"] / new["budget_ms"] - 1) <= settings.band).all()


def test_too_few_measured_subnets_is_an_error_naming_the_file_and_the_way_on(measured):
    with pytest.raises(LatencyDataError) as info:
        frontier_plan(measured.head(20), 90, get_space("ofa"), source="data/p40.csv")
    message = str(info.value)
    assert (
        "data/p40.csv holds 20 distinct subnets, fewer than sampling.frontier.min_rows (50)"
        in message
    )
    assert "sampling.strategy random" in message


def test_repeated_rows_count_once(measured):
    doubled = pd.concat([measured.head(30)] * 2, ignore_index=True)
    with pytest.raises(LatencyDataError, match="holds 30 distinct subnets, fewer than"):
        frontier_plan(doubled, 90, get_space("ofa"))


def test_a_dataset_that_holds_enough_gets_nothing_new(measured):
    plan = frontier_plan(measured, 50, get_space("ofa"))
    assert plan["canonical_key"].tolist() == measured["canonical_key"].tolist()
    assert plan.attrs["budgets_ms"] == []


def test_searches_that_end_with_too_few_subnets_are_topped_up_at_random(measured):
    settings = FrontierSettings(searches=1, generations=0, constraints_ms=40.0)
    plan = frontier_plan(measured, 60 + 400, get_space("ofa"), settings=settings)
    new = plan.iloc[60:]
    assert len(new) == 400 and plan["canonical_key"].is_unique
    searched = new["budget_ms"].notna()
    assert 0 < searched.sum() < 400
    assert new["predicted_latency_ms"][~searched].isna().all()


def test_the_searches_aim_over_the_band():
    np.testing.assert_allclose(search_offsets(FrontierSettings(band=0.1)), [-0.1 / 3, 0.1 / 3, 0.1])
    np.testing.assert_allclose(search_offsets(FrontierSettings(searches=1)), [0])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"band": 0}, "'band' must be between 0 and 1, got 0"),
        ({"min_rows": 5}, "'min_rows' must be at least 10"),
        ({"searches": 0}, "'searches' must be at least 1, got 0"),
        ({"constraints_ms": [-3]}, "'constraints_ms' must be positive numbers of ms"),
    ],
)
def test_bad_settings_are_named(values, message):
    with pytest.raises(ParameterError, match=message):
        FrontierSettings(**values)
