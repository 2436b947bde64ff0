"""Few-shot adaptation: carry a trained latency predictor to a new device from K measured
subnets, in seconds.

Methods (``adapt_predictor(..., method=...)``):

``calibrate``           the source prediction mapped in log space, ``log y = a + b log p``: two
                        numbers, so it is safe from K = 3 and keeps the source's ranking.
``calibrate_features``  the same plus a ridge term on five global costs of the subnet (log MACs,
                        log parameters, log activation bytes, active blocks, resolution): a new
                        device may weigh memory and compute differently than the source.
``last_layer``          the seed's method: every weight frozen but the output layer(s), which
                        are retrained on the K samples (on top of ``calibrate``, which sets
                        the new device's scale first).
``finetune``            every weight trained with a small learning rate (on top of
                        ``calibrate``), pulled towards the source's weights (L2-SP), so a few
                        samples cannot drag it far.
``embedding``           a generalized predictor (`train_generalized`) only: the new device's
                        embedding (a non-negative blend of the training devices and its speed)
                        fitted to the K samples; no weight changes.
``auto``                (default) each method that applies to the predictor (the weight methods
                        to a per-device one, ``embedding`` to a generalized one) scored by
                        cross-validation inside the K samples
                        (5 folds, leave-one-out up to 5); the best one is refitted on all.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.optimize import nnls

from ofa_latency_kedro.encoding.encoders import joint_indices
from ofa_latency_kedro.predictors.calibration import CALIBRATION_FEATURES, calibration_features
from ofa_latency_kedro.predictors.metrics import regression_metrics
from ofa_latency_kedro.predictors.predictor import LatencyPredictor, PredictorError
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.network import block_cost_table
from ofa_latency_kedro.search_space.table import as_latency_table

logger = logging.getLogger(__name__)

METHODS = ("calibrate", "calibrate_features", "last_layer", "finetune", "embedding")
#: Methods that retrain weights (per-device predictors) and the one that places a
#: generalized predictor (`train_generalized`) by its embedding.
WEIGHT_METHODS = ("last_layer", "finetune")
FEATURE_RIDGE = 1.0
STEPS = {"last_layer": 150, "finetune": 150}
LEARNING_RATE = {"last_layer": 1e-3, "finetune": 1e-4}
#: Pull of the trained weights towards the source's (L2-SP), per squared unit.
L2SP = 1e-1
#: How many samples' worth of pull the embedding's blend may feel towards the average
#: device; the strength is chosen by leave-one-out inside the samples.
EMBEDDING_PRIORS = (0.5, 5.0, 50.0)


def _single_name(values: pd.Series) -> str | None:
    distinct = pd.unique(values.dropna())
    return str(distinct[0]) if len(distinct) == 1 else None


def _few_shot_table(
    few: pd.DataFrame,
) -> tuple[ArchBatch, np.ndarray, str | None, str | None]:
    """The K measured subnets as a batch and their latencies, validated."""
    table = as_latency_table(few)
    latency = table["latency"].to_numpy(dtype=float)
    if len(table) < 3:
        raise ValueError(
            f"adapting a predictor needs at least 3 measured subnets, got {len(table)}"
        )
    bad = ~np.isfinite(latency) | (latency <= 0)
    if bad.any():
        row = table.iloc[int(np.argmax(bad))]
        raise ValueError(
            f"{row['source']}, line {row['line']}: field 'latency' has value {float(row['latency'])}; "
            "a latency must be a positive number of ms"
        )
    return (
        ArchBatch.from_frame(table),
        latency,
        _single_name(table["hardware"]),
        _single_name(table["space"]),
    )


def _fit_calibration(
    raw: np.ndarray,
    latency: np.ndarray,
    features: np.ndarray | None,
    source_predictions: Sequence[np.ndarray] = (),
) -> dict[str, Any]:
    """Least squares of log latency on the log prediction and the log predictions of the
    other sources (blend weights), plus ridge on the standardised features."""
    columns = [np.ones(len(raw)), np.log(np.maximum(raw, 1e-6))]
    columns += [np.log(np.maximum(values, 1e-6)) for values in source_predictions]
    penalty = [0.0] * len(columns)
    calibration: dict[str, Any] = {"features": None, "coef": None, "source_weights": []}
    if features is not None:
        mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
        columns += list(((features - mean) / std).T)
        penalty += [FEATURE_RIDGE] * features.shape[1]
        calibration.update(
            features=list(CALIBRATION_FEATURES), mean=mean.tolist(), std=std.tolist()
        )
    if len(raw) < 4:  # too few to estimate slopes: shift the prediction only
        calibration.update(a=float(np.mean(np.log(latency) - columns[1])), b=1.0, features=None)
        calibration["source_weights"] = [0.0] * len(source_predictions)
        return calibration
    design = np.stack(columns, axis=1)
    # least squares on the design stacked over the ridge rows: the ridge solution where it is
    # unique, the smallest one where the samples are fewer than the columns (many sources)
    stacked = np.vstack([design, np.diag(np.sqrt(penalty))])
    goal = np.concatenate([np.log(latency), np.zeros(len(penalty))])
    solution = np.linalg.lstsq(stacked, goal, rcond=None)[0]
    blended = 2 + len(source_predictions)
    calibration["a"], calibration["b"] = float(solution[0]), float(solution[1])
    calibration["source_weights"] = solution[2:blended].tolist()
    if features is not None:
        calibration["coef"] = solution[blended:].tolist()
    return calibration


def blended_devices(predictor: LatencyPredictor, space: str | None) -> np.ndarray:
    """Indices of the training devices an embedding blends: those whose dataset is of
    ``space`` (a head trained on another space's subnets has not seen this one's, e.g. a
    fixed-kernel space's head and kernel 7), or all of them when none is."""
    spaces = predictor.metadata.get("device_spaces") or [None] * len(predictor.devices)
    same = [index for index, name in enumerate(spaces) if name == space]
    return np.array(same or range(len(spaces)))


def _nonnegative_blend(
    columns: np.ndarray, target: np.ndarray, prior: float, average: np.ndarray
) -> np.ndarray:
    """Non-negative least squares of the centred target on the centred columns, pulled
    towards ``average`` with the weight of ``prior`` samples."""
    centred = columns - columns.mean(axis=0)
    pull = np.sqrt(prior * centred.var(axis=0).mean())
    design = np.vstack([centred, pull * np.eye(columns.shape[1])])
    goal = np.concatenate([target - target.mean(), pull * average])
    return nnls(design, goal)[0]


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
) -> dict[str, Any]:
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
    weights = np.zeros(len(predictor.devices))
    weights[chosen] = blend
    intercept = float(np.mean(target - columns @ blend))
    return {
        "intercept": intercept,
        "weights": weights.tolist(),
        "fitted_on": len(latency),
        "prior": prior,
    }


def average_embedding(predictor: LatencyPredictor, space: str | None) -> dict[str, Any]:
    """The plain average of the training devices of ``space``: where a generalized predictor
    stands on a device it knows nothing about."""
    chosen = blended_devices(predictor, space)
    weights = np.zeros(len(predictor.devices))
    weights[chosen] = 1 / len(chosen)
    return {"intercept": 0.0, "weights": weights.tolist(), "fitted_on": 0}


def embedded(
    predictor: LatencyPredictor, embedding: Mapping[str, Any], *, hardware: str, space: str | None
) -> LatencyPredictor:
    """The generalized predictor placed on a device by ``embedding``."""
    metadata = {k: v for k, v in predictor.metadata.items() if k != "calibration"}
    metadata.update(embedding=dict(embedding), hardware=hardware, space=space or predictor.space)
    return LatencyPredictor(predictor.module, metadata)


def _module_inputs(predictor: LatencyPredictor, batch: ArchBatch) -> tuple[torch.Tensor, ...]:
    encoders = predictor._encoders
    if predictor.kind == "seed_mlp":
        return (torch.from_numpy(encoders["input"].encode(batch)),)
    resolutions = predictor.resolutions
    try:
        index = joint_indices(batch, resolutions)
    except ValueError as exc:
        raise PredictorError(
            f"weight-training adaptation needs subnets at the source's trained resolutions "
            f"{', '.join(map(str, resolutions))}: {exc}"
        ) from None
    return torch.from_numpy(index), torch.from_numpy(encoders["deep"].encode(batch))


def _trainable(module: torch.nn.Module, kind: str, method: str) -> list[torch.nn.Parameter]:
    if method == "finetune":
        return list(module.parameters())
    if kind == "seed_mlp":
        return list(module.model[-1].parameters())
    heads = [*module.linear.parameters()]
    if module.deep is not None:
        heads += list(module.deep[-1].parameters())
    return heads


def _uncalibrated(predictor: LatencyPredictor) -> LatencyPredictor:
    """The source as its module predicts, without a calibration it may carry already."""
    if "calibration" not in predictor.metadata:
        return predictor
    metadata = {k: v for k, v in predictor.metadata.items() if k != "calibration"}
    return LatencyPredictor(predictor.module, metadata)


def _fit_weights(
    predictor: LatencyPredictor,
    batch: ArchBatch,
    latency: np.ndarray,
    method: str,
    *,
    seed: int,
    calibration: dict[str, Any],
) -> torch.nn.Module:
    """A copy of the source module with the method's parameters trained, under the
    calibration fitted first (the new device's scale), on the samples' relative error."""
    torch.manual_seed(seed)
    module = copy.deepcopy(predictor.module)
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    trainable = _trainable(module, predictor.kind, method)
    anchors = [p.detach().clone() for p in trainable]
    for parameter in trainable:
        parameter.requires_grad_(True)
    inputs = _module_inputs(predictor, batch)
    target = torch.from_numpy(latency.astype(np.float32))
    optimizer = torch.optim.Adam(trainable, lr=LEARNING_RATE[method])
    module.train()
    for _ in range(STEPS[method]):
        optimizer.zero_grad()
        raw = module(*inputs).clamp(min=1e-3)
        predicted = torch.exp(calibration["a"] + calibration["b"] * torch.log(raw))
        loss = torch.mean(((predicted - target) / target) ** 2) + L2SP * sum(
            ((p - a) ** 2).sum() for p, a in zip(trainable, anchors, strict=True)
        )
        loss.backward()
        optimizer.step()
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def _adapted(
    predictor: LatencyPredictor,
    module: torch.nn.Module | None,
    calibration: dict[str, Any] | None,
    info: dict[str, Any],
    sources: Sequence[LatencyPredictor] = (),
) -> LatencyPredictor:
    metadata = copy.deepcopy(predictor.metadata)
    metadata.pop("calibration", None)
    if calibration is not None:
        metadata["calibration"] = calibration
    metadata["adaptation"] = info
    metadata["hardware"] = info.get("hardware") or metadata.get("hardware")
    metadata["metrics"] = {}
    return LatencyPredictor(
        module if module is not None else copy.deepcopy(predictor.module), metadata, sources
    )


def applies(predictor: LatencyPredictor, method: str) -> bool:
    """Whether ``method`` can adapt ``predictor``."""
    if method == "embedding":
        return predictor.kind == "generalized"
    if method in WEIGHT_METHODS:
        return predictor.kind != "generalized"
    return method in METHODS


def _fit(
    predictor: LatencyPredictor,
    batch: ArchBatch,
    latency: np.ndarray,
    method: str,
    *,
    seed: int,
    info: dict[str, Any],
    sources: Sequence[LatencyPredictor] = (),
) -> LatencyPredictor:
    predictor = _uncalibrated(predictor)
    if predictor.kind == "generalized":
        space = info.get("space")
        embedding = (
            fit_embedding(predictor, batch, latency, space=space)
            if method == "embedding"
            else average_embedding(predictor, space)
        )
        predictor = embedded(
            predictor,
            embedding,
            hardware=info.get("hardware") or "new device",
            space=space or predictor.space,
        )
        if method == "embedding":
            predictor.metadata["adaptation"] = info
            return predictor
    raw = predictor.predict_batch(batch)
    if method in ("calibrate", "calibrate_features"):
        features = calibration_features(batch) if method == "calibrate_features" else None
        blended = [source.predict_on_own_network(batch) for source in sources]
        calibration = _fit_calibration(raw, latency, features, blended)
        return _adapted(predictor, None, calibration, info, sources)
    calibration = _fit_calibration(raw, latency, None)
    module = _fit_weights(predictor, batch, latency, method, seed=seed, calibration=calibration)
    return _adapted(predictor, module, calibration, info)


def _folds(k: int, seed: int) -> list[np.ndarray]:
    """At most 5 folds (leave-one-out up to 5 samples), in a seeded order."""
    order = np.random.default_rng(seed).permutation(k)
    count = min(k, 5)
    return [order[i::count] for i in range(count)]


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
    """Mean absolute percentage error of ``method`` on held-out samples (5 folds, or
    leave-one-out up to 5 samples)."""
    errors = np.empty(len(latency))
    for held in _folds(len(latency), seed):
        keep = np.setdiff1d(np.arange(len(latency)), held)
        fitted = _fit(
            predictor,
            batch[keep],
            latency[keep],
            method,
            seed=seed,
            info={"space": space},
            sources=sources,
        )
        errors[held] = np.abs(fitted.predict_batch(batch[held]) / latency[held] - 1)
    return float(errors.mean() * 100)


def adapt_predictor(
    predictor: LatencyPredictor,
    few_df: pd.DataFrame,
    *,
    method: str = "auto",
    methods: Sequence[str] = METHODS,
    sources: Sequence[LatencyPredictor] = (),
    hardware: str | None = None,
    seed: int = 0,
    on_method: Callable[[str, float], None] | None = None,
) -> LatencyPredictor:
    """``predictor`` adapted to a new device from ``few_df`` (``child_arch`` and ``latency``
    of K subnets measured there; `load_latency_csv` output works as is). With
    ``method="auto"`` every one of ``methods`` is scored by cross-validation inside the K
    samples and the best is refitted on all of them; the scores are in
    ``adapted.metadata["adaptation"]``.

    ``sources``: predictors of further devices (any width: each predicts the same genes on
    its own network) whose log predictions the calibration methods blend with the
    predictor's; devices rank subnets differently, and a blend of unlike devices (a GPU and
    a phone) carries more of the new one than either alone. They are saved with the result."""
    if method != "auto" and method not in METHODS:
        raise ValueError(
            f"adaptation method must be auto or one of {', '.join(METHODS)}, got {method!r}"
        )
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown adaptation methods {unknown}; known: {', '.join(METHODS)}")
    started = time.perf_counter()
    if method == "auto":
        candidates = [m for m in methods if applies(predictor, m)]
        if not candidates:
            raise ValueError(f"none of {list(methods)} adapts a {predictor.kind} predictor")
    elif applies(predictor, method):
        candidates = [method]
    else:
        raise ValueError(
            f"adaptation method {method!r} does not adapt a {predictor.kind} predictor"
        )
    batch, latency, named, space = _few_shot_table(few_df)
    space = space or predictor.space
    scores: dict[str, float] = {}
    if len(candidates) > 1:
        for name in candidates:
            try:
                scores[name] = cross_validated_mape(
                    predictor, batch, latency, name, seed=seed, sources=sources, space=space
                )
            except PredictorError as exc:
                logger.info("Adaptation method %s left out: %s", name, exc)
                continue
            if on_method is not None:
                on_method(name, scores[name])
        if not scores:
            raise PredictorError("no adaptation method applies to this predictor and these samples")
        chosen = min(scores, key=scores.__getitem__)
    else:
        chosen = candidates[0]
    info = {
        "method": chosen,
        "k": len(latency),
        "cv_mape": scores,
        "source_hardware": predictor.hardware,
        "blended_sources": [source.hardware for source in sources],
        "hardware": hardware or named,
        "space": space,
        "seed": seed,
    }
    adapted = _fit(predictor, batch, latency, chosen, seed=seed, info=info, sources=sources)
    adapted.metadata["adaptation"]["seconds"] = time.perf_counter() - started
    logger.info(
        "Adapted %s to %s from %d samples with %s (cross-validated MAPE: %s) in %.1f s",
        predictor.hardware,
        info["hardware"],
        len(latency),
        chosen,
        ", ".join(f"{k} {v:.2f}%" for k, v in scores.items()) or "not compared",
        adapted.metadata["adaptation"]["seconds"],
    )
    return adapted


SAMPLERS = ("random", "informative")


def pick_subnets(
    pool: pd.DataFrame, k: int, *, sampler: str = "random", seed: int = 0
) -> pd.DataFrame:
    """``k`` rows of ``pool`` to measure on the new device. ``informative`` spreads them over
    MACs, depth and resolution (farthest-point sampling from a seeded start), so that a few
    samples cover the range a calibration has to span; ``random`` draws uniformly."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if k > len(pool):
        raise ValueError(f"cannot pick {k} subnets from a pool of {len(pool)}")
    rng = np.random.default_rng(seed)
    if sampler == "random":
        return pool.iloc[np.sort(rng.choice(len(pool), size=k, replace=False))]
    table = as_latency_table(pool)
    batch = ArchBatch.from_frame(table)
    points = np.stack(
        [np.log(block_cost_table(batch).macs_exact), batch.d.sum(axis=1), batch.r], axis=1
    ).astype(float)
    points = (points - points.mean(axis=0)) / (points.std(axis=0) + 1e-9)
    chosen = [int(rng.integers(len(points)))]
    distance = np.linalg.norm(points - points[chosen[0]], axis=1)
    while len(chosen) < k:
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return pool.iloc[np.sort(chosen)]


def learning_curve(
    source: LatencyPredictor,
    pool: pd.DataFrame,
    test: pd.DataFrame,
    *,
    ks: Sequence[int],
    draws: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] = ("auto", *METHODS),
    samplers: Sequence[str] = ("random",),
    sources: Sequence[LatencyPredictor] = (),
) -> pd.DataFrame:
    """Test error of every method after adaptation from K samples of ``pool``, for every K,
    draw and sampler: one row each (k, method, sampler, draw, chosen method, MAPE, MAE,
    Spearman, seconds). Methods that do not adapt ``source`` are left out; a generalized
    source's methods are named ``generalized/<method>``."""
    methods = [m for m in methods if m == "auto" or applies(source, m)]
    label = "generalized/" if source.kind == "generalized" else ""
    truth = test["latency"].to_numpy(dtype=float)
    test_batch = ArchBatch.from_frame(as_latency_table(test))
    rows = []
    for k in ks:
        for sampler in samplers:
            for draw in draws:
                few = pick_subnets(pool, k, sampler=sampler, seed=draw)
                for method in methods:
                    started = time.perf_counter()
                    adapted = adapt_predictor(
                        source, few, method=method, seed=draw, sources=sources
                    )
                    seconds = time.perf_counter() - started
                    metrics = regression_metrics(truth, adapted.predict_batch(test_batch))
                    rows.append(
                        {
                            "k": k,
                            "method": label + method,
                            "sampler": sampler,
                            "draw": draw,
                            "chosen": label + adapted.metadata["adaptation"]["method"],
                            "mape": metrics["mape"],
                            "mae": metrics["mae"],
                            "spearman": metrics["spearman"],
                            "seconds": seconds,
                        }
                    )
    return pd.DataFrame(rows)
