"""Regression metrics."""

import numpy as np
import pytest

from ofa_latency_kedro.predictors import regression_metrics


def test_metrics_by_hand():
    measured = np.array([10.0, 20.0, 40.0, 80.0])
    predicted = np.array([11.0, 19.0, 44.0, 80.0])
    metrics = regression_metrics(measured, predicted)
    assert metrics["mae"] == pytest.approx(1.5)
    assert metrics["rmse"] == pytest.approx(np.sqrt((1 + 1 + 16) / 4))
    assert metrics["mape"] == pytest.approx((10 + 5 + 10 + 0) / 4)
    assert metrics["within_5"] == 50.0
    assert metrics["within_10"] == 100.0
    assert metrics["spearman"] == pytest.approx(1.0)
    assert metrics["kendall"] == pytest.approx(1.0)
    assert metrics["n"] == 4


def test_degenerate_inputs():
    assert regression_metrics(np.array([]), np.array([]))["n"] == 0
    assert np.isnan(regression_metrics(np.array([5.0, 5.0]), np.array([4.0, 6.0]))["spearman"])
    with pytest.raises(ValueError, match="two equal 1-d arrays"):
        regression_metrics(np.ones(3), np.ones(2))
