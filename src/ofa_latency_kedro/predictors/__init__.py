"""Latency predictors: models, training, Ray Tune search, metrics and checkpoints."""

from ofa_latency_kedro.predictors.metrics import METRIC_NAMES, regression_metrics
from ofa_latency_kedro.predictors.predictor import LatencyPredictor, PredictorError
from ofa_latency_kedro.predictors.training import (
    SEED_RECIPE,
    TrainingConfig,
    fit_prepared,
    prepare_data,
    train_predictor,
)

__all__ = [
    "METRIC_NAMES",
    "SEED_RECIPE",
    "LatencyPredictor",
    "PredictorError",
    "TrainingConfig",
    "fit_prepared",
    "prepare_data",
    "regression_metrics",
    "train_predictor",
]
