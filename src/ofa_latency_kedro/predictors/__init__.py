"""Latency predictors: models, training, Ray Tune search, metrics and checkpoints."""

from ofa_latency_kedro.predictors.adaptation import METHODS as ADAPTATION_METHODS
from ofa_latency_kedro.predictors.adaptation import adapt_predictor
from ofa_latency_kedro.predictors.generalization import train_generalized
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
    "ADAPTATION_METHODS",
    "METRIC_NAMES",
    "SEED_RECIPE",
    "LatencyPredictor",
    "PredictorError",
    "TrainingConfig",
    "adapt_predictor",
    "fit_prepared",
    "prepare_data",
    "regression_metrics",
    "train_generalized",
    "train_predictor",
]
