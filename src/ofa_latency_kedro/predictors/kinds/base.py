"""What every predictor kind says about itself: how to build its module from a checkpoint's
metadata, encode a batch of subnets into the module's inputs, predict latency from them,
list its trainable heads, and (for the kinds `train_predictor` trains from one device's
table) fit itself to prepared data."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from ofa_latency_kedro.encoding.encoders import Encoder
from ofa_latency_kedro.predictors.metadata import PredictorError, PredictorMetadata
from ofa_latency_kedro.search_space import ArchBatch

if TYPE_CHECKING:
    from ofa_latency_kedro.predictors.config import TrainingConfig
    from ofa_latency_kedro.predictors.data import PreparedData

EpochCallback = Callable[[dict[str, float]], None]


@dataclass
class Fitted:
    """A trained module and what its metadata says about it."""

    module: torch.nn.Module
    encoders: dict[str, Encoder]
    architecture: dict[str, Any]
    loss: str
    normalization: str | None = None
    history: dict[str, list[float]] = field(default_factory=dict)


class PredictorKind(ABC):
    """One kind of latency predictor. Kinds are stateless: every method is a classmethod
    over a module and its metadata."""

    name: ClassVar[str]
    #: What the module's output is: latency in ms, or log latency (per training device).
    target: ClassVar[str] = "latency_ms"
    #: Whether `train_predictor` trains it from one device's table (`TrainingConfig.kind`).
    trainable: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def build(cls, metadata: PredictorMetadata) -> torch.nn.Module:
        """An untrained module of the metadata's architecture (loading fills its weights)."""

    @classmethod
    @abstractmethod
    def module_inputs(
        cls, metadata: PredictorMetadata, batch: ArchBatch, hardware: np.ndarray | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The module's inputs for ``batch`` (what weight training feeds it); a
        `PredictorError` says why a batch cannot be encoded for this predictor."""

    @classmethod
    @abstractmethod
    def predict_chunk(
        cls,
        module: torch.nn.Module,
        metadata: PredictorMetadata,
        batch: ArchBatch,
        hardware: np.ndarray | None = None,
    ) -> np.ndarray:
        """Latency (ms) of a bounded chunk of subnets, before any calibration."""

    @classmethod
    def head_parameters(cls, module: torch.nn.Module) -> list[torch.nn.Parameter]:
        """The output heads: what a few-shot ``last_layer`` adaptation retrains."""
        return module.head_parameters()

    @classmethod
    def training_inputs(
        cls, batch: ArchBatch, resolutions: tuple[int, ...]
    ) -> tuple[np.ndarray, ...] | None:
        """The module inputs of a training split (None where the split cannot be trained
        on); only kinds `train_predictor` trains have them."""
        raise PredictorError(f"predictors of kind {cls.name!r} are not trained from one table")

    @classmethod
    def fit(
        cls, data: PreparedData, config: TrainingConfig, on_epoch: EpochCallback | None
    ) -> Fitted:
        """Train a module on prepared data (kinds `train_predictor` trains)."""
        raise PredictorError(f"predictors of kind {cls.name!r} are not trained from one table")


def validation_scores(predicted: np.ndarray, latency: np.ndarray) -> dict[str, float]:
    """The validation figures training watches: MAE (ms) and MAPE (%)."""
    error = np.abs(predicted - latency)
    return {"val_mae": float(error.mean()), "val_mape": float((error / latency).mean() * 100)}


def tensors(arrays: Mapping[int, np.ndarray] | tuple[np.ndarray, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
