"""The registry of predictor kinds, by name (as `measurement.backends` registers backends):
each kind says how to build its module, encode its inputs, predict, list its trainable heads
and, where `train_predictor` trains it, fit itself. A checkpoint names its kind; a
`TrainingConfig` names the kind to train.

``wide_deep``    the default per-device predictor (`WideDeepKind`)
``seed_mlp``     the seed's MLP and recipe, and the seed's checkpoints (`SeedMLPKind`)
``generalized``  one model over several devices, placed by an embedding (`GeneralizedKind`)
"""

from __future__ import annotations

from ofa_latency_kedro.predictors.kinds.base import Fitted, PredictorKind
from ofa_latency_kedro.predictors.kinds.generalized import GeneralizedKind
from ofa_latency_kedro.predictors.kinds.seed_mlp import SeedMLPKind
from ofa_latency_kedro.predictors.kinds.wide_deep import WideDeepKind
from ofa_latency_kedro.predictors.metadata import PredictorError

KINDS: dict[str, type[PredictorKind]] = {
    kind.name: kind for kind in (WideDeepKind, SeedMLPKind, GeneralizedKind)
}


def get_kind(name: str) -> type[PredictorKind]:
    """The kind registered as ``name``; a `PredictorError` lists the known ones."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise PredictorError(
            f"unknown predictor kind {name!r}; known: {', '.join(KINDS)}"
        ) from None


def trainable_kinds() -> tuple[str, ...]:
    """The kinds `train_predictor` trains from one device's table."""
    return tuple(name for name, kind in KINDS.items() if kind.trainable)


__all__ = ["KINDS", "Fitted", "PredictorKind", "get_kind", "trainable_kinds"]
