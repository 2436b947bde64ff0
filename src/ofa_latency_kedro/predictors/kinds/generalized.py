"""``generalized``: one model over several devices (`SharedBasis`, trained by
`train_generalized`), which gives the log latency of every subnet on every training device;
it stands on one device by its embedding (`DeviceEmbedding`): latency = exp(intercept +
weights . device log latencies). It reads the subnet's genes only (the same genes on a
network of another width are the same input), encoded by ``analytic+seed128``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from ofa_latency_kedro.predictors.kinds.base import PredictorKind
from ofa_latency_kedro.predictors.metadata import PredictorError, PredictorMetadata
from ofa_latency_kedro.predictors.models import SharedBasis
from ofa_latency_kedro.search_space import ArchBatch

ENCODER = "analytic+seed128"


class GeneralizedKind(PredictorKind):
    name: ClassVar[str] = "generalized"
    target: ClassVar[str] = "log_latency_ms"
    trainable: ClassVar[bool] = False

    @classmethod
    def build(cls, metadata: PredictorMetadata) -> SharedBasis:
        shape = metadata.architecture
        return SharedBasis(
            shape["in_features"], len(metadata.devices), shape["basis"], shape["hidden"]
        )

    @classmethod
    def module_inputs(
        cls, metadata: PredictorMetadata, batch: ArchBatch, hardware: np.ndarray | None = None
    ) -> tuple[torch.Tensor, ...]:
        return (torch.from_numpy(metadata.encoders["input"].encode(batch.at_width(1.0))),)

    @classmethod
    def device_log_latency(
        cls, module: torch.nn.Module, metadata: PredictorMetadata, batch: ArchBatch
    ) -> np.ndarray:
        """(n, devices) log latency of every subnet on every training device: the columns
        an embedding blends."""
        return module(*cls.module_inputs(metadata, batch)).double().numpy()

    @classmethod
    def predict_chunk(
        cls,
        module: torch.nn.Module,
        metadata: PredictorMetadata,
        batch: ArchBatch,
        hardware: np.ndarray | None = None,
    ) -> np.ndarray:
        embedding = metadata.embedding
        if embedding is None:
            raise PredictorError(
                "the generalized predictor stands on no device: place it with "
                "adapt_predictor(method='embedding') or for_device(<training dataset>)"
            )
        log_latency = cls.device_log_latency(module, metadata, batch) @ np.asarray(
            embedding.weights
        )
        return np.exp(log_latency + embedding.intercept)
