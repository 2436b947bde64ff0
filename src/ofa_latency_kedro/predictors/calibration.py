"""Output calibration of a latency predictor (written by `adapt_predictor`, applied by
`LatencyPredictor.predict`): ``log y = a + b log p`` plus, optionally, a linear term in five
standardised global costs of the subnet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.network import block_cost_table

#: Global costs a calibration may weigh, in this order.
CALIBRATION_FEATURES = ("log_mmacs", "log_mparams", "log_activation_mb", "active_blocks", "r")


def calibration_features(batch: ArchBatch) -> np.ndarray:
    """(n, 5) `CALIBRATION_FEATURES` of every subnet."""
    costs = block_cost_table(batch)
    return np.stack(
        [
            np.log(costs.macs_exact / 1e6),
            np.log(costs.params / 1e6),
            np.log(costs.block_activations.sum(axis=1) * 4 / 1e6),
            batch.active_mask.sum(axis=1).astype(float),
            batch.r / 224.0,
        ],
        axis=1,
    )


def apply_calibration(
    calibration: dict[str, Any],
    batch: ArchBatch,
    raw: np.ndarray,
    sources: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """A prediction ``raw`` (ms) mapped by a stored calibration, blended in log space with
    the predictions of its ``sources`` (other devices' predictors) when it has weights for them."""
    log_y = calibration["a"] + calibration["b"] * np.log(np.maximum(raw, 1e-6))
    weights = calibration.get("source_weights") or []
    if len(weights) != len(sources):
        raise ValueError(
            f"the calibration blends {len(weights)} source predictor(s), {len(sources)} given"
        )
    for weight, values in zip(weights, sources, strict=True):
        log_y = log_y + weight * np.log(np.maximum(values, 1e-6))
    if calibration.get("coef"):
        z = (calibration_features(batch) - calibration["mean"]) / np.asarray(calibration["std"])
        log_y = log_y + z @ np.asarray(calibration["coef"])
    return np.exp(log_y)
