"""Training latency predictors.

The default, ``wide_deep`` (see `WideDeep`): the wide part is fitted by ridge regression (on
the analytic features, then its residual on the ``joint`` encoding; penalties chosen on the
validation rows), then wide and deep parts are trained together with AdamW on the
relative squared error, a cosine learning-rate schedule and early stopping on the validation
MAE. When the wide fit alone is already exact on the validation rows (a lookup-table device),
the deep part is left out. ``seed_mlp`` reproduces the seed's recipe (MLP 128-400-400-400-1 on
``seed128``, SGD with momentum 0.9, learning rate 1e-3, weight decay 1e-3, batch 32, 50
epochs, RMSE loss) for side-by-side comparisons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import torch

from ofa_latency_kedro.encoding.encoders import Encoder, joint_indices, joint_width
from ofa_latency_kedro.encoding.splits import split_table
from ofa_latency_kedro.measurement.protocol import available_cpus
from ofa_latency_kedro.predictors.generalization import train_generalized
from ofa_latency_kedro.predictors.metrics import regression_metrics
from ofa_latency_kedro.predictors.models import SeedMLP, WideDeep
from ofa_latency_kedro.predictors.predictor import (
    CHECKPOINT_FORMAT,
    LatencyPredictor,
    library_versions,
)
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.table import as_latency_table, dataset_names
from ofa_latency_kedro.settings_dict import from_settings

logger = logging.getLogger(__name__)

MODELS = ("wide_deep", "linear", "seed_mlp")
DEEP_ENCODER = "analytic"
#: Validation MAPE (%) under which the wide fit counts as exact and the deep part is skipped.
EXACT_MAPE = 0.01

EpochReport = Callable[[dict[str, float], Callable[[], LatencyPredictor]], None]


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of one training run (the defaults train the default predictor)."""

    model: str = "wide_deep"
    hidden: int = 128
    depth: int = 3
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    epochs: int = 200
    patience: int = 30
    momentum: float = 0.9
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(
                f"training model must be one of {', '.join(MODELS)}, got {self.model!r}"
            )
        for name in ("hidden", "batch_size", "epochs", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"training field '{name}' must be at least 1, got {getattr(self, name)}"
                )
        for name in ("lr", "weight_decay", "momentum"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"training field '{name}' must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> TrainingConfig:
        return from_settings(cls, values, "training")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The seed's training recipe, as its code ran it.
SEED_RECIPE = TrainingConfig(
    model="seed_mlp", hidden=400, lr=1e-3, weight_decay=1e-3, momentum=0.9, batch_size=32, epochs=50
)


@dataclass
class SplitData:
    """One split's arrays: arch batch, targets, and the encodings the models read."""

    batch: ArchBatch
    latency: np.ndarray
    wide_index: np.ndarray | None = None
    deep: np.ndarray | None = None
    seed: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.latency)


@dataclass
class PreparedData:
    """A dataset split and encoded once, ready for any number of training runs (and Ray
    Tune trials)."""

    train: SplitData
    val: SplitData
    test: SplitData
    resolutions: tuple[int, ...]
    hardware: str | None
    space: str | None
    width_mult: float | None
    split: str
    info: dict[str, Any] = field(default_factory=dict)


def _single(values: pd.Series, what: str) -> Any:
    distinct = pd.unique(values.dropna())
    if len(distinct) > 1:
        raise ValueError(
            f"the table holds several {what}s ({', '.join(map(str, distinct[:5]))}); train one "
            "predictor per dataset (the training pipeline does), or a generalized model"
        )
    return distinct[0] if len(distinct) else None


def prepare_data(
    frame: pd.DataFrame, *, split: str = "key", seed: int = 0, kind: str = "wide_deep"
) -> PreparedData:
    """Split (unless the table has a ``split`` column) and encode a one-device table."""
    table = as_latency_table(frame)
    hardware = _single(table["hardware"], "hardware")
    space = _single(table["space"], "space")
    width = _single(table["width_mult"], "width multiplier")
    if "split" not in table.columns:
        table = split_table(table, split, seed=seed)
    else:
        split = "given"
    parts = {}
    for name in ("train", "val", "test"):
        rows = table[table["split"] == name]
        parts[name] = SplitData(ArchBatch.from_frame(rows), rows["latency"].to_numpy(np.float64))
    if len(parts["train"]) == 0:
        raise ValueError("no training rows: the table is empty or its split has no 'train' rows")
    if len(parts["val"]) == 0:
        raise ValueError("no validation rows: early stopping needs a 'val' split")
    resolutions = tuple(sorted(set(parts["train"].batch.r.tolist())))
    deep_encoder = Encoder(DEEP_ENCODER)
    for name, part in parts.items():
        if kind == "seed_mlp":
            part.seed = Encoder("seed128").encode(part.batch)
            continue
        part.deep = deep_encoder.encode(part.batch)
        if name != "test" and set(part.batch.r.tolist()) <= set(resolutions):
            part.wide_index = joint_indices(part.batch, resolutions)
    return PreparedData(
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


#: Ridge penalties tried for the wide part; the one with the best validation MAPE is kept.
RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def _ridge_path(gram: np.ndarray, moment: np.ndarray, penalised: np.ndarray) -> list[np.ndarray]:
    """Ridge solutions for every penalty of `RIDGE_GRID` from one set of normal equations."""
    solutions = []
    for penalty in RIDGE_GRID:
        system = gram.copy()
        system[np.diag_indices(len(gram))] += penalty * penalised
        solutions.append(np.linalg.solve(system, moment))
    return solutions


def _joint_onehot(index: np.ndarray, n_wide: int) -> np.ndarray:
    onehot = np.zeros((len(index), n_wide))
    rows, columns = np.nonzero(index >= 0)
    onehot[rows, index[rows, columns]] = 1.0
    return onehot


def _best(
    solutions: list[np.ndarray], predict: Callable[[np.ndarray], np.ndarray], latency: np.ndarray
) -> np.ndarray:
    errors = [np.mean(np.abs(predict(w) - latency) / latency) for w in solutions]
    return solutions[int(np.argmin(errors))]


def fit_wide(
    train: SplitData, val: SplitData, n_wide: int, mean: np.ndarray, std: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """The wide part by two ridge regressions, each penalty chosen on the validation rows:
    latency on the standardised analytic features (weights, intercept), then the residual on
    the joint one-hots (table; its normal equations accumulated in chunks)."""
    features = np.c_[(train.deep - mean) / std, np.ones(len(train))]
    val_features = np.c_[(val.deep - mean) / std, np.ones(len(val))]
    penalised = np.r_[np.ones(features.shape[1] - 1), 0.0]
    linear = _best(
        _ridge_path(features.T @ features, features.T @ train.latency, penalised),
        lambda w: val_features @ w,
        val.latency,
    )
    residual = train.latency - features @ linear
    gram, moment = np.zeros((n_wide, n_wide)), np.zeros(n_wide)
    for start in range(0, len(train), 4096):
        onehot = _joint_onehot(train.wide_index[start : start + 4096], n_wide)
        gram += onehot.T @ onehot
        moment += onehot.T @ residual[start : start + 4096]
    val_onehot = _joint_onehot(val.wide_index, n_wide)
    val_prior = val_features @ linear
    table = _best(
        _ridge_path(gram, moment, np.ones(n_wide)),
        lambda t: val_prior + val_onehot @ t,
        val.latency,
    )
    return linear[:-1], float(linear[-1]), table


class _Threads:
    def __init__(self, threads: int | None) -> None:
        self.threads = threads or available_cpus()

    def __enter__(self) -> None:
        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.previous)


def _relative_mse(predicted: torch.Tensor, latency: torch.Tensor) -> torch.Tensor:
    return torch.mean(((predicted - latency) / latency) ** 2)


def _validation(
    module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], latency: np.ndarray
) -> dict[str, float]:
    module.eval()
    with torch.no_grad():
        predicted = module(*inputs).double().numpy()
    module.train()
    error = np.abs(predicted - latency)
    return {"val_mae": float(error.mean()), "val_mape": float((error / latency).mean() * 100)}


def _train_loop(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    train_inputs: tuple[torch.Tensor, ...],
    train_latency: torch.Tensor,
    val_inputs: tuple[torch.Tensor, ...],
    val_latency: np.ndarray,
    config: TrainingConfig,
    early_stopping: bool,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    on_epoch: Callable[[dict[str, float]], None] | None,
) -> dict[str, list[float]]:
    """Mini-batch training with the best validation state kept (or the last, without early
    stopping)."""
    generator = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"train_loss": [], "val_mae": [], "val_mape": []}
    best_mae, best_state, stale = np.inf, None, 0
    if early_stopping:
        start = _validation(module, val_inputs, val_latency)
        best_mae, best_state = (
            start["val_mae"],
            {k: v.clone() for k, v in module.state_dict().items()},
        )
    module.train()
    for _epoch in range(config.epochs):
        order = torch.randperm(len(train_latency), generator=generator)
        losses = []
        for begin in range(0, len(order), config.batch_size):
            rows = order[begin : begin + config.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(module(*(x[rows] for x in train_inputs)), train_latency[rows])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        if scheduler is not None:
            scheduler.step()
        scores = _validation(module, val_inputs, val_latency)
        history["train_loss"].append(float(np.mean(losses)))
        history["val_mae"].append(scores["val_mae"])
        history["val_mape"].append(scores["val_mape"])
        if on_epoch is not None:
            on_epoch(
                {
                    "train_loss": history["train_loss"][-1],
                    **scores,
                    "epoch": len(history["val_mae"]),
                }
            )
        if early_stopping:
            if scores["val_mae"] < best_mae:
                best_mae, best_state, stale = (
                    scores["val_mae"],
                    {k: v.clone() for k, v in module.state_dict().items()},
                    0,
                )
            else:
                stale += 1
                if stale > config.patience:
                    break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history


def fit_wide_deep(
    data: PreparedData,
    config: TrainingConfig,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> tuple[WideDeep, dict[str, list[float]]]:
    n_wide = joint_width(len(data.resolutions))
    train, val = data.train, data.val
    if val.wide_index is None:
        raise ValueError(
            f"validation rows use resolutions outside the training rows' {data.resolutions}; "
            "split so that every resolution is trained"
        )
    depth = 0 if config.model == "linear" else config.depth
    module = WideDeep(n_wide, train.deep.shape[1], config.hidden, depth)
    mean = train.deep.mean(axis=0).astype(np.float64)
    std = train.deep.std(axis=0).astype(np.float64) + 1e-6
    weights, intercept, table = fit_wide(train, val, n_wide, mean, std)
    with torch.no_grad():
        module.table.copy_(torch.from_numpy(table))
        module.linear.weight.copy_(torch.from_numpy(weights)[None, :])
        module.linear.bias.fill_(intercept)
        module.deep_mean.copy_(torch.from_numpy(mean))
        module.deep_std.copy_(torch.from_numpy(std))
        module.deep_scale.fill_(float(np.std(train.latency)) or 1.0)
    val_inputs = (torch.from_numpy(val.wide_index), torch.from_numpy(val.deep))
    wide_only = _validation(module, val_inputs, val.latency)
    history: dict[str, list[float]] = {"train_loss": [], "val_mae": [], "val_mape": []}
    if depth == 0 or wide_only["val_mape"] < EXACT_MAPE:
        if depth:
            logger.info(
                "The wide part alone is exact on validation (MAPE %.4f%%); no deep part",
                wide_only["val_mape"],
            )
            module.deep = None
        if on_epoch is not None:
            on_epoch({"train_loss": 0.0, **wide_only, "epoch": 1})
        return module, history
    optimizer = torch.optim.AdamW(
        [
            {"params": module.deep.parameters(), "weight_decay": config.weight_decay},
            {
                "params": [module.table, *module.linear.parameters()],
                "weight_decay": 0.0,
                "lr": config.lr * 0.1,
            },
        ],
        lr=config.lr,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs)
    history = _train_loop(
        module,
        optimizer,
        loss_fn=_relative_mse,
        train_inputs=(torch.from_numpy(train.wide_index), torch.from_numpy(train.deep)),
        train_latency=torch.from_numpy(train.latency.astype(np.float32)),
        val_inputs=val_inputs,
        val_latency=val.latency,
        config=config,
        early_stopping=True,
        scheduler=scheduler,
        on_epoch=on_epoch,
    )
    return module, history


def fit_seed_mlp(
    data: PreparedData,
    config: TrainingConfig,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> tuple[SeedMLP, dict[str, list[float]]]:
    """The seed's recipe: SGD on the RMSE of raw latency, last epoch kept."""
    module = SeedMLP(data.train.seed.shape[1], config.hidden)
    optimizer = torch.optim.SGD(
        module.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )

    def rmse(predicted: torch.Tensor, latency: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.nn.functional.mse_loss(predicted, latency) + 1e-6)

    history = _train_loop(
        module,
        optimizer,
        loss_fn=rmse,
        train_inputs=(torch.from_numpy(data.train.seed),),
        train_latency=torch.from_numpy(data.train.latency.astype(np.float32)),
        val_inputs=(torch.from_numpy(data.val.seed),),
        val_latency=data.val.latency,
        config=config,
        early_stopping=False,
        scheduler=None,
        on_epoch=on_epoch,
    )
    return module, history


def fit_prepared(
    data: PreparedData,
    config: TrainingConfig | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> LatencyPredictor:
    """Train one predictor on prepared data and evaluate it on every split."""
    config = config or TrainingConfig()
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    with _Threads(config.threads):
        if config.model == "seed_mlp":
            module, history = fit_seed_mlp(data, config, on_epoch)
            encoder = {"input": {"name": "seed128"}}
            architecture = {"in_features": data.train.seed.shape[1], "hidden": config.hidden}
            kind, normalization = "seed_mlp", None
        else:
            module, history = fit_wide_deep(data, config, on_epoch)
            encoder = {
                "wide": Encoder("joint", resolutions=data.resolutions).to_dict(),
                "deep": {"name": DEEP_ENCODER},
            }
            architecture = {
                "n_wide": module.table.numel(),
                "deep_features": int(module.deep_mean.numel()),
                "hidden": config.hidden,
                "depth": 0 if module.deep is None else config.depth,
            }
            kind = "wide_deep"
            normalization = "deep inputs standardised by training mean and std (deep_mean, deep_std); deep output scaled by deep_scale"
    seconds = time.perf_counter() - started
    predictor = LatencyPredictor(
        module,
        {
            "kind": kind,
            "format": CHECKPOINT_FORMAT,
            "encoder": encoder,
            "architecture": architecture,
            "target": "latency_ms",
            "loss": "rmse (seed recipe)" if kind == "seed_mlp" else "relative squared error",
            "normalization": normalization,
            "hardware": data.hardware,
            "space": data.space,
            "width_mult": data.width_mult,
            "latency_ms": {
                name: float(value)
                for name, value in zip(
                    ("min", "p25", "median", "p75", "max"),
                    np.percentile(data.train.latency, [0, 25, 50, 75, 100]),
                    strict=True,
                )
            },
            "training": {
                "config": config.to_dict(),
                "split": data.split,
                "rows": data.info.get("rows"),
                "epochs_run": len(history["val_mae"]),
                "seconds": round(seconds, 3),
            },
            "history": history,
            "versions": library_versions(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    predictor.metadata["metrics"] = evaluate(predictor, data)
    return predictor


def evaluate(predictor: LatencyPredictor, data: PreparedData) -> dict[str, dict[str, float]]:
    metrics = {}
    for name in ("train", "val", "test"):
        part = getattr(data, name)
        if len(part):
            metrics[name] = regression_metrics(part.latency, predictor.predict_batch(part.batch))
    return metrics


def _train_generalized_predictor(table: pd.DataFrame, *, split: str, seed: int) -> LatencyPredictor:
    if "split" not in table.columns:
        table = split_table(table, split, seed=seed)
    predictor = train_generalized(table[table["split"] == "train"], seed=seed)
    test = table[table["split"] == "test"]
    predictor.metadata["metrics"]["test"] = {
        device: regression_metrics(
            rows["latency"].to_numpy(dtype=float),
            predictor.for_device(device).predict_batch(ArchBatch.from_frame(rows)),
        )
        for device, rows in test.groupby(dataset_names(test))
    }
    logger.info(
        "Trained a generalized predictor on %s: test MAPE %s",
        ", ".join(predictor.devices),
        ", ".join(f"{d} {m['mape']:.2f}%" for d, m in predictor.metrics["test"].items()),
    )
    return predictor


def train_predictor(
    frame: pd.DataFrame,
    *,
    config: TrainingConfig | dict[str, Any] | None = None,
    split: str = "key",
    seed: int = 0,
) -> LatencyPredictor:
    """Train the default predictor on a latency table, no Ray needed.

    ``frame`` is `load_latency_csv` output, or any table with ``child_arch`` and ``latency``;
    a ``split`` column (train / val / test) is used as given, else ``split`` ("key" or
    "seed") makes one, shuffled by ``seed``. Test metrics are in ``predictor.metrics["test"]``.
    A table of several devices (its ``hardware`` column) gives the generalized model
    (`train_generalized` on the training rows; test metrics per device's head).
    """
    table = as_latency_table(frame)
    if table["hardware"].nunique() > 1:
        return _train_generalized_predictor(table, split=split, seed=seed)
    if not isinstance(config, TrainingConfig):
        config = TrainingConfig.from_dict(config)
    data = prepare_data(table, split=split, seed=seed, kind=config.model)
    predictor = fit_prepared(data, config)
    test = predictor.metrics.get("test", {})
    logger.info(
        "Trained a %s predictor for %s/%s on %d rows in %.1f s: test MAE %.3f ms, MAPE %.2f%%, Spearman %.4f",
        predictor.kind,
        data.hardware,
        data.space,
        len(data.train),
        predictor.metadata["training"]["seconds"],
        test.get("mae", float("nan")),
        test.get("mape", float("nan")),
        test.get("spearman", float("nan")),
    )
    return predictor
