"""Few-shot adaptation: carry a trained latency predictor to a new device from K measured
subnets, in seconds (`adapt_predictor`).

Methods (``adapt_predictor(..., method=...)``), registered in `METHODS`:

``calibrate``           the source prediction mapped in log space, ``log y = a + b log p``: two
                        numbers, so it is safe from K = 3 and keeps the source's ranking
                        (`predictors.calibration`).
``calibrate_features``  the same plus a ridge term on five global costs of the subnet (log MACs,
                        log parameters, log activation bytes, active blocks, resolution): a new
                        device may weigh memory and compute differently than the source.
``last_layer``          the seed's method: every weight frozen but the output heads, which are
                        retrained on the K samples on top of ``calibrate``, which sets the new
                        device's scale first (`predictors.retraining`).
``finetune``            every weight trained with a small learning rate on top of
                        ``calibrate``, pulled towards the source's weights (L2-SP).
``embedding``           a generalized predictor (`train_generalized`) only: the new device's
                        embedding fitted to the K samples (`predictors.embedding`); no weight
                        changes.
``calibrate_devices``   a generalized predictor of `train_predictor` on several devices only,
                        which carries each device's own predictor: ``calibrate_features`` of
                        the one of the target's width (else the first) with the others blended
                        in, what ``adapt_predictor(rtx, few, sources=[note10])`` does by hand.
``auto``                (default) each method that applies to the predictor (the weight methods
                        to a per-device one, ``embedding`` and, where it carries devices,
                        ``calibrate_devices`` to a generalized one) scored by cross-validation
                        inside the K samples (5 folds, leave-one-out up to 5); the best one is
                        refitted on all.

A generalized predictor's calibration methods calibrate it placed on the average device.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from ofa_latency_kedro.encoding.loading import LatencyDataError
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.predictors.calibration import calibration_features, fit_calibration
from ofa_latency_kedro.predictors.embedding import average_embedding, fit_embedding
from ofa_latency_kedro.predictors.metadata import AdaptationRecord, Conformal, PredictorError
from ofa_latency_kedro.predictors.predictor import LatencyPredictor
from ofa_latency_kedro.predictors.retraining import RETRAINING_METHODS, retrained_module
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.table import as_latency_table

logger = logging.getLogger(__name__)

#: Folds of the cross-validation that chooses a method (fewer samples: leave-one-out).
FOLDS = 5
#: The fewest distinct subnets an adaptation takes.
MIN_SAMPLES = 3


@dataclass(frozen=True)
class Target:
    """The new device: its samples, name and space, and the predictors blended in."""

    batch: ArchBatch
    latency: np.ndarray
    hardware: str | None
    space: str | None
    sources: tuple[LatencyPredictor, ...]
    seed: int

    @property
    def width_mult(self) -> float | None:
        """The width of the target's network (its samples'), when they agree on one."""
        widths = np.unique(self.batch.width_mult)
        return float(widths[0]) if len(widths) == 1 else None


def _on_target(predictor: LatencyPredictor, target: Target) -> LatencyPredictor:
    """The source as it answers for the target's subnets, before fitting: a generalized one
    placed on the average device of the space; one of another width family reading the same
    genes on its own network (as blended sources do)."""
    if predictor.kind == "generalized":
        return predictor.placed(
            average_embedding(predictor, target.space),
            hardware=target.hardware or "new device",
            space=target.space,
            width_mult=target.width_mult,
        )
    source_width = predictor.metadata.network_width_mult or predictor.width_mult
    if target.width_mult is None or source_width in (None, target.width_mult):
        return predictor.replace(width_mult=target.width_mult or predictor.width_mult)
    return predictor.replace(width_mult=target.width_mult, network_width_mult=source_width)


def _calibrated(predictor: LatencyPredictor, target: Target, features: bool) -> LatencyPredictor:
    placed = _on_target(predictor, target)
    calibration = fit_calibration(
        placed.predict_batch(target.batch),
        target.latency,
        calibration_features(target.batch) if features else None,
        [source.predict_on_own_network(target.batch) for source in target.sources],
    )
    return placed.replace(calibration=calibration, sources=target.sources)


def _calibrate(predictor: LatencyPredictor, target: Target) -> LatencyPredictor:
    return _calibrated(predictor, target, features=False)


def _calibrate_features(predictor: LatencyPredictor, target: Target) -> LatencyPredictor:
    return _calibrated(predictor, target, features=True)


def _device_predictors(predictor: LatencyPredictor, target: Target) -> list[LatencyPredictor]:
    """The per-device predictors a generalized predictor carries (`train_predictor` on
    several devices) that answer for the target's space, one of the target's width first
    (it reads the target's subnets as they are; the others read the same genes on their
    own network)."""
    members = [
        member
        for member in predictor.sources
        if target.space is None or member.space in (None, target.space)
    ]
    if not members:
        raise PredictorError(
            "calibrate_devices blends the per-device predictors a generalized predictor of "
            f"train_predictor carries; this one carries none of space {target.space!r}"
        )
    return sorted(members, key=lambda member: member.width_mult != target.width_mult)


def _calibrate_devices(predictor: LatencyPredictor, target: Target) -> LatencyPredictor:
    """``calibrate_features`` of the first carried predictor, the others blended in: the
    adapted predictor is a per-device one (it keeps no generalized model)."""
    first, *others = _device_predictors(predictor, target)
    blended = dataclasses.replace(target, sources=(*others, *target.sources))
    return _calibrated(first, blended, features=True).replace(
        hardware=target.hardware or "new device"
    )


def _retrainer(method: str) -> Callable[[LatencyPredictor, Target], LatencyPredictor]:
    def fit(predictor: LatencyPredictor, target: Target) -> LatencyPredictor:
        placed = _on_target(predictor, target)
        calibration = fit_calibration(placed.predict_batch(target.batch), target.latency)
        module = retrained_module(
            placed,
            target.batch,
            target.latency,
            method,
            seed=target.seed,
            calibration=calibration,
        )
        return placed.replace(module=module, calibration=calibration, sources=())

    return fit


def _embedding(predictor: LatencyPredictor, target: Target) -> LatencyPredictor:
    return predictor.placed(
        fit_embedding(predictor, target.batch, target.latency, space=target.space),
        hardware=target.hardware or "new device",
        space=target.space,
        width_mult=target.width_mult,
    )


@dataclass(frozen=True)
class Method:
    """An adaptation method: which predictors it adapts and how it fits one to a target."""

    name: str
    applies: Callable[[LatencyPredictor], bool]
    fit: Callable[[LatencyPredictor, Target], LatencyPredictor]


def _any(predictor: LatencyPredictor) -> bool:
    return True


def _per_device(predictor: LatencyPredictor) -> bool:
    return predictor.kind != "generalized"


def _generalized(predictor: LatencyPredictor) -> bool:
    return predictor.kind == "generalized"


def _carries_devices(predictor: LatencyPredictor) -> bool:
    """A generalized predictor of `train_predictor` on several devices, carrying their own
    predictors (an uncalibrated one's sources; a calibrated one's are the blended ones)."""
    return (
        _generalized(predictor)
        and predictor.metadata.calibration is None
        and bool(predictor.sources)
    )


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("calibrate", _any, _calibrate),
        Method("calibrate_features", _any, _calibrate_features),
        *(Method(name, _per_device, _retrainer(name)) for name in RETRAINING_METHODS),
        Method("embedding", _generalized, _embedding),
        Method("calibrate_devices", _carries_devices, _calibrate_devices),
    )
}


def applies(predictor: LatencyPredictor, method: str) -> bool:
    """Whether ``method`` can adapt ``predictor``."""
    return method in METHODS and METHODS[method].applies(predictor)


def few_shot_samples(few: pd.DataFrame) -> tuple[ArchBatch, np.ndarray, str | None, str | None]:
    """The K measured subnets of a table as a batch and their latencies, validated, one per
    distinct subnet (repeats of a subnet merged to their median: twenty measurements of one
    subnet are one sample, not twenty); with the table's hardware and space when it names
    one each."""
    table = as_latency_table(few)
    latency = table["latency"].to_numpy(dtype=float)
    bad = ~np.isfinite(latency) | (latency <= 0)
    if bad.any():
        row = table.iloc[int(np.argmax(bad))]
        raise LatencyDataError(
            f"{row['source']}, line {row['line']}: field 'latency' has value {float(row['latency'])}; "
            "a latency must be a positive number of ms"
        )
    keys = table["canonical_key"].to_numpy()
    distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if len(distinct) < MIN_SAMPLES:
        raise LatencyDataError(
            f"adapting a predictor needs at least {MIN_SAMPLES} distinct measured subnets, got "
            f"{len(distinct)}" + (f" in {len(table)} rows" if len(table) != len(distinct) else "")
        )
    merged = np.array([np.median(latency[inverse == i]) for i in range(len(distinct))])
    order = np.argsort(first)

    def single(values: pd.Series) -> str | None:
        names = pd.unique(values.dropna())
        return str(names[0]) if len(names) == 1 else None

    batch = ArchBatch.from_frame(table.iloc[first[order]])
    return batch, merged[order], single(table["hardware"]), single(table["space"])


def _held_out_residuals(predictor: LatencyPredictor, method: str, target: Target) -> np.ndarray:
    """``log(measured / predicted)`` of every sample, predicted by ``method`` fitted on the
    other folds (`FOLDS` folds, or leave-one-out up to `FOLDS` samples; scikit-learn's
    ``KFold``, shuffled by the target's seed)."""
    residuals = np.empty(len(target.latency))
    folds = KFold(n_splits=min(len(target.latency), FOLDS), shuffle=True, random_state=target.seed)
    for keep, held in folds.split(target.latency):
        fold = Target(
            target.batch[keep],
            target.latency[keep],
            target.hardware,
            target.space,
            target.sources,
            target.seed,
        )
        fitted = METHODS[method].fit(predictor, fold)
        residuals[held] = np.log(target.latency[held]) - np.log(
            fitted.predict_batch(target.batch[held])
        )
    return residuals


def _as_source(predictor: LatencyPredictor) -> LatencyPredictor:
    """The predictor as its module predicts, before any calibration: a calibrated one less
    its calibration and the sources it blends; an uncalibrated one as it is (a generalized
    predictor keeps the per-device predictors it carries for ``calibrate_devices``)."""
    return predictor if predictor.metadata.calibration is None else predictor.uncalibrated()


def _mape(residuals: np.ndarray) -> float:
    """Mean absolute percentage error of predictions whose log residuals these are."""
    return float(np.mean(np.abs(np.exp(-residuals) - 1)) * 100)


def cross_validated_mape(
    predictor: LatencyPredictor,
    batch: ArchBatch,
    latency: np.ndarray,
    method: str,
    *,
    seed: int = 0,
    sources: Sequence[LatencyPredictor] = (),
    space: str | None = None,
) -> float:
    """Mean absolute percentage error of ``method`` on held-out samples (`FOLDS` folds, or
    leave-one-out up to `FOLDS` samples; scikit-learn's ``KFold``, shuffled by ``seed``)."""
    target = Target(batch, latency, None, space or predictor.space, tuple(sources), seed)
    return _mape(_held_out_residuals(_as_source(predictor), method, target))


def _candidates(predictor: LatencyPredictor, method: str, methods: Sequence[str]) -> list[str]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ParameterError(
            "methods", f"names unknown methods {unknown}; known: {', '.join(METHODS)}"
        )
    if method == "auto":
        candidates = [m for m in methods if applies(predictor, m)]
        if not candidates:
            raise PredictorError(f"none of {list(methods)} adapts a {predictor.kind} predictor")
        return candidates
    if method not in METHODS:
        raise ParameterError(
            "method", f"must be auto or one of {', '.join(METHODS)}, got {method!r}"
        )
    if not applies(predictor, method):
        raise PredictorError(
            f"adaptation method {method!r} does not adapt a {predictor.kind} predictor"
        )
    return [method]


def adapt_predictor(
    predictor: LatencyPredictor,
    few_df: pd.DataFrame,
    *,
    method: str = "auto",
    methods: Sequence[str] = tuple(METHODS),
    sources: Sequence[LatencyPredictor] = (),
    hardware: str | None = None,
    seed: int = 0,
    on_method: Callable[[str, float], None] | None = None,
) -> LatencyPredictor:
    """``predictor`` adapted to a new device from ``few_df`` (``child_arch`` and ``latency``
    of K subnets measured there; `load_latency_csv` output works as is). With
    ``method="auto"`` every one of ``methods`` is scored by cross-validation inside the K
    samples and the best is refitted on all of them; the scores are in
    ``adapted.metadata.adaptation``. ``predictor`` is left as it is.

    ``sources``: predictors of further devices (any width: each predicts the same genes on
    its own network) whose log predictions the calibration methods blend with the
    predictor's; devices rank subnets differently, and a blend of unlike devices (a GPU and
    a phone) carries more of the new one than either alone. They are saved with the result."""
    candidates = _candidates(predictor, method, methods)
    started = time.perf_counter()
    batch, latency, named, space = few_shot_samples(few_df)
    source = _as_source(predictor)
    target = Target(
        batch, latency, hardware or named, space or predictor.space, tuple(sources), seed
    )
    scores: dict[str, float] = {}
    residuals: dict[str, np.ndarray] = {}
    for name in candidates:
        try:
            residuals[name] = _held_out_residuals(source, name, target)
        except PredictorError as exc:
            if len(candidates) == 1:
                raise
            logger.info("Adaptation method %s left out: %s", name, exc)
            continue
        scores[name] = _mape(residuals[name])
        if on_method is not None:
            on_method(name, scores[name])
    if not scores:
        raise PredictorError("no adaptation method applies to this predictor and these samples")
    chosen = min(scores, key=scores.__getitem__)
    # the intervals of the adapted predictor: its method's held-out residuals inside the K
    # samples (what it has on the new device), alike in weight
    adapted = (
        METHODS[chosen]
        .fit(source, target)
        .replace(
            conformal=Conformal(
                tuple(residuals[chosen]), f"cross-validation inside {len(latency)} samples"
            )
        )
    )
    record = AdaptationRecord(
        method=chosen,
        k=len(latency),
        cv_mape=scores,
        source_hardware=predictor.hardware,
        blended_sources=tuple(s.hardware for s in sources),
        hardware=target.hardware,
        space=target.space,
        seed=seed,
        seconds=time.perf_counter() - started,
    )
    spread = np.percentile(latency, [0, 25, 50, 75, 100])
    adapted = adapted.replace(
        adaptation=record,
        hardware=target.hardware or adapted.hardware,
        metrics={},
        # what it was fitted to: the new device's samples (the source's latencies are
        # another device's), for auto budgets and the extrapolation flags
        latency_ms=dict(zip(("min", "p25", "median", "p75", "max"), spread.tolist(), strict=True)),
    )
    logger.info(
        "Adapted %s to %s from %d samples with %s (cross-validated MAPE: %s) in %.1f s",
        predictor.hardware,
        target.hardware,
        len(latency),
        chosen,
        ", ".join(f"{k} {v:.2f}%" for k, v in scores.items()) or "not compared",
        record.seconds,
    )
    return adapted
