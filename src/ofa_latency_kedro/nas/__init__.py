"""Neural architecture search under latency budgets: OFA's accuracy predictor, batched
regularized evolution, verification by measurement."""

from ofa_latency_kedro.nas.accuracy import (
    ACC_PREDICTOR_URL,
    AccuracyPredictor,
    AccuracyPredictorUnavailable,
    ensure_accuracy_predictor,
    load_accuracy_predictor,
)
from ofa_latency_kedro.nas.evolution import EvolutionSettings
from ofa_latency_kedro.nas.search import OBJECTIVES, SearchSettings, run_nas
from ofa_latency_kedro.nas.verify import verify_results

__all__ = [
    "ACC_PREDICTOR_URL",
    "OBJECTIVES",
    "AccuracyPredictor",
    "AccuracyPredictorUnavailable",
    "EvolutionSettings",
    "SearchSettings",
    "ensure_accuracy_predictor",
    "load_accuracy_predictor",
    "run_nas",
    "verify_results",
]
