"""Placing a generalized predictor on a device: its `DeviceEmbedding` (a non-negative blend of
the training devices' log latencies and a speed), fitted from a few measurements of the
device, or the plain average of the training devices of its space when nothing is known."""

from __future__ import annotations

import numpy as np

from ofa_latency_kedro.predictors.fitting import penalised_least_squares
from ofa_latency_kedro.predictors.metadata import DeviceEmbedding, PredictorError
from ofa_latency_kedro.predictors.predictor import LatencyPredictor
from ofa_latency_kedro.search_space import ArchBatch

#: How many samples' worth of pull the embedding's blend may feel towards the average
#: device; the strength is chosen by leave-one-out inside the samples.
EMBEDDING_PRIORS = (0.5, 5.0, 50.0)


def blended_devices(predictor: LatencyPredictor, space: str | None) -> np.ndarray:
    """Indices of the training devices an embedding blends: those whose dataset is of
    ``space`` (a head trained on another space's subnets has not seen this one's, e.g. a
    fixed-kernel space's head and kernel 7), or all of them when none is."""
    spaces = predictor.metadata.device_spaces or (None,) * len(predictor.devices)
    same = [index for index, name in enumerate(spaces) if name == space]
    return np.array(same or range(len(spaces)))


def average_embedding(predictor: LatencyPredictor, space: str | None) -> DeviceEmbedding:
    """The plain average of the training devices of ``space``: where a generalized predictor
    stands on a device it knows nothing about."""
    return DeviceEmbedding.average(blended_devices(predictor, space), len(predictor.devices))


def _nonnegative_blend(
    columns: np.ndarray, target: np.ndarray, prior: float, average: np.ndarray
) -> np.ndarray:
    """Non-negative least squares of the centred target on the centred columns, pulled
    towards ``average`` with the weight of ``prior`` samples."""
    centred = columns - columns.mean(axis=0)
    pull = prior * centred.var(axis=0).mean()
    return penalised_least_squares(
        centred,
        target - target.mean(),
        np.full(columns.shape[1], pull),
        prior=average,
        nonnegative=True,
    )


def _held_out_error(
    columns: np.ndarray, target: np.ndarray, prior: float, average: np.ndarray
) -> float:
    """Mean squared log error of each sample predicted by a blend fitted on the others."""
    errors = []
    for held in range(len(target)):
        keep = np.arange(len(target)) != held
        blend = _nonnegative_blend(columns[keep], target[keep], prior, average)
        intercept = np.mean(target[keep] - columns[keep] @ blend)
        errors.append((intercept + columns[held] @ blend - target[held]) ** 2)
    return float(np.mean(errors))


def fit_embedding(
    predictor: LatencyPredictor,
    batch: ArchBatch,
    latency: np.ndarray,
    *,
    space: str | None = None,
) -> DeviceEmbedding:
    """The embedding of a device from its latency of a few subnets: non-negative blend
    weights of the training devices' log latencies and a free intercept, by least squares in
    log space, pulled towards the plain average of the devices (ten measurements are noisy;
    devices are alike more often than not) with the weight of a number of samples
    (`EMBEDDING_PRIORS`) chosen by leave-one-out inside the samples. With fewer samples than
    devices + 2 only the intercept is fitted. Only the devices of ``space`` are blended
    (`blended_devices`)."""
    if predictor.kind != "generalized":
        raise PredictorError(
            "the embedding method adapts a generalized predictor (train_generalized); "
            f"this one is {predictor.kind}"
        )
    chosen = blended_devices(predictor, space)
    columns = predictor.device_log_latency(batch)[:, chosen]
    target = np.log(latency)
    average = np.full(len(chosen), 1 / len(chosen))
    if len(latency) < len(chosen) + 2:
        blend, prior = average, None
    else:
        errors = {p: _held_out_error(columns, target, p, average) for p in EMBEDDING_PRIORS}
        prior = min(EMBEDDING_PRIORS, key=lambda p: (round(errors[p], 12), -p))
        blend = _nonnegative_blend(columns, target, prior, average)
    intercept = float(np.mean(target - columns @ blend))
    return DeviceEmbedding.blend(
        chosen,
        blend,
        devices=len(predictor.devices),
        intercept=intercept,
        fitted_on=len(latency),
        prior=prior,
    )
