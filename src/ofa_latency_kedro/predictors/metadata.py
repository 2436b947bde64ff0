"""What a predictor is, as frozen values: `PredictorMetadata` (kind, encoders, what it was
trained on, how, and how well), `DeviceEmbedding` (where a generalized predictor stands),
`Calibration` (an output mapping fitted by few-shot adaptation) and `AdaptationRecord`.

A predictor never changes after it is built: a derived one (placed on a device, adapted,
evaluated) is a new predictor with new metadata (`PredictorMetadata.replace`). Mappings inside
are read-only views and lists are tuples, so nothing can change them behind the predictor's
back (it caches its encoders from them). ``to_dict``/``from_dict`` give the JSON of a
checkpoint, with the keys checkpoints have always had.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from ofa_latency_kedro.encoding.encoders import Encoder
from ofa_latency_kedro.errors import OfaLatencyError


class PredictorError(OfaLatencyError, ValueError):
    """A predictor file that cannot be loaded, or a predictor that does not fit what it is
    asked to do (another space, width, kind or device)."""


#: Keys of older checkpoints that carry nothing a predictor needs.
_LEGACY_KEYS = frozenset({"format", "mlflow_run_id"})


def frozen(value: Any) -> Any:
    """``value`` with every dict a read-only view and every list a tuple, recursively."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def thawed(value: Any) -> Any:
    """The JSON-ready copy of a `frozen` value (dicts and lists)."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thawed(v) for v in value]
    return value


@dataclass(frozen=True)
class DeviceEmbedding:
    """Where a generalized predictor stands: log latency on the device is ``intercept`` plus
    the ``weights``-blend of the log latencies of its training devices (one weight each).
    ``fitted_on`` says from what: a number of measured subnets, ``registry``, or the name of
    the training device it is; ``prior`` the pull towards the average device, when fitted."""

    intercept: float
    weights: tuple[float, ...]
    fitted_on: int | str | None = None
    prior: float | None = None

    def __post_init__(self) -> None:
        weights = tuple(float(w) for w in self.weights)
        if not weights or not all(np.isfinite(weights)) or not np.isfinite(self.intercept):
            raise PredictorError(f"a device embedding needs finite numbers, got {self}")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "intercept", float(self.intercept))

    @classmethod
    def of_device(
        cls, index: int, devices: int, fitted_on: int | str | None = None
    ) -> DeviceEmbedding:
        """The embedding that is training device ``index`` itself (its own head)."""
        return cls(0.0, tuple(float(i == index) for i in range(devices)), fitted_on)

    @classmethod
    def average(cls, chosen: Sequence[int], devices: int) -> DeviceEmbedding:
        """The plain average of the training devices ``chosen``: where a generalized
        predictor stands on a device it knows nothing about."""
        weights = np.zeros(devices)
        weights[list(chosen)] = 1 / len(chosen)
        return cls(0.0, tuple(weights.tolist()), 0)

    @classmethod
    def blend(
        cls,
        chosen: Sequence[int],
        blend: np.ndarray,
        *,
        devices: int,
        intercept: float,
        fitted_on: int | str | None,
        prior: float | None = None,
    ) -> DeviceEmbedding:
        """Weights ``blend`` on the training devices ``chosen``, 0 on the others."""
        weights = np.zeros(devices)
        weights[list(chosen)] = blend
        return cls(float(intercept), tuple(weights.tolist()), fitted_on, prior)

    def to_dict(self) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "weights": list(self.weights),
            "fitted_on": self.fitted_on,
            "prior": self.prior,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DeviceEmbedding:
        return cls(
            float(values["intercept"]),
            tuple(values["weights"]),
            values.get("fitted_on"),
            values.get("prior"),
        )


@dataclass(frozen=True)
class Calibration:
    """``log y = a + b log p + sum_j source_weights[j] log p_j + z . coef``: the predictor's
    own prediction ``p`` mapped in log space, blended with its sources' predictions ``p_j``,
    plus a term in the standardised global costs ``z`` of the subnet (`features`, with the
    ``mean`` and ``std`` they were standardised by) when ``coef`` is set."""

    a: float
    b: float
    source_weights: tuple[float, ...] = ()
    features: tuple[str, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    coef: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return thawed(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Calibration:
        def numbers(key: str) -> tuple[float, ...] | None:
            value = values.get(key)
            return None if value is None else tuple(float(v) for v in value)

        features = values.get("features")
        return cls(
            a=float(values["a"]),
            b=float(values["b"]),
            source_weights=numbers("source_weights") or (),
            features=None if features is None else tuple(features),
            mean=numbers("mean"),
            std=numbers("std"),
            coef=numbers("coef") or None,
        )


@dataclass(frozen=True)
class Conformal:
    """What a predictor's intervals are calibrated on: the log residuals ``log(measured /
    predicted)`` of subnets it did not train on, oldest first, and ``effective_size``: the
    calibration rows are weighted by recency, ``(1 - 1/effective_size) ** age``, so that a
    device that drifted over its measurements widens the interval the way it last moved
    (weighted split conformal, Barber et al. 2023); None weighs them alike. ``source`` says
    where the residuals come from (validation rows, cross-validation inside K samples)."""

    log_residuals: tuple[float, ...]
    source: str
    effective_size: float | None = None

    def __post_init__(self) -> None:
        residuals = tuple(float(r) for r in self.log_residuals)
        if not residuals or not all(np.isfinite(residuals)):
            raise PredictorError(
                f"conformal calibration needs finite residuals, got {len(residuals)}"
            )
        object.__setattr__(self, "log_residuals", residuals)

    def bounds(self, level: float) -> tuple[float, float]:
        """Lower and upper log-ratio bounds of a ``level`` interval: the weighted
        ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the residuals, the new subnet
        counted with the largest weight at the far end (so ``level`` is not overstated)."""
        if not 0 < level < 1:
            raise PredictorError(f"an interval level must be between 0 and 1, got {level!r}")
        residuals = np.asarray(self.log_residuals)
        n = len(residuals)
        if self.effective_size is None:
            weights = np.ones(n)
        else:
            weights = (1 - 1 / self.effective_size) ** (n - 1 - np.arange(n))
        tail = (1 - level) / 2

        def quantile(values: np.ndarray, share: float) -> float:
            order = np.argsort(values, kind="stable")
            cumulative = np.cumsum(np.append(weights, weights.max())[order])
            cumulative /= cumulative[-1]
            return float(values[order][min(np.searchsorted(cumulative, share), n)])

        return (
            quantile(np.append(residuals, -np.inf), tail),
            quantile(np.append(residuals, np.inf), 1 - tail),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_residuals": list(self.log_residuals),
            "source": self.source,
            "effective_size": self.effective_size,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Conformal:
        return cls(
            tuple(values["log_residuals"]), str(values["source"]), values.get("effective_size")
        )

    @classmethod
    def recent(cls, log_residuals: np.ndarray, source: str) -> Conformal:
        """Residuals in measurement order, weighted by recency with an effective size of a
        third of them (at least 100): the default calibration of a trained predictor."""
        return cls(tuple(log_residuals), source, max(100.0, len(log_residuals) / 3))


@dataclass(frozen=True)
class AdaptationRecord:
    """How a predictor was carried to a new device: the method chosen, from how many
    samples, each candidate method's cross-validated MAPE, the source and blended devices."""

    method: str
    k: int
    cv_mape: Mapping[str, float] = field(default_factory=dict)
    source_hardware: str | None = None
    blended_sources: tuple[str | None, ...] = ()
    hardware: str | None = None
    space: str | None = None
    seed: int = 0
    seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cv_mape", frozen(self.cv_mape))
        object.__setattr__(self, "blended_sources", tuple(self.blended_sources))

    def to_dict(self) -> dict[str, Any]:
        return thawed({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AdaptationRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class PredictorMetadata:
    """Everything a checkpoint says about its predictor besides the weights.

    ``kind`` names the predictor kind (`ofa_latency_kedro.predictors.kinds`), ``encoders``
    the encoding of each input part, ``architecture`` the module's shape; ``hardware``,
    ``space`` and ``width_mult`` the dataset it predicts (a subnet of another width or space
    is refused; None: any); ``network_width_mult`` the width of the network its module reads
    when that differs (an adapted predictor of a device of another width family); ``domain``
    the resolutions and MACs range of its training subnets and ``latency_ms`` the spread of
    its training latencies (beyond them, predictions are flagged as extrapolations);
    ``training``, ``history`` and ``metrics`` how it was trained and how well it did. A
    generalized predictor lists its training ``devices`` (with their hardware, space, width
    and registry descriptors) and stands on a device by its ``embedding``; an adapted one
    carries its ``calibration`` and ``adaptation`` record."""

    kind: str
    encoders: Mapping[str, Encoder]
    architecture: Mapping[str, Any]
    target: str = "latency_ms"
    hardware: str | None = None
    space: str | None = None
    width_mult: float | None = None
    network_width_mult: float | None = None
    domain: Mapping[str, Any] = field(default_factory=dict)
    normalization: str | None = None
    loss: str | None = None
    latency_ms: Mapping[str, float] | None = None
    training: Mapping[str, Any] = field(default_factory=dict)
    history: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    devices: tuple[str, ...] = ()
    device_hardware: tuple[str, ...] = ()
    device_spaces: tuple[str, ...] = ()
    device_widths: tuple[float | None, ...] = ()
    descriptors: Mapping[str, Any] = field(default_factory=dict)
    embedding: DeviceEmbedding | None = None
    calibration: Calibration | None = None
    adaptation: AdaptationRecord | None = None
    conformal: Conformal | None = None
    device_conformal: Mapping[str, Conformal] = field(default_factory=dict)
    source: str | None = None
    versions: Mapping[str, str | None] = field(default_factory=dict)
    created_at: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "architecture",
            "domain",
            "latency_ms",
            "training",
            "history",
            "metrics",
            "descriptors",
            "versions",
        ):
            object.__setattr__(self, name, frozen(getattr(self, name)))
        object.__setattr__(self, "encoders", MappingProxyType(dict(self.encoders)))
        object.__setattr__(self, "device_conformal", MappingProxyType(dict(self.device_conformal)))
        for name in ("devices", "device_hardware", "device_spaces"):
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))
        object.__setattr__(self, "device_widths", tuple(self.device_widths))
        for name in ("width_mult", "network_width_mult"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))
        if self.embedding is not None and len(self.embedding.weights) != len(self.devices):
            raise PredictorError(
                f"the embedding weighs {len(self.embedding.weights)} devices, the predictor "
                f"was trained on {len(self.devices)}"
            )

    def replace(self, **changes: Any) -> PredictorMetadata:
        """A copy with ``changes`` (the original stays as it is)."""
        return dataclasses.replace(self, **changes)

    @property
    def encoder_name(self) -> str:
        """``part:name`` of every encoder, joined by ``+`` (``wide:joint+deep:analytic``)."""
        return "+".join(f"{part}:{encoder.name}" for part, encoder in self.encoders.items())

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of a checkpoint."""
        values = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name
            not in (
                "encoders",
                "embedding",
                "calibration",
                "adaptation",
                "conformal",
                "device_conformal",
            )
        }
        values["encoder"] = {part: encoder.to_dict() for part, encoder in self.encoders.items()}
        for name in ("embedding", "calibration", "adaptation", "conformal"):
            value = getattr(self, name)
            if value is not None:
                values[name] = value.to_dict()
        if self.device_conformal:
            values["device_conformal"] = {
                device: conformal.to_dict() for device, conformal in self.device_conformal.items()
            }
        return thawed(values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PredictorMetadata:
        """From a checkpoint's JSON object; unknown keys are refused by name."""
        values = {k: v for k, v in values.items() if k not in _LEGACY_KEYS}
        known = {f.name for f in dataclasses.fields(cls)} - {"encoders"} | {"encoder"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PredictorError(f"unknown predictor metadata field(s) {', '.join(unknown)}")
        if "kind" not in values or "encoder" not in values or "architecture" not in values:
            raise PredictorError("predictor metadata needs kind, encoder and architecture")
        arguments = dict(values)
        arguments["encoders"] = {
            part: Encoder.from_dict(spec) for part, spec in arguments.pop("encoder").items()
        }
        for name, kind in (
            ("embedding", DeviceEmbedding),
            ("calibration", Calibration),
            ("adaptation", AdaptationRecord),
            ("conformal", Conformal),
        ):
            if arguments.get(name) is not None:
                arguments[name] = kind.from_dict(arguments[name])
        arguments["device_conformal"] = {
            device: Conformal.from_dict(values)
            for device, values in (arguments.get("device_conformal") or {}).items()
        }
        return cls(**arguments)
