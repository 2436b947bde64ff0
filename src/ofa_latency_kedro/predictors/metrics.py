"""Regression metrics of latency predictions, all in one place (scikit-learn's errors,
SciPy's rank correlations)."""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    root_mean_squared_error,
)

METRIC_NAMES = ("mae", "rmse", "mape", "within_5", "within_10", "spearman", "kendall")


def regression_metrics(true_ms: np.ndarray, predicted_ms: np.ndarray) -> dict[str, float]:
    """MAE and RMSE (ms), MAPE and the share within +-5% / +-10% (percent), Spearman and
    Kendall rank correlations, and the number of rows."""
    y = np.asarray(true_ms, dtype=np.float64)
    p = np.asarray(predicted_ms, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"metrics need two equal 1-d arrays, got {y.shape} and {p.shape}")
    if len(y) == 0:
        return {name: float("nan") for name in METRIC_NAMES} | {"n": 0}
    relative = np.abs(p - y) / y
    ranked = len(y) > 1 and np.ptp(y) > 0 and np.ptp(p) > 0
    return {
        "mae": float(mean_absolute_error(y, p)),
        "rmse": float(root_mean_squared_error(y, p)),
        "mape": float(mean_absolute_percentage_error(y, p) * 100),
        "within_5": float(np.mean(relative <= 0.05) * 100),
        "within_10": float(np.mean(relative <= 0.10) * 100),
        "spearman": float(stats.spearmanr(y, p).statistic) if ranked else float("nan"),
        "kendall": float(stats.kendalltau(y, p).statistic) if ranked else float("nan"),
        "n": int(len(y)),
    }


#: The interval figures of a predictor's test rows (percent), at `INTERVAL_LEVEL`.
INTERVAL_LEVEL = 0.9
INTERVAL_METRIC_NAMES = ("interval_coverage", "interval_halfwidth")


def interval_metrics(
    true_ms: np.ndarray, predicted_ms: np.ndarray, low_ms: np.ndarray, high_ms: np.ndarray
) -> dict[str, float]:
    """The share of measured latencies inside their interval, and the median half-width of
    the intervals relative to the prediction (both in percent)."""
    y = np.asarray(true_ms, dtype=np.float64)
    inside = (y >= low_ms) & (y <= high_ms)
    return {
        "interval_coverage": float(np.mean(inside) * 100),
        "interval_halfwidth": float(np.median((high_ms - low_ms) / 2 / predicted_ms) * 100),
    }
