"""What a predictor is, as frozen values: nothing changes it behind its back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ofa_latency_kedro.predictors import (
    Calibration,
    DeviceEmbedding,
    LatencyPredictor,
    PredictorError,
    PredictorMetadata,
)
from ofa_latency_kedro.search_space import get_space

V1 = Path(__file__).parent / "checkpoints_v1"


@pytest.fixture(scope="module")
def predictor() -> LatencyPredictor:
    return LatencyPredictor.load(V1 / "wide_deep.pt")


def test_metadata_and_what_it_holds_cannot_be_changed(predictor):
    metadata = predictor.metadata
    with pytest.raises(dataclasses.FrozenInstanceError):
        metadata.hardware = "elsewhere"
    with pytest.raises(TypeError):
        metadata.training["rows"]["train"] = 1
    with pytest.raises(TypeError):
        metadata.metrics["test"] = {}
    assert isinstance(metadata.history["val_mae"], tuple)


def test_a_derived_predictor_is_a_new_one(predictor):
    archs = get_space("ofa").sample(3, seed=0)
    renamed = predictor.replace(hardware="other", metrics={})
    assert renamed is not predictor and renamed.module is predictor.module
    assert predictor.hardware == "RTX_2080_Ti_GPU" and renamed.hardware == "other"
    assert predictor.metrics and not renamed.metrics
    calibrated = predictor.replace(calibration=Calibration(a=np.log(2.0), b=1.0))
    np.testing.assert_allclose(calibrated.predict(archs), 2 * predictor.predict(archs))
    np.testing.assert_array_equal(
        calibrated.uncalibrated().predict(archs), predictor.predict(archs)
    )


def test_the_json_round_trip_is_exact_and_strict(predictor):
    values = predictor.metadata.to_dict()
    assert PredictorMetadata.from_dict(values) == predictor.metadata
    assert PredictorMetadata.from_dict({**values, "mlflow_run_id": "abc"}) == predictor.metadata
    with pytest.raises(PredictorError, match="unknown predictor metadata field"):
        PredictorMetadata.from_dict({**values, "colour": "blue"})
    with pytest.raises(PredictorError, match="needs kind, encoder and architecture"):
        PredictorMetadata.from_dict({"kind": "wide_deep"})


def test_embeddings_are_built_in_one_place():
    assert DeviceEmbedding.of_device(1, 3, "b").weights == (0.0, 1.0, 0.0)
    assert DeviceEmbedding.average([0, 2], 3).weights == (0.5, 0.0, 0.5)
    blend = DeviceEmbedding.blend(
        [1, 2], np.array([0.25, 0.75]), devices=3, intercept=0.1, fitted_on=10, prior=5.0
    )
    assert blend.weights == (0.0, 0.25, 0.75) and blend.prior == 5.0
    assert DeviceEmbedding.from_dict(blend.to_dict()) == blend
    with pytest.raises(PredictorError, match="finite numbers"):
        DeviceEmbedding(float("nan"), (1.0,))
    generalized = LatencyPredictor.load(V1 / "generalized_p40.pt")
    with pytest.raises(PredictorError, match="weighs 3 devices, the predictor was trained on 2"):
        generalized.metadata.replace(embedding=DeviceEmbedding(0.0, (1.0, 0.0, 0.0)))
