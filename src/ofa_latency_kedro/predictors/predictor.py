"""`LatencyPredictor`: one interface (``predict``, ``save``, ``load``) over the predictor
kinds, including the seed's checkpoints in both of their key layouts.

A checkpoint is one file: ``torch.save`` of plain tensors and a JSON string of metadata
(encoder, space, hardware, width, target, normalisation, metrics, library versions), written
atomically and read back with ``weights_only=True``, so loading never runs pickled code.
"""

from __future__ import annotations

import functools
import io
import json
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ofa_latency_kedro.atomic import atomic_write_bytes
from ofa_latency_kedro.encoding.encoders import Encoder, joint_indices
from ofa_latency_kedro.encoding.loading import dataset_name_parts
from ofa_latency_kedro.predictors.calibration import apply_calibration
from ofa_latency_kedro.predictors.models import SeedMLP, SharedBasis, WideDeep
from ofa_latency_kedro.search_space import ArchBatch, ArchLike

CHECKPOINT_FORMAT = "ofa-latency-kedro/predictor/1"
KINDS = ("wide_deep", "seed_mlp", "generalized")
#: Rows encoded and predicted at a time: bounds memory for any number of subnets.
PREDICT_CHUNK = 32_768
_SEED_FINETUNED_KEYS = {"0.0": "model.0", "0.2": "model.2", "0.4": "model.4", "1": "model.6"}


class PredictorError(ValueError):
    """A predictor file that cannot be loaded, or does not fit what it is asked to do."""


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("torch", "numpy", "ofa_latency_kedro"):
        try:
            versions[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            versions[package] = None
    return versions


class LatencyPredictor:
    """Predicts latency (ms) of subnets on one device, for whole batches at once."""

    def __init__(
        self,
        module: torch.nn.Module,
        metadata: Mapping[str, Any],
        sources: Sequence[LatencyPredictor] = (),
    ) -> None:
        """``sources``: predictors of other devices whose predictions a few-shot
        calibration (`adapt_predictor`) blends with this one's; saved in the same file."""
        kind = metadata.get("kind")
        if kind not in KINDS:
            raise PredictorError(f"unknown predictor kind {kind!r}; known: {', '.join(KINDS)}")
        self.module = module.eval()
        self.metadata: dict[str, Any] = json.loads(json.dumps(dict(metadata)))
        self.sources = list(sources)

    # -- what it is -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.metadata["kind"]

    @property
    def hardware(self) -> str | None:
        return self.metadata.get("hardware")

    @property
    def space(self) -> str | None:
        return self.metadata.get("space")

    @property
    def encoder_name(self) -> str:
        encoders = self.metadata["encoder"]
        return "+".join(f"{part}:{spec['name']}" for part, spec in encoders.items())

    @property
    def resolutions(self) -> tuple[int, ...] | None:
        wide = self.metadata["encoder"].get("wide")
        return tuple(wide["resolutions"]) if wide else None

    @property
    def metrics(self) -> dict[str, Any]:
        return self.metadata.get("metrics", {})

    @property
    def devices(self) -> list[str]:
        """The datasets a generalized predictor was trained on (one head each); else []."""
        return list(self.metadata.get("devices", []))

    def for_device(self, name: str) -> LatencyPredictor:
        """A generalized predictor as the predictor of one of its training datasets."""
        if self.kind != "generalized":
            raise PredictorError(f"{self!r} is a per-device predictor, not a generalized one")
        if name not in self.devices:
            raise PredictorError(
                f"the generalized predictor was not trained on {name!r}; it knows "
                f"{', '.join(self.devices)} (adapt it to a new device with adapt_predictor)"
            )
        metadata = {k: v for k, v in self.metadata.items() if k != "calibration"}
        weights = [float(device == name) for device in self.devices]
        metadata["embedding"] = {"intercept": 0.0, "weights": weights, "fitted_on": name}
        metadata["hardware"], metadata["space"] = dataset_name_parts(name)
        return LatencyPredictor(self.module, metadata)

    def device_log_latency(self, batch: ArchBatch) -> np.ndarray:
        """(n, devices) log latency of every subnet on every training device of a
        generalized predictor: the columns its embedding blends."""
        encoder = self._encoders["input"]
        genes = batch.at_width(1.0)
        out = np.empty((len(batch), len(self.devices)), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(batch), PREDICT_CHUNK):
                chunk = genes[start : start + PREDICT_CHUNK]
                features = torch.from_numpy(encoder.encode(chunk))
                out[start : start + PREDICT_CHUNK] = self.module(features).double().numpy()
        return out

    def __repr__(self) -> str:
        return (
            f"LatencyPredictor(kind={self.kind!r}, hardware={self.hardware!r}, "
            f"space={self.space!r}, encoder={self.encoder_name!r})"
        )

    # -- prediction ------------------------------------------------------------------------
    @functools.cached_property
    def _encoders(self) -> dict[str, Encoder]:
        """The encoders of the metadata, built once (a search predicts 1,000 times)."""
        return {part: Encoder.from_dict(spec) for part, spec in self.metadata["encoder"].items()}

    def predict(
        self,
        archs: ArchBatch | Iterable[ArchLike],
        *,
        width_mult: float | None = None,
        hardware_features: np.ndarray | None = None,
    ) -> np.ndarray:
        """Latency in ms of every subnet (Archs, the seed's dicts or strings, or a batch)."""
        if not isinstance(archs, ArchBatch):
            archs = ArchBatch.from_archs(archs, width_mult=width_mult)
        return self.predict_batch(archs, hardware_features=hardware_features)

    def predict_batch(
        self, batch: ArchBatch, *, hardware_features: np.ndarray | None = None
    ) -> np.ndarray:
        out = np.empty(len(batch), dtype=np.float64)
        hardware = None
        if hardware_features is not None:
            hardware = np.broadcast_to(
                np.asarray(hardware_features, np.float32).reshape(-1, 3), (len(batch), 3)
            )
        with torch.inference_mode():
            for start in range(0, len(batch), PREDICT_CHUNK):
                stop = start + PREDICT_CHUNK
                chunk = batch[start:stop]
                out[start:stop] = self._predict_chunk(
                    chunk, None if hardware is None else hardware[start:stop]
                )
        calibration = self.metadata.get("calibration")
        if calibration is None:
            return out
        return apply_calibration(
            calibration,
            batch,
            out,
            [source.predict_on_own_network(batch) for source in self.sources],
        )

    def predict_on_own_network(self, batch: ArchBatch) -> np.ndarray:
        """Latency of the subnets with the same genes on the network this predictor was
        trained for (its width multiplier): how a device of another width family ranks them."""
        width = self.metadata.get("width_mult")
        if width is not None and not np.all(batch.width_mult == width):
            batch = batch.at_width(width)
        return self.predict_batch(batch)

    def _predict_chunk(self, batch: ArchBatch, hardware: np.ndarray | None) -> np.ndarray:
        if self.kind == "generalized":
            embedding = self.metadata["embedding"]
            log_latency = self.device_log_latency(batch) @ np.asarray(embedding["weights"])
            return np.exp(log_latency + embedding["intercept"])
        if self.kind == "seed_mlp":
            features = self._encoders["input"].encode(batch, hardware)
            return self.module(torch.from_numpy(features)).double().numpy()
        wide = self._wide(batch)
        deep = self._encoders["deep"].encode(batch)
        return self.module.deep_part(torch.from_numpy(deep)).double().numpy() + wide

    def _wide(self, batch: ArchBatch) -> np.ndarray:
        """The wide part; between two trained resolutions it is interpolated linearly."""
        resolutions = np.asarray(self.resolutions)
        r = batch.r
        outside = (r < resolutions[0]) | (r > resolutions[-1])
        if np.any(outside):
            raise PredictorError(
                f"this predictor was trained at resolutions {resolutions[0]}..{resolutions[-1]}; "
                f"it cannot predict resolution {int(r[np.argmax(outside)])}"
            )
        upper_index = np.searchsorted(resolutions, r)
        exact = resolutions[upper_index] == r
        lower = np.where(exact, r, resolutions[np.maximum(upper_index - 1, 0)])
        upper = resolutions[upper_index]
        weight = np.where(exact, 1.0, (r - lower) / np.maximum(upper - lower, 1))

        def wide_at(resolution: np.ndarray) -> np.ndarray:
            shifted = ArchBatch(batch.ks, batch.e, batch.d, resolution, batch.width_mult)
            index = torch.from_numpy(joint_indices(shifted, resolutions))
            return self.module.wide(index).double().numpy()

        at_upper = wide_at(upper)
        if np.all(exact):
            return at_upper
        return weight * at_upper + (1 - weight) * wide_at(lower)

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the checkpoint atomically (a temporary file renamed over ``path``)."""
        state = {name: tensor.detach().cpu() for name, tensor in self.module.state_dict().items()}
        content: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "metadata": json.dumps(self.metadata),
            "state_dict": state,
        }
        if self.sources:
            content["sources"] = [
                {
                    "metadata": json.dumps(source.metadata),
                    "state_dict": {
                        name: tensor.detach().cpu()
                        for name, tensor in source.module.state_dict().items()
                    },
                }
                for source in self.sources
            ]
        buffer = io.BytesIO()
        torch.save(content, buffer)
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, *, expect: Mapping[str, Any] | None = None) -> LatencyPredictor:
        """Load a checkpoint of this project or of the seed (``model.N.*`` keys, or the
        fine-tuned ``0.0.*``/``0.2.*``/``0.4.*``/``1.*`` layout). ``expect`` (e.g.
        ``{"space": "ofa", "encoder": "seed128"}``) refuses a checkpoint made for something else."""
        path = Path(path)
        if not path.is_file():
            raise PredictorError(f"{path}: no such predictor checkpoint")
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated file, a pickle of code, not a checkpoint at all
            raise PredictorError(f"{path} is not a loadable checkpoint: {exc}") from None
        if isinstance(content, dict) and content.get("format") == CHECKPOINT_FORMAT:
            predictor = cls._from_checkpoint(content, path)
        elif isinstance(content, Mapping) and all(
            isinstance(v, torch.Tensor) for v in content.values()
        ):
            predictor = cls._from_seed_state(content, path)
        else:
            raise PredictorError(
                f"{path} is neither a checkpoint of this project ({CHECKPOINT_FORMAT}) nor a "
                "state dict of the seed's MLP"
            )
        predictor.check(expect or {}, source=path)
        return predictor

    def check(self, expect: Mapping[str, Any], source: object = "predictor") -> None:
        problems = []
        for key, wanted in expect.items():
            if wanted is None:
                continue
            actual = self.encoder_name if key == "encoder" else self.metadata.get(key)
            if key == "encoder":
                matches = wanted in actual.split("+") or actual == wanted or f":{wanted}" in actual
            else:
                matches = actual == wanted
            if not matches:
                problems.append(f"{key} is {actual!r}, not {wanted!r}")
        if problems:
            raise PredictorError(f"{source}: refused, the predictor's {'; '.join(problems)}")

    @classmethod
    def _from_checkpoint(cls, content: Mapping[str, Any], path: Path) -> LatencyPredictor:
        try:
            sources = [cls._from_checkpoint(source, path) for source in content.get("sources", [])]
            metadata = json.loads(content["metadata"])
            architecture = metadata["architecture"]
            if metadata["kind"] == "seed_mlp":
                module: torch.nn.Module = SeedMLP(
                    architecture["in_features"], architecture["hidden"]
                )
            elif metadata["kind"] == "generalized":
                module = SharedBasis(
                    architecture["in_features"],
                    len(metadata["devices"]),
                    architecture["basis"],
                    architecture["hidden"],
                )
            else:
                module = WideDeep(
                    architecture["n_wide"],
                    architecture["deep_features"],
                    architecture["hidden"],
                    architecture["depth"],
                )
            module.load_state_dict(content["state_dict"], strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise PredictorError(
                f"{path}: the checkpoint is damaged or incomplete: {exc}"
            ) from None
        return cls(module, metadata, sources)

    @classmethod
    def _from_seed_state(cls, state: Mapping[str, torch.Tensor], path: Path) -> LatencyPredictor:
        keys = list(state)
        if keys and all(k.split(".")[0] == "model" for k in keys):
            renamed = dict(state)
        elif keys and all(k.rsplit(".", 1)[0] in _SEED_FINETUNED_KEYS for k in keys):
            renamed = {
                f"{_SEED_FINETUNED_KEYS[k.rsplit('.', 1)[0]]}.{k.rsplit('.', 1)[1]}": v
                for k, v in state.items()
            }
        else:
            raise PredictorError(f"{path}: state dict keys {keys[:4]} are not the seed's MLP")
        try:
            in_features = renamed["model.0.weight"].shape[1]
            hidden = renamed["model.0.weight"].shape[0]
            module = SeedMLP(in_features, hidden)
            module.load_state_dict(renamed, strict=True)
        except (KeyError, RuntimeError) as exc:
            raise PredictorError(f"{path}: not the seed's MLP shape: {exc}") from None
        if in_features not in (128, 131):
            raise PredictorError(
                f"{path}: the seed's MLP takes 128 or 131 features, this one {in_features}"
            )
        hardware, space = _names_from_checkpoint_file(path)
        return cls(
            module,
            {
                "kind": "seed_mlp",
                "source": str(path),
                "encoder": {"input": {"name": "seed128" if in_features == 128 else "seed131"}},
                "architecture": {"in_features": in_features, "hidden": hidden},
                "target": "latency_ms",
                "normalization": None,
                "hardware": hardware,
                "space": space,
                "width_mult": None,
                "metrics": {},
            },
        )


def _names_from_checkpoint_file(path: Path) -> tuple[str | None, str | None]:
    """``checkpoint_RTX_2080_Ti_GPU_ofa.pt`` -> (``RTX_2080_Ti_GPU``, ``ofa``)."""
    stem = re.sub(
        r"^(finetune_note_10_)?checkpoint_(finetune_)?", "", path.stem, flags=re.IGNORECASE
    )
    hardware, space = dataset_name_parts(stem)
    return (hardware if space else None), space
