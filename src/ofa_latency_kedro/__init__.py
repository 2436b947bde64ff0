"""ofa-latency-kedro: measure, learn, transfer and search Once-For-All subnet latency.

The public API (stable for notebooks, benchmarks and outside scripts) is importable from the
package root; attributes load their modules on first use so that ``kedro`` commands start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC_API = {
    "OfaLatencyError": "ofa_latency_kedro.errors",
    "ParameterError": "ofa_latency_kedro.errors",
    "Arch": "ofa_latency_kedro.search_space",
    "ArchBatch": "ofa_latency_kedro.search_space",
    "ArchError": "ofa_latency_kedro.search_space",
    "SearchSpace": "ofa_latency_kedro.search_space",
    "get_space": "ofa_latency_kedro.search_space",
    "build_subnet": "ofa_latency_kedro.search_space",
    "subnet_stats": "ofa_latency_kedro.search_space",
    "net_config": "ofa_latency_kedro.search_space",
    "measure": "ofa_latency_kedro.measurement",
    "Protocol": "ofa_latency_kedro.measurement",
    "load_latency_csv": "ofa_latency_kedro.encoding",
    "train_predictor": "ofa_latency_kedro.predictors",
    "LatencyPredictor": "ofa_latency_kedro.predictors",
    "LatencyRegressor": "ofa_latency_kedro.predictors",
    "PredictorError": "ofa_latency_kedro.predictors",
    "adapt_predictor": "ofa_latency_kedro.predictors",
    "train_generalized": "ofa_latency_kedro.predictors",
    "AccuracyPredictor": "ofa_latency_kedro.nas",
    "load_accuracy_predictor": "ofa_latency_kedro.nas",
    "run_nas": "ofa_latency_kedro.nas",
    "verify_results": "ofa_latency_kedro.nas",
}

__all__ = [  # grouped as in the public API of the design
    "OfaLatencyError",
    "ParameterError",
    "Arch",
    "ArchBatch",
    "ArchError",
    "SearchSpace",
    "get_space",
    "build_subnet",
    "subnet_stats",
    "net_config",
    "measure",
    "Protocol",
    "load_latency_csv",
    "train_predictor",
    "LatencyPredictor",
    "LatencyRegressor",
    "PredictorError",
    "adapt_predictor",
    "train_generalized",
    "AccuracyPredictor",
    "load_accuracy_predictor",
    "run_nas",
    "verify_results",
]


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use."""
    if name in _PUBLIC_API:
        value = getattr(importlib.import_module(_PUBLIC_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ofa_latency_kedro' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC_API])
