"""LatencyRegressor: the default predictor as a scikit-learn estimator."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from ofa_latency_kedro import LatencyRegressor, ParameterError
from ofa_latency_kedro.predictors import TrainingConfig
from ofa_latency_kedro.search_space import Arch, ArchBatch


@pytest.fixture(scope="module")
def frame(shared_dir: Path) -> pd.DataFrame:
    return pd.read_csv(shared_dir / "seed_data" / "latency" / "RTX_2080_Ti_GPU_ofa.csv").head(1500)


def test_cross_val_score_of_the_default_estimator_on_seed_data(frame):
    scores = cross_val_score(LatencyRegressor(), frame[["child_arch"]], frame["latency"], cv=3)
    assert scores.shape == (3,) and scores.min() > 0.97  # R^2 of each held-out third


def test_its_parameters_are_the_training_settings_with_their_defaults():
    params = LatencyRegressor().get_params()
    defaults = TrainingConfig()
    for field in fields(TrainingConfig):
        assert params[field.name] == getattr(defaults, field.name)
    tuned = clone(LatencyRegressor(depth=1)).set_params(hidden=16, epochs=3)
    assert tuned.training_config() == TrainingConfig(depth=1, hidden=16, epochs=3)
    with pytest.raises(ParameterError, match="parameter 'LatencyRegressor.kind' must be one of"):
        LatencyRegressor(kind="xgboost").fit(["x"], [1.0])


def test_grid_search_and_a_pipeline(frame):
    small = frame.head(600)
    search = GridSearchCV(LatencyRegressor(epochs=5, hidden=16), {"depth": [0, 1]}, cv=2)
    search.fit(small[["child_arch"]], small["latency"])
    assert search.best_params_["depth"] in (0, 1)
    assert np.isfinite(search.predict(small[["child_arch"]].head(5))).all()
    pipeline = make_pipeline(
        FunctionTransformer(lambda table: table[["child_arch"]]), LatencyRegressor(epochs=5)
    )
    pipeline.fit(small.assign(note="ignored"), small["latency"])
    assert pipeline.score(small, small["latency"]) > 0.9


def test_archs_in_every_spelling_and_widths(frame):
    archs = [Arch.parse(text) for text in frame["child_arch"].head(400)]
    model = LatencyRegressor(epochs=5).fit(archs, frame["latency"].head(400))
    expected = model.predict(archs[:5])
    np.testing.assert_array_equal(model.predict([a.to_seed_dict() for a in archs[:5]]), expected)
    np.testing.assert_array_equal(model.predict(ArchBatch.from_archs(archs[:5])), expected)
    table = pd.DataFrame({"child_arch": [str(a) for a in archs[:5]], "width_mult": 1.0})
    np.testing.assert_array_equal(model.predict(table), expected)
    assert model.predictor.hardware is None and model.predictor.metrics["val"]["n"] == 60


def test_bad_input_is_named(frame):
    with pytest.raises(NotFittedError):
        LatencyRegressor().predict(frame[["child_arch"]])
    with pytest.raises(ParameterError, match="parameter 'X' a frame of subnets needs"):
        LatencyRegressor().fit(frame[["latency"]], frame["latency"])
    with pytest.raises(ParameterError, match="parameter 'y' has 2 latencies for 3 subnets"):
        LatencyRegressor().fit(frame["child_arch"].head(3).tolist(), [1.0, 2.0])
    with pytest.raises(ParameterError, match="'validation_fraction' must be between 0 and 1"):
        LatencyRegressor(validation_fraction=1.5).fit(frame[["child_arch"]], frame["latency"])
