"""``params:training``: which datasets get a predictor, and how it is trained or tuned."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.pipelines.common import names_or_all
from ofa_latency_kedro.predictors.config import TrainingConfig
from ofa_latency_kedro.predictors.tuning import TuneSettings
from ofa_latency_kedro.settings_dict import from_settings


@dataclass(frozen=True)
class TrainingSettings:
    """``datasets``: ``all`` or the names (``<hardware>_<space>``) to train; smaller datasets
    than ``min_rows`` subnets are skipped with a warning. ``config``: the training run
    (`TrainingConfig`); ``tune``: a Ray Tune search over it (`TuneSettings`, off by default).
    ``progress``: a bar over epochs (None: only on a terminal)."""

    datasets: str | tuple[str, ...] = "all"
    min_rows: int = 30
    progress: bool | None = True
    config: TrainingConfig = field(default_factory=TrainingConfig)
    tune: TuneSettings = field(default_factory=TuneSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", names_or_all(self.datasets))
        if self.min_rows < 3:
            raise ParameterError("min_rows", f"must be at least 3, got {self.min_rows!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> TrainingSettings:
        return from_settings(cls, values, "training")
