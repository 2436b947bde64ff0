"""`LatencyPredictor`: one interface (``predict``, ``save``, ``load``) over every predictor
kind of the registry (`ofa_latency_kedro.predictors.kinds`), the seed's checkpoints included.

A predictor is immutable: its module is in eval mode and its `PredictorMetadata` frozen, so
the encoders it builds once stay right; a derived predictor (on another device, adapted,
evaluated) is a new object (`LatencyPredictor.replace`) that may share the module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ofa_latency_kedro.encoding.loading import dataset_name_parts
from ofa_latency_kedro.predictors.calibration import apply_calibration
from ofa_latency_kedro.predictors.domain import (
    extrapolation,
    finite,
    floor_ms,
    positive,
    refuse_outside,
)
from ofa_latency_kedro.predictors.kinds import get_kind
from ofa_latency_kedro.predictors.kinds.generalized import GeneralizedKind
from ofa_latency_kedro.predictors.metadata import (
    Conformal,
    DeviceEmbedding,
    PredictorError,
    PredictorMetadata,
)
from ofa_latency_kedro.search_space import ArchBatch, ArchLike

#: Rows encoded and predicted at a time: bounds memory for any number of subnets.
PREDICT_CHUNK = 32_768


class LatencyPredictor:
    """Predicts latency (ms) of subnets on one device, for whole batches at once."""

    def __init__(
        self,
        module: torch.nn.Module,
        metadata: PredictorMetadata,
        sources: Sequence[LatencyPredictor] = (),
    ) -> None:
        """``sources``: predictors of other devices whose predictions a few-shot calibration
        (`adapt_predictor`) blends with this one's; saved in the same file."""
        if not isinstance(metadata, PredictorMetadata):
            raise PredictorError(
                f"a predictor's metadata is a PredictorMetadata, not {type(metadata).__name__}"
            )
        self._kind = get_kind(metadata.kind)
        self.module = module.eval()
        self.metadata = metadata
        self.sources = tuple(sources)

    def replace(
        self,
        *,
        module: torch.nn.Module | None = None,
        sources: Sequence[LatencyPredictor] | None = None,
        **metadata: Any,
    ) -> LatencyPredictor:
        """A new predictor with this one's module, metadata and sources, less ``changes``
        (metadata fields by name); this one stays as it is."""
        return LatencyPredictor(
            self.module if module is None else module,
            self.metadata.replace(**metadata) if metadata else self.metadata,
            self.sources if sources is None else sources,
        )

    # -- what it is -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.metadata.kind

    @property
    def hardware(self) -> str | None:
        return self.metadata.hardware

    @property
    def space(self) -> str | None:
        return self.metadata.space

    @property
    def width_mult(self) -> float | None:
        return self.metadata.width_mult

    @property
    def encoder_name(self) -> str:
        return self.metadata.encoder_name

    @property
    def resolutions(self) -> tuple[int, ...] | None:
        """The resolutions its wide part was trained at (None: any the encoding takes)."""
        wide = self.metadata.encoders.get("wide")
        return None if wide is None else wide.resolutions

    @property
    def metrics(self) -> Mapping[str, Any]:
        return self.metadata.metrics

    @property
    def devices(self) -> tuple[str, ...]:
        """The datasets a generalized predictor was trained on (one head each); else ()."""
        return self.metadata.devices

    def __repr__(self) -> str:
        return (
            f"LatencyPredictor(kind={self.kind!r}, hardware={self.hardware!r}, "
            f"space={self.space!r}, encoder={self.encoder_name!r})"
        )

    # -- a generalized predictor's devices ---------------------------------------------------
    def _generalized(self) -> None:
        if self.kind != GeneralizedKind.name:
            raise PredictorError(f"{self!r} is a per-device predictor, not a generalized one")

    def for_device(self, name: str) -> LatencyPredictor:
        """A generalized predictor as the predictor of one of its training datasets."""
        self._generalized()
        if name not in self.devices:
            raise PredictorError(
                f"the generalized predictor was not trained on {name!r}; it knows "
                f"{', '.join(self.devices)} (adapt it to a new device with adapt_predictor)"
            )
        hardware, space = dataset_name_parts(name)
        index = self.devices.index(name)
        widths = self.metadata.device_widths
        placed = self.placed(
            DeviceEmbedding.of_device(index, len(self.devices), name),
            hardware=hardware,
            space=space,
            width_mult=widths[index] if widths else None,
        )
        return placed.replace(conformal=self.metadata.device_conformal.get(name))

    def placed(
        self,
        embedding: DeviceEmbedding,
        *,
        hardware: str | None,
        space: str | None = None,
        width_mult: float | None = None,
    ) -> LatencyPredictor:
        """A generalized predictor standing on a device by ``embedding`` (no calibration):
        it predicts that device's subnets of ``space`` and ``width_mult`` (None: any)."""
        self._generalized()
        return self.replace(
            embedding=embedding,
            hardware=hardware,
            space=space or self.space,
            width_mult=width_mult,
            calibration=None,
            conformal=None,
            sources=(),
        )

    def device_log_latency(self, batch: ArchBatch) -> np.ndarray:
        """(n, devices) log latency of every subnet on every training device of a
        generalized predictor: the columns its embedding blends."""
        self._generalized()
        out = np.empty((len(batch), len(self.devices)), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(batch), PREDICT_CHUNK):
                chunk = batch[start : start + PREDICT_CHUNK]
                out[start : start + PREDICT_CHUNK] = GeneralizedKind.device_log_latency(
                    self.module, self.metadata, chunk
                )
        return out

    # -- prediction ------------------------------------------------------------------------
    def predict(
        self,
        archs: ArchBatch | Iterable[ArchLike],
        *,
        width_mult: float | None = None,
        hardware_features: np.ndarray | Sequence[float] | None = None,
    ) -> np.ndarray:
        """Latency in ms of every subnet (Archs, the seed's dicts or strings, or a batch)."""
        if not isinstance(archs, ArchBatch):
            archs = ArchBatch.from_archs(archs, width_mult=width_mult)
        return self.predict_batch(archs, hardware_features=hardware_features)

    def predict_batch(
        self, batch: ArchBatch, *, hardware_features: np.ndarray | Sequence[float] | None = None
    ) -> np.ndarray:
        """Latency in ms of a batch, predicted `PREDICT_CHUNK` rows at a time: positive and
        finite; a subnet of another width or space than the predictor's is refused."""
        out = self._predict(batch, hardware_features)
        if self.metadata.calibration is None:
            return positive(out, floor_ms(self.metadata))
        return finite(out)  # a calibration answers exp(...): positive already

    def _predict(
        self, batch: ArchBatch, hardware_features: np.ndarray | Sequence[float] | None = None
    ) -> np.ndarray:
        """The module's answer (ms), calibrated when the predictor carries a calibration,
        before the floor that keeps every answer positive (a calibration reads its sources'
        answers as they are, in log space)."""
        refuse_outside(self.metadata, batch)
        genes = self._network_batch(batch)
        out = np.empty(len(batch), dtype=np.float64)
        hardware = None
        if hardware_features is not None:
            hardware = np.broadcast_to(
                np.asarray(hardware_features, np.float32).reshape(-1, 3), (len(batch), 3)
            )
        with torch.inference_mode():
            for start in range(0, len(batch), PREDICT_CHUNK):
                stop = start + PREDICT_CHUNK
                out[start:stop] = self._kind.predict_chunk(
                    self.module,
                    self.metadata,
                    genes[start:stop],
                    None if hardware is None else hardware[start:stop],
                )
        if self.metadata.calibration is None:
            return out
        return apply_calibration(
            self.metadata.calibration,
            batch,
            out,
            [source._predict(source.own_network(batch)) for source in self.sources],
        )

    def _network_batch(self, batch: ArchBatch) -> ArchBatch:
        """The subnets as the module reads them: on its own network when that is of another
        width than the subnets it predicts (an adapted predictor of another width family)."""
        network = self.metadata.network_width_mult
        if network is not None and not np.all(batch.width_mult == network):
            return batch.at_width(network)
        return batch

    def own_network(self, batch: ArchBatch) -> ArchBatch:
        """The subnets with the same genes on the network of this predictor's width."""
        width = self.width_mult
        if width is not None and not np.all(batch.width_mult == width):
            return batch.at_width(width)
        return batch

    def predict_interval(
        self,
        archs: ArchBatch | Iterable[ArchLike],
        level: float = 0.9,
        *,
        width_mult: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Low and high latency (ms) of a ``level`` interval around each prediction, by
        conformal calibration on subnets the predictor did not train on (`Conformal`: its
        validation rows, or the cross-validation of an adaptation)."""
        conformal = self.metadata.conformal
        if conformal is None:
            raise PredictorError(
                f"{self!r} carries no interval calibration (the seed's checkpoints, a "
                "generalized predictor placed without measurements): give it measured subnets "
                "it did not train on with predictor.with_intervals(table)"
            )
        predicted = self.predict(archs, width_mult=width_mult)
        low, high = conformal.bounds(level)
        return predicted * np.exp(low), predicted * np.exp(high)

    def with_intervals(self, table: Any) -> LatencyPredictor:
        """This predictor with its intervals calibrated on ``table`` (measured subnets it did
        not train on: ``child_arch`` and ``latency``, in the order they were measured)."""
        from ofa_latency_kedro.search_space.table import as_latency_table  # noqa: PLC0415

        rows = as_latency_table(table)
        batch = ArchBatch.from_frame(rows)
        residuals = np.log(rows["latency"].to_numpy(dtype=float)) - np.log(
            self.predict_batch(batch)
        )
        return self.replace(conformal=Conformal.recent(residuals, f"{len(rows)} measured subnets"))

    def extrapolation(
        self, archs: ArchBatch | Iterable[ArchLike], predicted_ms: np.ndarray | None = None
    ) -> np.ndarray:
        """Per subnet, why its prediction lies outside what the predictor was trained on ("":
        it does not): a resolution it was not trained at, MACs beyond those of its training
        subnets, a predicted latency (``predicted_ms``, predicted here when not given) beyond
        its training latencies."""
        batch = archs if isinstance(archs, ArchBatch) else ArchBatch.from_archs(archs)
        predicted = self.predict_batch(batch) if predicted_ms is None else predicted_ms
        return extrapolation(self.metadata, batch, np.asarray(predicted, dtype=np.float64))

    def predict_on_own_network(self, batch: ArchBatch) -> np.ndarray:
        """Latency of the subnets with the same genes on the network this predictor was
        trained for (its width multiplier): how a device of another width family ranks them."""
        return self.predict_batch(self.own_network(batch))

    def uncalibrated(self) -> LatencyPredictor:
        """This predictor as its module predicts, without calibration and sources."""
        if self.metadata.calibration is None and not self.sources:
            return self
        return self.replace(calibration=None, sources=())

    # -- the module, for training on top of it ------------------------------------------------
    def module_inputs(self, batch: ArchBatch) -> tuple[torch.Tensor, ...]:
        """What its module reads for ``batch`` (for training on top of it)."""
        refuse_outside(self.metadata, batch)
        return self._kind.module_inputs(self.metadata, self._network_batch(batch))

    def head_parameters(self, module: torch.nn.Module | None = None) -> list[torch.nn.Parameter]:
        """The output heads of ``module`` (a copy of this predictor's), or of its own."""
        return self._kind.head_parameters(self.module if module is None else module)

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the checkpoint atomically (a temporary file renamed over ``path``)."""
        from ofa_latency_kedro.predictors.checkpoint import save_checkpoint  # noqa: PLC0415

        return save_checkpoint(self, path)

    @classmethod
    def load(cls, path: str | Path, *, expect: Mapping[str, Any] | None = None) -> LatencyPredictor:
        """Load a checkpoint of this project or of the seed (``model.N.*`` keys, or the
        fine-tuned ``0.0.*``/``0.2.*``/``0.4.*``/``1.*`` layout). ``expect`` (e.g.
        ``{"space": "ofa", "encoder": "seed128"}``) refuses a checkpoint made for something else."""
        from ofa_latency_kedro.predictors.checkpoint import load_checkpoint  # noqa: PLC0415

        predictor = load_checkpoint(Path(path))
        predictor.check(expect or {}, source=path)
        return predictor

    def check(self, expect: Mapping[str, Any], source: object = "predictor") -> None:
        """Refuse (`PredictorError`) unless every given field of ``expect`` matches: kind,
        hardware, space, width_mult, or an encoder name (any part's)."""
        problems = []
        for key, wanted in expect.items():
            if wanted is None:
                continue
            if key == "encoder":
                actual: Any = self.encoder_name
                names = {encoder.name for encoder in self.metadata.encoders.values()}
                matches = wanted == actual or wanted in names or wanted in actual.split("+")
            elif key in ("kind", "hardware", "space", "width_mult"):
                actual = getattr(self, key)
                matches = actual == wanted
            else:
                raise PredictorError(
                    f"cannot check a predictor's {key!r}; expect kind, hardware, space, "
                    "width_mult or encoder"
                )
            if not matches:
                problems.append(f"{key} is {actual!r}, not {wanted!r}")
        if problems:
            raise PredictorError(f"{source}: refused, the predictor's {'; '.join(problems)}")
