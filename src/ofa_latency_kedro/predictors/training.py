"""Training latency predictors from latency tables: `train_predictor` (one call, good
defaults, no Ray), or `prepare_data` once and `fit_prepared` per configuration (what Ray
Tune's trials do). The kind of predictor and its recipe come from the kinds registry
(`TrainingConfig.kind`); a table of several devices gives the generalized model, carrying
the predictor of each of its devices."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import KFold

from ofa_latency_kedro.encoding.loading import LatencyDataError
from ofa_latency_kedro.encoding.splits import DEFAULT_SPLIT, split_table
from ofa_latency_kedro.predictors.checkpoint import library_versions
from ofa_latency_kedro.predictors.config import TrainingConfig
from ofa_latency_kedro.predictors.data import PreparedData, SplitData
from ofa_latency_kedro.predictors.domain import training_domain
from ofa_latency_kedro.predictors.fitting import torch_threads
from ofa_latency_kedro.predictors.generalization import train_generalized
from ofa_latency_kedro.predictors.kinds import get_kind
from ofa_latency_kedro.predictors.metadata import Conformal, PredictorMetadata
from ofa_latency_kedro.predictors.metrics import (
    INTERVAL_LEVEL,
    interval_metrics,
    regression_metrics,
)
from ofa_latency_kedro.predictors.predictor import LatencyPredictor
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.table import as_latency_table, dataset_names

logger = logging.getLogger(__name__)

EpochReport = Callable[[dict[str, float]], None]


def _single(values: pd.Series, what: str) -> Any:
    distinct = pd.unique(values.dropna())
    if len(distinct) > 1:
        raise LatencyDataError(
            f"the table holds several {what}s ({', '.join(map(str, distinct[:5]))}); train one "
            "predictor per dataset (the training pipeline does), or a generalized model"
        )
    return distinct[0] if len(distinct) else None


def prepare_data(
    frame: pd.DataFrame,
    *,
    split: str = DEFAULT_SPLIT,
    seed: int = 0,
    kind: str = TrainingConfig.kind,
    fractions: tuple[float, float, float] | None = None,
) -> PreparedData:
    """Split (unless the table has a ``split`` column) and encode a one-device table for
    predictors of ``kind``. ``fractions`` (train, val, test) default to `split_table`'s."""
    trainer = get_kind(kind)
    table = as_latency_table(frame)
    hardware = _single(table["hardware"], "hardware")
    space = _single(table["space"], "space")
    width = _single(table["width_mult"], "width multiplier")
    if "split" not in table.columns:
        options = {} if fractions is None else {"fractions": fractions}
        table = split_table(table, split, seed=seed, **options)
    else:
        split = "given"
    parts = {}
    for name in ("train", "val", "test"):
        rows = table[table["split"] == name]
        parts[name] = SplitData(ArchBatch.from_frame(rows), rows["latency"].to_numpy(np.float64))
    if len(parts["train"]) == 0:
        raise LatencyDataError(
            "no training rows: the table is empty or its split has no 'train' rows"
        )
    if len(parts["val"]) == 0:
        raise LatencyDataError("no validation rows: early stopping needs a 'val' split")
    resolutions = tuple(sorted(set(parts["train"].batch.r.tolist())))
    for part in (parts["train"], parts["val"]):
        part.inputs = trainer.training_inputs(part.batch, resolutions)
    return PreparedData(
        kind=kind,
        train=parts["train"],
        val=parts["val"],
        test=parts["test"],
        resolutions=resolutions,
        hardware=hardware,
        space=space,
        width_mult=None if width is None else float(width),
        split=split,
        info={"rows": {name: len(part) for name, part in parts.items()}},
    )


#: Fewer validation rows than this, and a trained predictor's interval is calibrated on the
#: cross-validation residuals of all its training and validation rows instead (cross-conformal,
#: Vovk 2015; Barber et al. 2021): with a few dozen validation rows the upper bound of a 90%
#: interval is their largest residual, and one glitched measurement sets it.
CROSS_CONFORMAL_BELOW = 200
#: Fewer training and validation rows than this, and the validation rows calibrate anyway
#: (too few for folds that each train on every resolution).
CROSS_CONFORMAL_MIN_ROWS = 50
#: Folds of that cross-validation (scikit-learn's ``KFold``, shuffled by the config's seed).
CROSS_CONFORMAL_FOLDS = 5


def _fit(
    data: PreparedData, config: TrainingConfig, on_epoch: EpochReport | None
) -> LatencyPredictor:
    """One predictor of ``config.kind`` trained on ``data``, not yet calibrated or evaluated."""
    torch.manual_seed(config.seed)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    with torch_threads(config.threads):
        fitted = get_kind(config.kind).fit(data, config, on_epoch)
    seconds = time.perf_counter() - started
    spread = np.percentile(data.train.latency, [0, 25, 50, 75, 100])
    return LatencyPredictor(
        fitted.module,
        PredictorMetadata(
            kind=config.kind,
            encoders=fitted.encoders,
            architecture=fitted.architecture,
            loss=fitted.loss,
            normalization=fitted.normalization,
            hardware=data.hardware,
            space=data.space,
            width_mult=data.width_mult,
            latency_ms=dict(
                zip(("min", "p25", "median", "p75", "max"), spread.tolist(), strict=True)
            ),
            domain=training_domain(data.train.batch, data.resolutions),
            training={
                "config": config.to_dict(),
                "split": data.split,
                "rows": data.info.get("rows"),
                "epochs_run": len(fitted.history.get("train_loss", [])),
                "started_at": started_at.isoformat(timespec="milliseconds"),
                "seconds": round(seconds, 3),
            },
            history=fitted.history,
            versions=library_versions(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ),
    )


def fit_prepared(
    data: PreparedData,
    config: TrainingConfig | Mapping[str, Any] | None = None,
    on_epoch: EpochReport | None = None,
) -> LatencyPredictor:
    """Train one predictor of ``config.kind`` on prepared data, calibrate its intervals
    (`validation_conformal`, or `cross_validation_conformal` below `CROSS_CONFORMAL_BELOW`
    validation rows, from `CROSS_CONFORMAL_MIN_ROWS` training and validation rows) and
    evaluate it on every split (``predictor.metrics``)."""
    config = TrainingConfig.from_dict(config)
    if config.kind != data.kind:
        raise LatencyDataError(
            f"the data were prepared for {data.kind!r} predictors, the configuration trains "
            f"{config.kind!r}: prepare_data(..., kind={config.kind!r})"
        )
    predictor = _fit(data, config, on_epoch)
    conformal = None
    if CROSS_CONFORMAL_MIN_ROWS <= len(data.train) + len(data.val) and (
        len(data.val) < CROSS_CONFORMAL_BELOW
    ):
        conformal = cross_validation_conformal(data, config)
    if conformal is None:
        conformal = validation_conformal(predictor, data.val)
    calibrated = predictor.replace(conformal=conformal)
    return calibrated.replace(metrics=evaluate(calibrated, data))


def validation_conformal(predictor: LatencyPredictor, val: SplitData) -> Conformal:
    """The interval calibration of a trained predictor: the log residuals of its validation
    rows (in the order they were measured), weighted by recency (`Conformal.recent`). They
    also chose its early stopping epoch and ridge penalties, which the coverage on the test
    rows (`evaluate`) keeps honest."""
    residuals = np.log(val.latency) - np.log(predictor.predict_batch(val.batch))
    return Conformal.recent(residuals, f"{len(val)} validation rows")


def cross_validation_conformal(data: PreparedData, config: TrainingConfig) -> Conformal | None:
    """The interval calibration of a predictor trained on few rows: the log residual of every
    training and validation row, predicted by the same recipe trained without its fold
    (`CROSS_CONFORMAL_FOLDS` folds; in each, a seeded sixth of the other rows, at resolutions
    the rest trains on, stops the training early, as the validation rows do), alike in weight.
    The test rows stay out. None when a fold has no such rows to stop on."""
    batch = ArchBatch.concatenate([data.train.batch, data.val.batch])
    latency = np.concatenate([data.train.latency, data.val.latency])
    folds = KFold(CROSS_CONFORMAL_FOLDS, shuffle=True, random_state=config.seed)
    rng = np.random.default_rng(config.seed)
    residuals = np.empty(len(latency))
    for others, held in folds.split(latency):
        shuffled = rng.permutation(others)
        cut = max(1, len(shuffled) // 6)
        stop, train = shuffled[:cut], shuffled[cut:]
        trained = np.isin(batch.r[stop], batch.r[train])
        stop, train = stop[trained], np.concatenate([train, stop[~trained]])
        if not len(stop):
            return None
        resolutions = tuple(sorted(set(batch.r[train].tolist())))
        parts = {}
        for name, rows in (("train", train), ("val", stop)):
            part = SplitData(batch[rows], latency[rows])
            part.inputs = get_kind(config.kind).training_inputs(part.batch, resolutions)
            parts[name] = part
        fold = PreparedData(
            kind=data.kind,
            train=parts["train"],
            val=parts["val"],
            test=SplitData(batch[held], latency[held]),
            resolutions=resolutions,
            hardware=data.hardware,
            space=data.space,
            width_mult=data.width_mult,
            split=data.split,
        )
        fitted = _fit(fold, config, None)
        residuals[held] = np.log(latency[held]) - np.log(fitted.predict_batch(batch[held]))
    return Conformal(
        tuple(residuals),
        f"cross-validation over {len(latency)} training and validation rows "
        f"({CROSS_CONFORMAL_FOLDS} folds)",
    )


def evaluate(predictor: LatencyPredictor, data: PreparedData) -> dict[str, dict[str, float]]:
    """`regression_metrics` of every non-empty split; on the test rows also the coverage and
    half-width of the `INTERVAL_LEVEL` intervals."""
    metrics = {}
    for name, part in data.splits().items():
        if not len(part):
            continue
        predicted = predictor.predict_batch(part.batch)
        metrics[name] = regression_metrics(part.latency, predicted)
        if name == "test" and predictor.metadata.conformal is not None:
            low, high = predictor.metadata.conformal.bounds(INTERVAL_LEVEL)
            metrics[name] |= interval_metrics(
                part.latency, predicted, predicted * np.exp(low), predicted * np.exp(high)
            )
    return metrics


def _train_generalized_predictor(
    table: pd.DataFrame,
    *,
    split: str,
    seed: int,
    fractions: tuple[float, float, float] | None,
    config: TrainingConfig,
) -> LatencyPredictor:
    """The generalized model on the training rows of a table of several datasets, its
    intervals per device from their validation rows, its test metrics per device's head, and
    the default predictor of each dataset (``config``) as its `sources`: what few-shot
    adaptation blends (`adapt_predictor`'s ``calibrate_devices``)."""
    if "split" not in table.columns:
        options = {} if fractions is None else {"fractions": fractions}
        table = split_table(table, split, seed=seed, **options)
    predictor = train_generalized(table[table["split"] == "train"], config={"seed": seed})
    names = dataset_names(table)
    members = []
    for device in predictor.devices:
        try:
            data = prepare_data(table[names == device], kind=config.kind)
        except LatencyDataError as exc:
            raise LatencyDataError(f"dataset {device}: {exc}") from None
        members.append(fit_prepared(data, config))
    val = table[table["split"] == "val"]
    predictor = predictor.replace(
        sources=members,
        device_conformal={
            device: Conformal.recent(
                np.log(rows["latency"].to_numpy(dtype=float))
                - np.log(predictor.for_device(device).predict_batch(ArchBatch.from_frame(rows))),
                f"{len(rows)} validation rows of {device}",
            )
            for device, rows in val.groupby(dataset_names(val))
        },
    )
    test = table[table["split"] == "test"]
    predictor = predictor.replace(
        metrics={
            **predictor.metrics,
            "test": {
                device: regression_metrics(
                    rows["latency"].to_numpy(dtype=float),
                    predictor.for_device(device).predict_batch(ArchBatch.from_frame(rows)),
                )
                for device, rows in test.groupby(dataset_names(test))
            },
        }
    )
    logger.info(
        "Trained a generalized predictor on %s: test MAPE %s (its heads), %s (each device's "
        "own %s predictor)",
        ", ".join(predictor.devices),
        ", ".join(f"{d} {m['mape']:.2f}%" for d, m in predictor.metrics["test"].items()),
        ", ".join(f"{m.metrics.get('test', {}).get('mape', float('nan')):.2f}%" for m in members),
        config.kind,
    )
    return predictor


def train_predictor(
    frame: pd.DataFrame,
    *,
    config: TrainingConfig | Mapping[str, Any] | None = None,
    split: str = DEFAULT_SPLIT,
    seed: int = 0,
    fractions: tuple[float, float, float] | None = None,
    on_epoch: EpochReport | None = None,
) -> LatencyPredictor:
    """Train the default predictor on a latency table, no Ray needed.

    ``frame`` is `load_latency_csv` output, or any table with ``child_arch`` and ``latency``;
    a ``split`` column (train / val / test) is used as given, else ``split`` ("key" or
    "seed") makes one, shuffled by ``seed``, with ``fractions`` (train, val, test; default
    0.7, 0.15, 0.15). Test metrics are in ``predictor.metrics["test"]``. ``config``: a
    `TrainingConfig` or its fields (``{"epochs": 50}``). A table of several devices (its
    ``hardware`` column) gives the generalized model (`train_generalized` on the training
    rows; test metrics per device's head) carrying the predictor of ``config`` trained on
    each device's rows (its ``sources``), which few-shot adaptation to a new device blends.
    """
    table = as_latency_table(frame)
    config = TrainingConfig.from_dict(config)
    if table["hardware"].nunique() > 1:
        return _train_generalized_predictor(
            table, split=split, seed=seed, fractions=fractions, config=config
        )
    data = prepare_data(table, split=split, seed=seed, kind=config.kind, fractions=fractions)
    predictor = fit_prepared(data, config, on_epoch)
    test = predictor.metrics.get("test", {})
    logger.info(
        "Trained a %s predictor for %s/%s on %d rows in %.1f s: test MAE %.3f ms, MAPE %.2f%%, Spearman %.4f",
        predictor.kind,
        data.hardware,
        data.space,
        len(data.train),
        predictor.metadata.training["seconds"],
        test.get("mae", float("nan")),
        test.get("mape", float("nan")),
        test.get("spearman", float("nan")),
    )
    return predictor
