"""Latency predictors: the kinds registry, training, Ray Tune search, few-shot adaptation,
the generalized model, metrics, checkpoints and a scikit-learn estimator."""

from ofa_latency_kedro.predictors.adaptation import METHODS as ADAPTATION_METHODS
from ofa_latency_kedro.predictors.adaptation import adapt_predictor
from ofa_latency_kedro.predictors.config import SEED_RECIPE, GeneralizedConfig, TrainingConfig
from ofa_latency_kedro.predictors.data import PreparedData
from ofa_latency_kedro.predictors.estimator import LatencyRegressor
from ofa_latency_kedro.predictors.generalization import train_generalized
from ofa_latency_kedro.predictors.kinds import KINDS, get_kind
from ofa_latency_kedro.predictors.metadata import (
    AdaptationRecord,
    Calibration,
    DeviceEmbedding,
    PredictorError,
    PredictorMetadata,
)
from ofa_latency_kedro.predictors.metrics import METRIC_NAMES, regression_metrics
from ofa_latency_kedro.predictors.predictor import LatencyPredictor
from ofa_latency_kedro.predictors.training import fit_prepared, prepare_data, train_predictor

__all__ = [
    "ADAPTATION_METHODS",
    "KINDS",
    "METRIC_NAMES",
    "SEED_RECIPE",
    "AdaptationRecord",
    "Calibration",
    "DeviceEmbedding",
    "GeneralizedConfig",
    "LatencyPredictor",
    "LatencyRegressor",
    "PredictorError",
    "PredictorMetadata",
    "PreparedData",
    "TrainingConfig",
    "adapt_predictor",
    "fit_prepared",
    "get_kind",
    "prepare_data",
    "regression_metrics",
    "train_generalized",
    "train_predictor",
]
