"""OFA's public ImageNet accuracy predictor: a 128-400-400-400-1 MLP over the ``seed128``
encoding that answers top-1 accuracy (a fraction) for OFA-MobileNetV3 subnets.

It was trained for OFA's width-1.2 supernet; for other widths its figure is a ranking proxy.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ofa_latency_kedro.atomic import atomic_write_bytes
from ofa_latency_kedro.encoding.encoders import seed128
from ofa_latency_kedro.search_space import ArchBatch, ArchLike

logger = logging.getLogger(__name__)

#: Where OFA's own tutorial downloads the predictor from.
ACC_PREDICTOR_URL = "https://raw.githubusercontent.com/han-cai/files/master/ofa/acc_predictor.pth"
_CHUNK = 65_536


class AccuracyPredictorUnavailable(RuntimeError):
    """The accuracy predictor is neither on disk nor downloadable; says where to put it."""


class AccuracyPredictor:
    """OFA's accuracy predictor, batched: ``predict(archs)`` gives top-1 accuracy (0..1)."""

    def __init__(self, model: nn.Sequential, source: str) -> None:
        self.model = model.eval()
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> AccuracyPredictor:
        path = Path(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise AccuracyPredictorUnavailable(f"{path}: no such file") from None
        except Exception as exc:
            raise ValueError(f"{path} is not a loadable accuracy predictor: {exc}") from None
        model = nn.Sequential(
            nn.Linear(128, 400),
            nn.ReLU(),
            nn.Linear(400, 400),
            nn.ReLU(),
            nn.Linear(400, 400),
            nn.ReLU(),
            nn.Linear(400, 1),
        )
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, AttributeError, TypeError) as exc:
            raise ValueError(
                f"{path} is not OFA's accuracy predictor (128-400-400-400-1): {exc}"
            ) from None
        return cls(model, str(path))

    def predict(self, archs: ArchBatch | Iterable[ArchLike]) -> np.ndarray:
        batch = archs if isinstance(archs, ArchBatch) else ArchBatch.from_archs(archs)
        out = np.empty(len(batch))
        with torch.inference_mode():
            for start in range(0, len(batch), _CHUNK):
                features = torch.from_numpy(seed128(batch[start : start + _CHUNK]))
                out[start : start + _CHUNK] = self.model(features).squeeze(-1).double().numpy()
        return out


def ensure_accuracy_predictor(
    path: str | Path, url: str | None = ACC_PREDICTOR_URL, timeout_s: float = 20.0
) -> Path:
    """The predictor's file, downloaded from ``url`` (atomically) when it is missing."""
    path = Path(path)
    if path.is_file():
        return path
    if not url:
        raise AccuracyPredictorUnavailable(_where_to_put(path, "no download address is set"))
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - fixed https URL
            data = response.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise AccuracyPredictorUnavailable(
            _where_to_put(path, f"downloading {url} failed: {exc}")
        ) from None
    atomic_write_bytes(path, data)
    logger.info("Downloaded OFA's accuracy predictor from %s to %s", url, path)
    return path


def _where_to_put(path: Path, reason: str) -> str:
    return (
        f"OFA's accuracy predictor is not available ({reason}). Put acc_predictor.pth at {path} "
        f"(a copy is in ../shared/seed_data/acc_predictor.pth; OFA publishes it at "
        f"{ACC_PREDICTOR_URL}), or search with nas.objective: macs"
    )


def load_accuracy_predictor(
    path: str | Path, url: str | None = ACC_PREDICTOR_URL
) -> AccuracyPredictor:
    """Load OFA's accuracy predictor from ``path``, downloading it there first when missing."""
    return AccuracyPredictor.load(ensure_accuracy_predictor(path, url))
