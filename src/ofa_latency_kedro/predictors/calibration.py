"""Output calibration of a latency predictor (`Calibration`, fitted by few-shot adaptation,
applied by `LatencyPredictor.predict`): ``log y = a + b log p``, blended with other devices'
predictions, plus optionally a ridge term in five standardised global costs of the subnet."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ofa_latency_kedro.predictors.fitting import penalised_least_squares
from ofa_latency_kedro.predictors.metadata import Calibration, PredictorError
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.network import block_cost_table

#: Global costs a calibration may weigh, in this order.
CALIBRATION_FEATURES = ("log_mmacs", "log_mparams", "log_activation_mb", "active_blocks", "r")
#: Ridge penalty (per standardised unit) of the cost-feature terms.
FEATURE_RIDGE = 1.0


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


def _log(values: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(values, 1e-6))


def fit_calibration(
    raw: np.ndarray,
    latency: np.ndarray,
    features: np.ndarray | None = None,
    source_predictions: Sequence[np.ndarray] = (),
) -> Calibration:
    """Least squares of log latency on the log prediction ``raw`` and the log predictions
    of the sources (blend weights, free), plus ridge on the standardised ``features``. From
    fewer than 4 samples only the shift ``a`` is fitted (``b`` = 1)."""
    if len(raw) < 4:
        return Calibration(
            a=float(np.mean(np.log(latency) - _log(raw))),
            b=1.0,
            source_weights=(0.0,) * len(source_predictions),
        )
    columns = [np.ones(len(raw)), _log(raw), *(_log(values) for values in source_predictions)]
    blended = len(columns)
    penalty = [0.0] * blended
    mean = std = None
    if features is not None:
        mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
        columns += list(((features - mean) / std).T)
        penalty += [FEATURE_RIDGE] * features.shape[1]
    solution = penalised_least_squares(np.stack(columns, axis=1), np.log(latency), penalty)
    return Calibration(
        a=float(solution[0]),
        b=float(solution[1]),
        source_weights=tuple(solution[2:blended].tolist()),
        features=None if features is None else CALIBRATION_FEATURES,
        mean=None if mean is None else tuple(mean.tolist()),
        std=None if std is None else tuple(std.tolist()),
        coef=None if features is None else tuple(solution[blended:].tolist()),
    )


def apply_calibration(
    calibration: Calibration,
    batch: ArchBatch,
    raw: np.ndarray,
    sources: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """A prediction ``raw`` (ms) mapped by ``calibration``, blended in log space with the
    predictions of its ``sources`` (other devices' predictors)."""
    if len(calibration.source_weights) != len(sources):
        raise PredictorError(
            f"the calibration blends {len(calibration.source_weights)} source predictor(s), "
            f"{len(sources)} given"
        )
    log_y = calibration.a + calibration.b * _log(raw)
    for weight, values in zip(calibration.source_weights, sources, strict=True):
        log_y = log_y + weight * _log(values)
    if calibration.coef:
        z = (calibration_features(batch) - np.asarray(calibration.mean)) / np.asarray(
            calibration.std
        )
        log_y = log_y + z @ np.asarray(calibration.coef)
    return np.exp(log_y)
