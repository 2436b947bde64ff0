"""``params:finetuning``: the new device, the predictors carried to it, and the learning
curves measured."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.pipelines.common import names_or_all
from ofa_latency_kedro.predictors.adaptation import METHODS, MIN_SAMPLES
from ofa_latency_kedro.search_space.selection import SAMPLERS
from ofa_latency_kedro.settings_dict import from_settings


@dataclass(frozen=True)
class FinetuningSettings:
    """``target``: the new device's dataset (``<hardware>_<space>``). ``sources``: predictor
    names, the first adapted, the others blended in (a name may be a registered MLflow model,
    ``models:/<name>@<alias>`` or ``models:/<name>/<version>``, in place of the checkpoint of
    the dataset it predicts); ``auto``: every predictor of the target's space trained on
    other hardware. Learning curves for every K of ``ks`` (drawn
    from the target's training split, scored on its test split), draw, method and sampler;
    the adapted predictor saved is the one from ``adapt_k`` samples picked by
    ``adapt_sampler``."""

    target: str
    sources: str | tuple[str, ...] = "auto"
    ks: tuple[int, ...] = (5, 10, 20, 50, 100, 700)
    draws: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = ("auto", *METHODS)
    samplers: tuple[str, ...] = SAMPLERS
    adapt_k: int = 20
    adapt_sampler: str = "informative"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "sources", names_or_all(self.sources) if self.sources != "auto" else "auto"
        )
        for name in ("ks", "adapt_k"):
            values = getattr(self, name)
            for value in values if isinstance(values, tuple) else (values,):
                if value < MIN_SAMPLES:
                    raise ParameterError(
                        name, f"must be at least {MIN_SAMPLES} measured subnets, got {value}"
                    )
        unknown = [m for m in self.methods if m != "auto" and m not in METHODS]
        if unknown:
            raise ParameterError(
                "methods", f"names unknown methods {unknown}; known: auto, {', '.join(METHODS)}"
            )
        for name, values in (("samplers", self.samplers), ("adapt_sampler", (self.adapt_sampler,))):
            wrong = [v for v in values if v not in SAMPLERS]
            if wrong:
                raise ParameterError(name, f"must be among {', '.join(SAMPLERS)}, got {wrong}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> FinetuningSettings:
        return from_settings(cls, values, "finetuning")
