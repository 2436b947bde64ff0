"""The one-call few-shot path: `train_predictor` on several devices, then `adapt_predictor`
on the generalized predictor it gives, which carries each device's own predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ofa_latency_kedro import adapt_predictor
from ofa_latency_kedro.predictors import (
    LatencyPredictor,
    PredictorError,
    regression_metrics,
    train_predictor,
)
from ofa_latency_kedro.predictors.adaptation import METHODS, applies
from ofa_latency_kedro.search_space import ArchBatch, get_space
from tests.helpers import seed_ofa_devices

#: Today's one-call path: every method but the one that blends the carried predictors.
GENERALIZED_ONLY = tuple(m for m in METHODS if m != "calibrate_devices")


@pytest.fixture(scope="module")
def table(shared_dir: Path) -> pd.DataFrame:
    return seed_ofa_devices(shared_dir, 1000)


@pytest.fixture(scope="module")
def generalized(table) -> LatencyPredictor:
    known = table[table["hardware"] != "Tesla_P40_GPU"]
    return train_predictor(known, config={"epochs": 20})


@pytest.fixture(scope="module")
def p40(table) -> dict[str, pd.DataFrame]:
    rows = table[table["hardware"] == "Tesla_P40_GPU"]
    return {"pool": rows[rows["split"] != "test"], "test": rows[rows["split"] == "test"]}


def test_a_multi_device_predictor_carries_each_devices_own_predictor(generalized, table):
    assert generalized.kind == "generalized"
    assert [(m.kind, m.hardware, m.space, m.width_mult) for m in generalized.sources] == [
        ("wide_deep", "RTX_2080_Ti_GPU", "ofa", 1.0),
        ("wide_deep", "note10_lookuptable", "ofa", 1.2),
    ]
    for member in generalized.sources:
        test = table[(table["split"] == "test") & (table["hardware"] == member.hardware)]
        assert member.metadata.training["rows"]["test"] == len(test)  # the table's own split
        assert member.metadata.conformal is not None


def test_it_round_trips_through_save_and_load_with_its_devices(generalized, tmp_path: Path):
    loaded = LatencyPredictor.load(generalized.save(tmp_path / "generalized.pt"))
    assert loaded.devices == generalized.devices
    assert [m.hardware for m in loaded.sources] == [m.hardware for m in generalized.sources]
    archs = get_space("ofa").sample(40, seed=3)
    np.testing.assert_allclose(
        loaded.for_device("RTX_2080_Ti_GPU_ofa").predict(archs),
        generalized.for_device("RTX_2080_Ti_GPU_ofa").predict(archs),
    )
    for before, after in zip(generalized.sources, loaded.sources, strict=True):
        batch = before.own_network(ArchBatch.from_archs(archs))
        np.testing.assert_allclose(after.predict_batch(batch), before.predict_batch(batch))


def test_calibrate_devices_is_offered_only_to_predictors_that_carry_devices(generalized, p40):
    assert applies(generalized, "calibrate_devices")
    bare = generalized.replace(sources=())
    assert not applies(bare, "calibrate_devices")
    assert not applies(generalized.sources[0], "calibrate_devices")
    few = p40["pool"].iloc[:20]
    with pytest.raises(PredictorError, match="'calibrate_devices' does not adapt"):
        adapt_predictor(bare, few, method="calibrate_devices")
    assert "calibrate_devices" not in adapt_predictor(bare, few).metadata.adaptation.cv_mape
    calibrated = adapt_predictor(generalized, few, method="calibrate")
    assert not applies(calibrated, "calibrate_devices")  # its sources are blended, not carried


def test_calibrate_devices_adapts_saves_and_gives_intervals(generalized, p40, tmp_path: Path):
    adapted = adapt_predictor(generalized, p40["pool"].iloc[:20], method="calibrate_devices")
    assert adapted.metadata.adaptation.method == "calibrate_devices"
    assert adapted.hardware == "Tesla_P40_GPU" and adapted.width_mult == 1.0
    assert [s.hardware for s in adapted.sources] == ["note10_lookuptable"]
    batch = ArchBatch.from_frame(p40["test"])
    loaded = LatencyPredictor.load(adapted.save(tmp_path / "p40.pt"))
    np.testing.assert_allclose(loaded.predict_batch(batch), adapted.predict_batch(batch))
    low, high = loaded.predict_interval(batch, level=0.9)
    predicted = loaded.predict_batch(batch)
    assert np.all(low < predicted) and np.all(predicted < high)


def test_one_call_adaptation_is_at_least_as_accurate_as_the_generalized_model_alone(
    generalized, p40
):
    truth = p40["test"]["latency"].to_numpy()
    batch = ArchBatch.from_frame(p40["test"])
    error: dict[str, list[float]] = {"now": [], "generalized only": []}
    for draw in range(3):
        few = p40["pool"].sample(20, random_state=draw)
        for name, methods in (("now", tuple(METHODS)), ("generalized only", GENERALIZED_ONLY)):
            adapted = adapt_predictor(generalized, few, seed=draw, methods=methods)
            error[name].append(regression_metrics(truth, adapted.predict_batch(batch))["mape"])
    assert np.mean(error["now"]) <= np.mean(error["generalized only"])
