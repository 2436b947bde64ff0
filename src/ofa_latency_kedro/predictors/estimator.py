"""`LatencyRegressor`: the default latency predictor as a scikit-learn estimator, so that
``clone``, ``cross_val_score``, ``GridSearchCV`` and ``Pipeline`` work with it.

Its parameters are the fields of `TrainingConfig` (same names, same defaults) plus how the
rows it is given are split for early stopping (``validation_fraction``, ``split``). ``fit``
trains a `LatencyPredictor` (``predictor_``) on every row it is given but the validation
share; ``predict`` answers milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ofa_latency_kedro.encoding.splits import DEFAULT_SPLIT
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.predictors.config import TrainingConfig
from ofa_latency_kedro.predictors.predictor import LatencyPredictor
from ofa_latency_kedro.predictors.training import train_predictor
from ofa_latency_kedro.search_space import Arch, ArchBatch

_DEFAULTS = TrainingConfig()
_CONFIG_FIELDS = tuple(f.name for f in fields(TrainingConfig))


def _archs(X: Any) -> tuple[list[Any], Any]:
    """The archs of ``X`` (a frame with ``child_arch``, a batch, or a list of archs) and the
    width of each (or None)."""
    if isinstance(X, pd.DataFrame):
        if "child_arch" not in X.columns:
            raise ParameterError(
                "X", f"a frame of subnets needs a 'child_arch' column, got {list(X.columns)}"
            )
        widths = X["width_mult"].tolist() if "width_mult" in X.columns else None
        return X["child_arch"].tolist(), widths
    if isinstance(X, ArchBatch):
        return X.to_archs(), None
    if isinstance(X, (str, bytes)) or not isinstance(X, Iterable):
        raise ParameterError(
            "X", f"must be a frame with 'child_arch' or a list of archs, got {type(X).__name__}"
        )
    return list(X), None


class LatencyRegressor(RegressorMixin, BaseEstimator):
    """The default latency predictor (`train_predictor`) as a scikit-learn regressor.

    ``X``: a DataFrame with a ``child_arch`` column (and optionally ``width_mult``), or a
    list of archs (`Arch`, the seed's dicts or strings); ``y``: latency in ms."""

    def __init__(
        self,
        *,
        kind: str = _DEFAULTS.kind,
        hidden: int = _DEFAULTS.hidden,
        depth: int = _DEFAULTS.depth,
        lr: float = _DEFAULTS.lr,
        weight_decay: float = _DEFAULTS.weight_decay,
        batch_size: int = _DEFAULTS.batch_size,
        epochs: int = _DEFAULTS.epochs,
        patience: int = _DEFAULTS.patience,
        momentum: float = _DEFAULTS.momentum,
        seed: int = _DEFAULTS.seed,
        threads: int | None = _DEFAULTS.threads,
        validation_fraction: float = 0.15,
        split: str = DEFAULT_SPLIT,
    ) -> None:
        self.kind = kind
        self.hidden = hidden
        self.depth = depth
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.momentum = momentum
        self.seed = seed
        self.threads = threads
        self.validation_fraction = validation_fraction
        self.split = split

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # subnets arrive as text or dicts, not numbers
        return tags

    def training_config(self) -> TrainingConfig:
        """The estimator's parameters as a `TrainingConfig` (checked there)."""
        return TrainingConfig.from_dict(
            {name: getattr(self, name) for name in _CONFIG_FIELDS}, "LatencyRegressor"
        )

    def _frame(self, X: Any, y: Any = None) -> pd.DataFrame:
        archs, widths = _archs(X)
        frame = pd.DataFrame(
            {
                "child_arch": [
                    a if isinstance(a, (str, bytes)) else Arch.parse(a).to_json() for a in archs
                ]
            }
        )
        if widths is not None:
            frame["width_mult"] = widths
        if y is not None:
            latency = np.asarray(y, dtype=np.float64).reshape(-1)
            if len(latency) != len(frame):
                raise ParameterError("y", f"has {len(latency)} latencies for {len(frame)} subnets")
            frame["latency"] = latency
        return frame

    def fit(self, X: Any, y: Any) -> LatencyRegressor:
        """Train on the subnets ``X`` and their latencies ``y`` (ms)."""
        if not 0 < self.validation_fraction < 1:
            raise ParameterError(
                "validation_fraction", f"must be between 0 and 1, got {self.validation_fraction!r}"
            )
        frame = self._frame(X, y)
        self.predictor_ = train_predictor(
            frame,
            config=self.training_config(),
            split=self.split,
            seed=self.seed,
            fractions=(1 - self.validation_fraction, self.validation_fraction, 0.0),
        )
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Latency (ms) of every subnet of ``X``."""
        check_is_fitted(self, "predictor_")
        if isinstance(X, ArchBatch):
            return self.predictor_.predict_batch(X)
        archs, widths = _archs(X)
        if widths is None:
            return self.predictor_.predict(archs)
        return self.predictor_.predict(
            ArchBatch.from_archs(
                [Arch.parse(a, width_mult=w) for a, w in zip(archs, widths, strict=True)]
            )
        )

    @property
    def predictor(self) -> LatencyPredictor:
        """The trained `LatencyPredictor` (after ``fit``)."""
        check_is_fitted(self, "predictor_")
        return self.predictor_
