"""Hyper-parameters of predictor training, as settings that refuse unknown keys: the one
place of their defaults (the pipelines' ``training.config`` and ``generalization.model``
parameters, `train_predictor`, `train_generalized` and `LatencyRegressor` all read them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.predictors.kinds import trainable_kinds
from ofa_latency_kedro.settings_dict import from_settings


def _at_least(settings: object, minimum: float, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        if not value >= minimum:
            raise ParameterError(name, f"must be at least {minimum:g}, got {value!r}")


@dataclass(frozen=True)
class TrainingConfig:
    """One training run of a per-device predictor: its ``kind`` (a trainable kind of the
    registry: ``wide_deep``, the default, or ``seed_mlp``, the seed's MLP and recipe), the
    network size (``depth`` 0: the wide part alone, a linear model), the optimiser and the
    early stopping. The defaults train the default predictor."""

    kind: str = "wide_deep"
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
        if self.kind not in trainable_kinds():
            raise ParameterError(
                "kind", f"must be one of {', '.join(trainable_kinds())}, got {self.kind!r}"
            )
        _at_least(self, 1, "hidden", "batch_size", "epochs", "patience")
        _at_least(self, 0, "depth", "lr", "weight_decay", "momentum")
        if self.threads is not None:
            _at_least(self, 1, "threads")

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any] | TrainingConfig | None, what: str = "training.config"
    ) -> TrainingConfig:
        return from_settings(cls, values, what)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The seed's training recipe, as its code ran it.
SEED_RECIPE = TrainingConfig(
    kind="seed_mlp", hidden=400, lr=1e-3, weight_decay=1e-3, momentum=0.9, batch_size=32, epochs=50
)


@dataclass(frozen=True)
class GeneralizedConfig:
    """Training of the generalized model (`train_generalized`): ``basis`` latency behaviours
    learnt by a trunk of ``hidden`` units, AdamW with a cosine schedule on the squared error
    of log latency."""

    basis: int = 64
    hidden: int = 256
    epochs: int = 30
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        _at_least(self, 1, "basis", "hidden", "epochs", "batch_size")
        _at_least(self, 0, "lr", "weight_decay")

    @classmethod
    def from_dict(
        cls,
        values: Mapping[str, Any] | GeneralizedConfig | None,
        what: str = "generalization.model",
    ) -> GeneralizedConfig:
        return from_settings(cls, values, what)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
