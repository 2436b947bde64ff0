"""Predictor checkpoints: one file, ``torch.save`` of plain tensors and a JSON string of the
metadata (kind, encoders, space, hardware, width, target, normalisation, metrics, library
versions), the same for every kind, written atomically and read back with
``weights_only=True``, so loading never runs pickled code. The seed's bare state dicts are
read too (the ``seed_mlp`` kind)."""

from __future__ import annotations

import io
import json
import platform
from collections.abc import Mapping
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import torch

from ofa_latency_kedro.atomic import atomic_write_bytes
from ofa_latency_kedro.predictors.kinds import get_kind
from ofa_latency_kedro.predictors.kinds.seed_mlp import SeedMLPKind
from ofa_latency_kedro.predictors.metadata import PredictorError, PredictorMetadata
from ofa_latency_kedro.predictors.predictor import LatencyPredictor

CHECKPOINT_FORMAT = "ofa-latency-kedro/predictor/1"


def library_versions() -> dict[str, str | None]:
    """Python, torch, numpy and this package's versions (recorded in every checkpoint)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("torch", "numpy", "ofa_latency_kedro"):
        try:
            versions[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _content(predictor: LatencyPredictor) -> dict[str, Any]:
    return {
        "metadata": predictor.metadata.to_json(),
        "state_dict": {
            name: tensor.detach().cpu() for name, tensor in predictor.module.state_dict().items()
        },
    }


def save_checkpoint(predictor: LatencyPredictor, path: str | Path) -> Path:
    """Write ``predictor`` (and the source predictors a calibration blends) to ``path``."""
    content = {"format": CHECKPOINT_FORMAT, **_content(predictor)}
    if predictor.sources:
        content["sources"] = [_content(source) for source in predictor.sources]
    buffer = io.BytesIO()
    torch.save(content, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> LatencyPredictor:
    """A checkpoint of this project or a seed state dict; `PredictorError` names the file
    and what is wrong with it."""
    if not path.is_file():
        raise PredictorError(f"{path}: no such predictor checkpoint")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated file, a pickle of code, not a checkpoint at all
        raise PredictorError(f"{path} is not a loadable checkpoint: {exc}") from None
    if isinstance(content, dict) and content.get("format") == CHECKPOINT_FORMAT:
        return _from_content(content, path)
    if isinstance(content, Mapping) and all(isinstance(v, torch.Tensor) for v in content.values()):
        module, metadata = SeedMLPKind.from_seed_state(content, path)
        return LatencyPredictor(module, metadata)
    raise PredictorError(
        f"{path} is neither a checkpoint of this project ({CHECKPOINT_FORMAT}) nor a state "
        "dict of the seed's MLP"
    )


def _from_content(content: Mapping[str, Any], path: Path) -> LatencyPredictor:
    try:
        sources = [_from_content(source, path) for source in content.get("sources", [])]
        metadata = PredictorMetadata.from_dict(json.loads(content["metadata"]))
        module = get_kind(metadata.kind).build(metadata)
        module.load_state_dict(content["state_dict"], strict=True)
    except PredictorError as exc:
        raise PredictorError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise PredictorError(f"{path}: the checkpoint is damaged or incomplete: {exc}") from None
    return LatencyPredictor(module, metadata, sources)
