"""A one-device latency table split and encoded once, ready for any number of training runs
(and Ray Tune trials, which receive it through Ray's object store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ofa_latency_kedro.search_space import ArchBatch


@dataclass
class SplitData:
    """One split's subnets, latencies (ms) and the module inputs of the kind being trained
    (None where the split cannot be encoded for training, e.g. test rows at a resolution
    the training rows lack: those are predicted, not trained on)."""

    batch: ArchBatch
    latency: np.ndarray
    inputs: tuple[np.ndarray, ...] | None = None

    def __len__(self) -> int:
        return len(self.latency)


@dataclass
class PreparedData:
    """The train/val/test splits of one dataset, encoded for one predictor kind."""

    kind: str
    train: SplitData
    val: SplitData
    test: SplitData
    resolutions: tuple[int, ...]
    hardware: str | None
    space: str | None
    width_mult: float | None
    split: str
    info: dict[str, Any] = field(default_factory=dict)

    def splits(self) -> dict[str, SplitData]:
        return {"train": self.train, "val": self.val, "test": self.test}
