"""Few-shot adaptation: a source predictor carried to a new device from K samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ofa_latency_kedro import adapt_predictor
from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.predictors import (
    ADAPTATION_METHODS,
    LatencyPredictor,
    regression_metrics,
    train_predictor,
)
from ofa_latency_kedro.predictors.adaptation import applies, cross_validated_mape
from ofa_latency_kedro.search_space import ArchBatch, get_space


@pytest.fixture(scope="module")
def tables(shared_dir: Path) -> dict[str, pd.DataFrame]:
    folder = shared_dir / "seed_data" / "latency"
    return {
        "rtx": load_latency_csv(folder / "RTX_2080_Ti_GPU_ofa.csv").iloc[:1500],
        "p40": load_latency_csv(folder / "Tesla_P40_GPU_ofa.csv"),
    }


#: What adapts a per-device predictor: every method but the generalized model's (its
#: embedding, the devices it carries).
PER_DEVICE_METHODS = tuple(
    m for m in ADAPTATION_METHODS if m not in ("embedding", "calibrate_devices")
)


@pytest.fixture(scope="module")
def source(tables) -> LatencyPredictor:
    return train_predictor(tables["rtx"], config={"epochs": 20})


def test_methods_that_apply_to_a_per_device_predictor(source):
    assert tuple(m for m in ADAPTATION_METHODS if applies(source, m)) == PER_DEVICE_METHODS
    with pytest.raises(ValueError, match="'embedding' does not adapt a wide_deep predictor"):
        adapt_predictor(source, pd.DataFrame(), method="embedding")


def p40_error(predictor: LatencyPredictor, tables) -> dict[str, float]:
    test = tables["p40"].iloc[-1500:]
    return regression_metrics(test["latency"].to_numpy(), predictor.predict(test["child_arch"]))


def test_twenty_samples_beat_the_source_on_the_new_device(source, tables):
    few = tables["p40"].iloc[:20]
    adapted = adapt_predictor(source, few, seed=0)
    before, after = p40_error(source, tables), p40_error(adapted, tables)
    info = adapted.metadata.adaptation
    assert info.method in PER_DEVICE_METHODS and info.k == 20
    assert set(info.cv_mape) == set(PER_DEVICE_METHODS)
    assert info.cv_mape[info.method] == min(info.cv_mape.values())
    assert adapted.hardware == "Tesla_P40_GPU" and info.source_hardware == "RTX_2080_Ti_GPU"
    assert after["mape"] < before["mape"] / 3 and after["spearman"] > 0.98


@pytest.mark.parametrize("method", PER_DEVICE_METHODS)
def test_each_method_adapts_and_survives_save_and_load(source, tables, method, tmp_path: Path):
    adapted = adapt_predictor(source, tables["p40"].iloc[:30], method=method)
    assert adapted.metadata.adaptation.method == method
    assert p40_error(adapted, tables)["mape"] < p40_error(source, tables)["mape"]
    loaded = LatencyPredictor.load(adapted.save(tmp_path / "p40.pt"))
    archs = get_space("ofa").sample(50, seed=1)
    np.testing.assert_allclose(loaded.predict(archs), adapted.predict(archs), rtol=1e-6)


def test_a_blend_with_an_unlike_device_is_saved_with_its_sources(
    source, tables, shared_dir: Path, tmp_path: Path
):
    folder = shared_dir / "seed_data" / "latency"
    note10 = train_predictor(
        load_latency_csv(
            folder / "note10_lookuptable_ofa.csv", width_mult={"note10_lookuptable": 1.2}
        ).iloc[:1500]
    )
    few = tables["p40"].iloc[:20]
    blended = adapt_predictor(source, few, method="calibrate_features", sources=[note10])
    assert blended.metadata.adaptation.blended_sources == ("note10_lookuptable",)
    weights = blended.metadata.calibration.source_weights
    assert len(weights) == 1 and weights[0] != 0
    assert p40_error(blended, tables)["mape"] < p40_error(source, tables)["mape"] / 3
    loaded = LatencyPredictor.load(blended.save(tmp_path / "blend.pt"))
    assert [s.hardware for s in loaded.sources] == ["note10_lookuptable"]
    archs = get_space("ofa").sample(50, seed=6)
    np.testing.assert_allclose(loaded.predict(archs), blended.predict(archs), rtol=1e-6)


def test_the_source_is_left_unchanged(source, tables):
    archs = get_space("ofa").sample(20, seed=2)
    before = source.predict(archs)
    adapt_predictor(source, tables["p40"].iloc[:15], method="finetune")
    adapt_predictor(source, tables["p40"].iloc[:15], method="last_layer")
    np.testing.assert_array_equal(source.predict(archs), before)
    assert source.metadata.adaptation is None and source.metadata.calibration is None


def test_a_pure_rescaling_is_recovered_exactly_by_calibration(source):
    archs = get_space("ofa").sample(12, seed=3)
    few = pd.DataFrame(
        {"child_arch": [a.to_seed_string() for a in archs], "latency": 2.5 * source.predict(archs)}
    )
    adapted = adapt_predictor(source, few, method="calibrate")
    others = get_space("ofa").sample(100, seed=4)
    np.testing.assert_allclose(adapted.predict(others), 2.5 * source.predict(others), rtol=1e-6)
    batch = ArchBatch.from_archs(archs)
    assert cross_validated_mape(source, batch, 2.5 * source.predict(archs), "calibrate") < 1e-4


def test_bad_samples_are_named(source, tmp_path: Path):
    with pytest.raises(ValueError, match="at least 3 distinct measured subnets, got 0"):
        adapt_predictor(source, pd.DataFrame({"child_arch": [], "latency": []}))
    archs = [a.to_seed_string() for a in get_space("ofa").sample(5, seed=5)]
    few = pd.DataFrame({"child_arch": archs, "latency": [5.0, 6.0, -1.0, 7.0, 8.0]})
    with pytest.raises(ValueError, match="line 4: field 'latency' has value -1.0"):
        adapt_predictor(source, few)
    with pytest.raises(ValueError, match="parameter 'method' must be auto or one of"):
        adapt_predictor(source, few.assign(latency=5.0), method="magic")


def test_more_sources_than_samples_still_calibrate(source, tables):
    few = tables["p40"].iloc[:5]
    adapted = adapt_predictor(source, few, method="calibrate", sources=[source] * 6)
    assert np.isfinite(adapted.predict(tables["p40"]["child_arch"].iloc[-50:])).all()


def test_repeats_of_one_subnet_are_one_sample(source, tables):
    p40 = tables["p40"]
    repeated = pd.concat([p40.iloc[:1]] * 20, ignore_index=True)
    with pytest.raises(ValueError, match="at least 3 distinct measured subnets, got 1 in 20 rows"):
        adapt_predictor(source, repeated)
    few = pd.concat([p40.iloc[:12]] * 2, ignore_index=True)  # every subnet measured twice
    adapted = adapt_predictor(source, few)
    assert adapted.metadata.adaptation.k == 12
    honest = adapt_predictor(source, p40.iloc[:12])
    assert adapted.metadata.adaptation.cv_mape == pytest.approx(honest.metadata.adaptation.cv_mape)


def test_a_device_of_another_width_family_is_predicted_on_its_own_network(
    source, tables, shared_dir: Path
):
    note10 = load_latency_csv(
        shared_dir / "seed_data" / "latency" / "note10_lookuptable_ofa.csv",
        width_mult={"note10_lookuptable": 1.2},
    )
    adapted = adapt_predictor(source, note10.iloc[:30], method="calibrate_features")
    assert (adapted.width_mult, adapted.metadata.network_width_mult) == (1.2, 1.0)
    test = note10.iloc[-1000:]
    metrics = regression_metrics(
        test["latency"].to_numpy(), adapted.predict_batch(ArchBatch.from_frame(test))
    )
    assert metrics["spearman"] > 0.98 and metrics["mape"] < 8
    with pytest.raises(ValueError, match="width_mult 1.0; .* width-1.2 network"):
        adapted.predict(tables["p40"]["child_arch"].iloc[:3])
