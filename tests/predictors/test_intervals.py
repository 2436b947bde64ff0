"""Calibrated intervals: conformal on subnets the predictor did not train on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ofa_latency_kedro import adapt_predictor
from ofa_latency_kedro.encoding import load_latency_csv, split_table
from ofa_latency_kedro.predictors import LatencyPredictor, PredictorError, train_predictor
from ofa_latency_kedro.predictors.metadata import Conformal
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.selection import pick_subnets

SEED = Path("seed_data")


def seed_split(shared_dir: Path, name: str) -> pd.DataFrame:
    """The seed's split of a file: its first 85% trained on (70% + 15% validation), its
    last 15% scored."""
    return split_table(
        load_latency_csv(shared_dir / SEED / "latency" / f"{name}.csv", merge=False), "seed"
    )


def coverage(predictor: LatencyPredictor, rows: pd.DataFrame) -> tuple[float, float]:
    batch = ArchBatch.from_frame(rows)
    low, high = predictor.predict_interval(batch, level=0.9)
    measured = rows["latency"].to_numpy()
    predicted = predictor.predict_batch(batch)
    inside = (measured >= low) & (measured <= high)
    return float(inside.mean() * 100), float(np.median((high - low) / 2 / predicted) * 100)


@pytest.fixture(scope="module")
def rtx(shared_dir: Path) -> tuple[LatencyPredictor, pd.DataFrame]:
    table = seed_split(shared_dir, "RTX_2080_Ti_GPU_ofa")
    return train_predictor(table), table


@pytest.mark.parametrize("name", ["RTX_2080_Ti_GPU_ofa", "Tesla_P40_GPU_ofa"])
def test_ninety_percent_intervals_cover_87_to_95_percent_of_the_seeds_last_rows(
    shared_dir: Path, name: str, rtx
):
    predictor, table = rtx if name.startswith("RTX") else (None, seed_split(shared_dir, name))
    predictor = predictor or train_predictor(table)
    covered, halfwidth = coverage(predictor, table[table["split"] == "test"])
    assert 87 <= covered <= 95 and halfwidth <= 4
    test = predictor.metrics["test"]  # the same figures, in the metrics table and MLflow
    assert test["interval_coverage"] == pytest.approx(covered)
    assert test["interval_halfwidth"] == pytest.approx(halfwidth)


def test_an_adapted_predictor_gets_intervals_from_its_cross_validation(shared_dir: Path, rtx):
    source, _ = rtx
    p40 = seed_split(shared_dir, "Tesla_P40_GPU_ofa")
    pool = p40[p40["split"] == "train"].reset_index(drop=True)
    test = p40[p40["split"] == "test"]
    covered = []
    for draw in (0, 1, 2):
        adapted = adapt_predictor(source, pick_subnets(pool, 20, seed=draw), seed=draw)
        assert adapted.metadata.conformal.source == "cross-validation inside 20 samples"
        covered.append(coverage(adapted, test)[0])
    assert np.mean(covered) >= 80


def test_intervals_survive_save_and_load_and_are_refused_without_calibration(
    shared_dir: Path, rtx, tmp_path: Path
):
    predictor, table = rtx
    batch = ArchBatch.from_frame(table.iloc[:20])
    loaded = LatencyPredictor.load(predictor.save(tmp_path / "p.pt"))
    np.testing.assert_array_equal(
        loaded.predict_interval(batch)[1], predictor.predict_interval(batch)[1]
    )
    seed = LatencyPredictor.load(
        shared_dir / SEED / "checkpoints" / "checkpoint_RTX_2080_Ti_GPU_ofa.pt"
    )
    with pytest.raises(PredictorError, match="carries no interval calibration"):
        seed.predict_interval(batch)
    calibrated = seed.with_intervals(table[table["split"] == "val"])
    low, high = calibrated.predict_interval(batch)
    assert np.all(low < calibrated.predict_batch(batch)) and np.all(
        calibrated.predict_batch(batch) < high
    )


def test_a_generalized_predictor_on_a_training_device_has_that_devices_intervals(shared_dir):
    folder = shared_dir / SEED / "latency"
    frames = [
        load_latency_csv(folder / f"{name}_ofa.csv").head(1500)
        for name in ("RTX_2080_Ti_GPU", "Tesla_P40_GPU")
    ]
    generalized = train_predictor(pd.concat(frames, ignore_index=True))
    head = generalized.for_device("Tesla_P40_GPU_ofa")
    low, high = head.predict_interval(ArchBatch.from_frame(frames[1].tail(300)))
    assert (
        np.all(high > low)
        and "validation rows of Tesla_P40_GPU_ofa" in head.metadata.conformal.source
    )


@given(
    residuals=st.lists(st.floats(-0.3, 0.3), min_size=5, max_size=200),
    level=st.floats(0.5, 0.95),
    recent=st.booleans(),
)
def test_bounds_widen_with_the_level_and_hold_the_residuals_they_claim(residuals, level, recent):
    conformal = Conformal(tuple(residuals), "test", 50.0 if recent else None)
    low, high = conformal.bounds(level)
    wider_low, wider_high = conformal.bounds(min(level + 0.04, 0.99))
    assert wider_low <= low <= high <= wider_high
    if not recent:
        values = np.asarray(residuals)
        assert np.mean((values >= low) & (values <= high)) >= level - 1 / len(values)


def test_recency_weights_follow_the_latest_drift():
    steady = [0.01, -0.01] * 300
    drifted = Conformal(tuple(steady + [-0.05] * 100), "test", 100.0).bounds(0.9)
    plain = Conformal(tuple(steady + [-0.05] * 100), "test", None).bounds(0.9)
    assert drifted[0] <= plain[0] and drifted[0] == pytest.approx(-0.05)


def test_a_predictor_of_few_rows_calibrates_on_out_of_fold_residuals_of_all_its_rows(
    shared_dir: Path,
):
    table = seed_split(shared_dir, "Tesla_P40_GPU_ofa").drop(columns="split").iloc[:300]
    predictor = train_predictor(table)
    rows = predictor.metadata.training["rows"]
    conformal = predictor.metadata.conformal
    assert len(conformal.log_residuals) == rows["train"] + rows["val"]
    assert conformal.source.startswith(f"cross-validation over {rows['train'] + rows['val']}")
    # held out: larger than the final predictor's errors on the rows it trained on
    fitted = split_table(table, "key")
    trained = fitted[fitted["split"] == "train"]
    in_sample = np.log(trained["latency"].to_numpy()) - np.log(
        predictor.predict_batch(ArchBatch.from_frame(trained))
    )
    assert np.abs(conformal.log_residuals).mean() > np.abs(in_sample).mean()
    low, high = conformal.bounds(0.9)
    assert np.isfinite([low, high]).all() and low < 0 < high
