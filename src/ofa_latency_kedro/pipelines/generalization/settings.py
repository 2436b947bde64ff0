"""``params:generalization``: the datasets one model is trained across, the devices held out
in turn, and the model's training."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.pipelines.common import names_or_all
from ofa_latency_kedro.predictors.config import GeneralizedConfig
from ofa_latency_kedro.settings_dict import from_settings


@dataclass(frozen=True)
class GeneralizationSettings:
    """``datasets``: ``all`` or dataset names; ``held_out``: ``all`` or the hardware names
    to hold out in turn (the held-out device contributes no training row);
    ``reference_count``: reference subnets that describe a device (HELP-style); ``model``:
    the generalized model's training (`GeneralizedConfig`)."""

    datasets: str | tuple[str, ...] = "all"
    held_out: str | tuple[str, ...] = "all"
    reference_count: int = 10
    model: GeneralizedConfig = field(default_factory=GeneralizedConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", names_or_all(self.datasets))
        object.__setattr__(self, "held_out", names_or_all(self.held_out))
        if self.reference_count < 2:
            raise ParameterError(
                "reference_count", f"must be at least 2, got {self.reference_count!r}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> GeneralizationSettings:
        return from_settings(cls, values, "generalization")
