"""`run_nas`: batched regularized evolution under budgets, reproducible, never hanging."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.nas import AccuracyPredictorUnavailable, run_nas
from ofa_latency_kedro.nas.evolution import PredictionCache
from ofa_latency_kedro.nas.search import RESULT_COLUMNS, auto_budgets
from ofa_latency_kedro.predictors import LatencyPredictor, train_predictor
from ofa_latency_kedro.search_space import Arch, ArchBatch, get_space

FAST = {"population_size": 24, "generations": 15}


def test_winners_meet_their_budgets_and_the_same_seed_repeats(rtx_predictor, accuracy_predictor):
    first = run_nas(rtx_predictor, accuracy_predictor, [15, 25], objective="accuracy", **FAST)
    again = run_nas(rtx_predictor, accuracy_predictor, [15, 25], objective="accuracy", **FAST)
    assert list(first.columns) == list(RESULT_COLUMNS)
    pd.testing.assert_frame_equal(
        first.drop(columns="search_seconds"), again.drop(columns="search_seconds")
    )
    assert (first["status"] == "ok").all() and (first["objective"] == "accuracy").all()
    assert (first["predicted_latency_ms"] <= first["budget_ms"]).all()
    archs = [Arch.parse(text) for text in first["arch"]]
    np.testing.assert_allclose(rtx_predictor.predict(archs), first["predicted_latency_ms"])
    np.testing.assert_allclose(accuracy_predictor.predict(archs), first["predicted_accuracy"])
    assert first["canonical_key"].tolist() == [a.canonical_key for a in archs]
    assert first["predicted_accuracy"].iloc[1] > first["predicted_accuracy"].iloc[0]
    other = run_nas(rtx_predictor, accuracy_predictor, [15, 25], seed=1, **FAST)
    assert other["canonical_key"].tolist() != first["canonical_key"].tolist()


def test_an_infeasible_budget_is_marked_not_searched_forever(rtx_predictor, accuracy_predictor):
    results = run_nas(rtx_predictor, accuracy_predictor, [0.5, 20], **FAST)
    infeasible, ok = results.iloc[0], results.iloc[1]
    assert infeasible["status"] == "infeasible" and np.isnan(infeasible["predicted_latency_ms"])
    assert "no subnet of 'ofa' meets 0.5 ms" in infeasible["message"]
    assert ok["status"] == "ok" and ok["predicted_latency_ms"] <= 20


@pytest.mark.parametrize("budgets", [[], [0], [-3], [float("nan")], "[5, -1]"])
def test_budgets_must_be_positive(rtx_predictor, budgets):
    with pytest.raises(ParameterError, match="'constraints_ms' must be positive numbers of ms"):
        run_nas(rtx_predictor, None, budgets, objective="macs", **FAST)


def test_budgets_may_be_one_number_or_yaml_text(rtx_predictor):
    one = run_nas(rtx_predictor, None, 20, objective="macs", **FAST)
    text = run_nas(rtx_predictor, None, constraints_ms="[20]", objective="macs", **FAST)
    assert one["budget_ms"].tolist() == text["budget_ms"].tolist() == [20.0]
    with pytest.raises(ParameterError, match="must be a list of milliseconds or 'auto'"):
        run_nas(rtx_predictor, None, "fast", objective="macs", **FAST)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"population_size": 1}, "'population_size' must be at least 2, got 1"),
        ({"mutate_prob": 1.5}, "'mutate_prob' must be in [0, 1], got 1.5"),
        ({"generations": "many"}, "'generations' must be an integer, got 'many'"),
        (
            {"populaton_size": 10},
            "unknown parameter 'populaton_size'; did you mean 'population_size'",
        ),
        ({"space": "resnet"}, "'space' is not usable: unknown search space 'resnet'"),
        ({"resolutions": "all"}, "'resolutions' is not usable: unknown resolution set 'all'"),
    ],
)
def test_bad_search_arguments_are_named(rtx_predictor, arguments, message):
    with pytest.raises(ParameterError) as info:
        run_nas(rtx_predictor, None, [20], objective="macs", **{**FAST, **arguments})
    assert message in str(info.value)


def test_objective_is_recorded_and_auto_falls_back_with_a_warning(rtx_predictor, caplog):
    with caplog.at_level(logging.WARNING):
        results = run_nas(rtx_predictor, None, [20], objective="auto", **FAST)
    assert "searching with objective 'macs'" in caplog.text
    assert results["objective"].tolist() == ["macs"]
    assert results["predicted_accuracy"].isna().all() and results["macs"].iloc[0] > 0
    with pytest.raises(AccuracyPredictorUnavailable, match="acc_predictor.pth"):
        run_nas(rtx_predictor, None, [20], objective="accuracy", **FAST)
    with pytest.raises(ParameterError, match="'objective' must be one of 'accuracy', 'macs'"):
        run_nas(rtx_predictor, None, [20], objective="flops", **FAST)


def test_macs_objective_uses_the_budget_better_than_random_subnets(rtx_predictor):
    results = run_nas(rtx_predictor, None, [20], objective="macs", **FAST)
    space = get_space("ofa")
    random = ArchBatch.from_archs(space.sample(500, seed=0))
    latency = rtx_predictor.predict_batch(random)
    from ofa_latency_kedro.nas.search import macs_millions

    best_random = macs_millions(random)[latency <= 20].max()
    assert results["macs"].iloc[0] / 1e6 > best_random


@pytest.mark.parametrize("space", ["compofa", "compofa-elastic"])
def test_other_spaces_return_members_of_that_space(rtx_predictor, accuracy_predictor, space):
    results = run_nas(rtx_predictor, accuracy_predictor, [20], space=space, **FAST)
    assert results["space"].tolist() == [space]
    arch = Arch.parse(results["arch"].iloc[0])
    get_space(space).validate(arch)


def test_cache_keys_tell_resolutions_apart_and_ignore_inactive_blocks():
    calls = []

    def predict(batch: ArchBatch) -> np.ndarray:
        calls.append(len(batch))
        return batch.r.astype(float)

    cache = PredictionCache(predict)
    base = Arch.parse({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": [160]})
    genes = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5}
    genes["ks"][3] = 7  # block 3 of stage 0 is inactive at depth 2
    same = Arch.parse({**genes, "r": [160]})
    larger = base.replace(r=224)
    values = cache(ArchBatch.from_archs([base, same, larger]))
    assert values.tolist() == [160.0, 160.0, 224.0]
    assert calls == [2]
    cache(ArchBatch.from_archs([larger, same]))
    assert calls == [2] and cache.predicted == 2


@pytest.fixture(scope="module")
def trained_predictor(shared_dir: Path) -> LatencyPredictor:
    """A predictor of ours, trained at the seed's resolutions 160..224."""
    table = load_latency_csv(shared_dir / "seed_data" / "latency" / "RTX_2080_Ti_GPU_ofa.csv")
    return train_predictor(table.iloc[:400], config={"depth": 0})


def test_resolutions_stay_inside_the_predictors_trained_range(trained_predictor, caplog):
    with caplog.at_level(logging.WARNING):
        results = run_nas(
            trained_predictor, None, [12, 30], objective="macs", resolutions="ofa", **FAST
        )
    assert "Searching resolutions" in caplog.text
    assert results["resolution"].between(160, 224).all()
    with pytest.raises(ParameterError, match="'resolutions' leaves nothing to search: .*none of"):
        run_nas(trained_predictor, None, [12], objective="macs", resolutions=[128, 132], **FAST)


def test_auto_budgets_are_quartiles_of_the_training_latencies(trained_predictor, rtx_predictor):
    budgets = auto_budgets(trained_predictor)
    assert budgets == sorted(budgets) and len(budgets) == 3
    results = run_nas(trained_predictor, None, "auto", objective="macs", **FAST)
    assert results["budget_ms"].tolist() == budgets
    with pytest.raises(ParameterError, match="'constraints_ms' is auto, but .* list of millisec"):
        auto_budgets(rtx_predictor)


def test_the_interval_rule_keeps_winners_whose_upper_bound_meets_the_budget(trained_predictor):
    budgets = [14.0, 20.0]
    safe = run_nas(trained_predictor, None, budgets, objective="macs", **FAST)
    plain = run_nas(trained_predictor, None, budgets, objective="macs", safety="none", **FAST)
    assert (safe["safety"] == "interval").all() and (plain["safety"] == "none").all()
    archs = [Arch.parse(text) for text in safe["arch"]]
    _, high = trained_predictor.predict_interval(archs, level=0.9)
    np.testing.assert_allclose(safe["predicted_upper_ms"], high, rtol=1e-5)
    assert (safe["predicted_upper_ms"] <= safe["budget_ms"]).all()
    assert (high > safe["predicted_latency_ms"]).all()
    assert plain["predicted_upper_ms"].isna().all()
    assert (plain["predicted_latency_ms"] <= plain["budget_ms"]).all()
    assert (safe["predicted_latency_ms"] < plain["predicted_latency_ms"]).all()


def test_a_wider_safety_level_leaves_more_room_under_the_budget(trained_predictor):
    narrow = run_nas(trained_predictor, None, [20], objective="macs", safety_level=0.5, **FAST)
    wide = run_nas(trained_predictor, None, [20], objective="macs", safety_level=0.9, **FAST)
    assert wide["predicted_latency_ms"].iloc[0] < narrow["predicted_latency_ms"].iloc[0]
    with pytest.raises(ParameterError, match="'safety_level' must be between 0 and 1"):
        run_nas(trained_predictor, None, [20], objective="macs", safety_level=1.0, **FAST)
    with pytest.raises(
        ParameterError, match="'safety' must be one of 'interval', 'none', got 'upper'"
    ):
        run_nas(trained_predictor, None, [20], objective="macs", safety="upper", **FAST)


def test_a_predictor_without_intervals_is_searched_on_its_prediction_and_says_so(
    rtx_predictor, trained_predictor, caplog
):
    with caplog.at_level(logging.WARNING):
        results = run_nas(rtx_predictor, None, [20], objective="macs", **FAST)
    assert "carries no interval calibration: searching with nas.safety none" in caplog.text
    assert results["safety"].tolist() == ["none"]
    assert results["predicted_upper_ms"].isna().all()
    few = len(trained_predictor.metadata.conformal.log_residuals)
    level = 1 - 1 / (few + 1)  # beyond what so many residuals bound
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        results = run_nas(
            trained_predictor, None, [20], objective="macs", safety_level=level, **FAST
        )
    assert f"({few} residuals, " in caplog.text and "too small for a bounded" in caplog.text
    assert results["safety"].tolist() == ["none"]
