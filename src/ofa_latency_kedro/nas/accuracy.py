"""OFA's public ImageNet accuracy predictor: a 128-400-400-400-1 MLP over the ``seed128``
encoding that answers top-1 accuracy (a fraction) for OFA-MobileNetV3 subnets.

It was trained for OFA's width-1.2 supernet; for other widths its figure is a ranking proxy.
Its network is the seed's MLP (`SeedMLP`, which reads OFA's state-dict layout). A file that
is missing and cannot be downloaded is `AccuracyPredictorUnavailable` (``nas.objective:
auto`` then falls back to MACs); a file that is there but is not this predictor is a
`PredictorError`, as for a bad latency-predictor file.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from ofa_latency_kedro.atomic import atomic_write_bytes
from ofa_latency_kedro.encoding.encoders import seed128
from ofa_latency_kedro.errors import OfaLatencyError
from ofa_latency_kedro.predictors.metadata import PredictorError
from ofa_latency_kedro.predictors.models import SeedMLP
from ofa_latency_kedro.search_space import ArchBatch, ArchLike

logger = logging.getLogger(__name__)

#: Where OFA's own tutorial downloads the predictor from.
ACC_PREDICTOR_URL = "https://raw.githubusercontent.com/han-cai/files/master/ofa/acc_predictor.pth"
_CHUNK = 65_536
#: OFA's accuracy predictor: the ``seed128`` encoding in, three hidden layers of 400 units.
IN_FEATURES, HIDDEN = 128, 400


class AccuracyPredictorUnavailable(OfaLatencyError, RuntimeError):
    """The accuracy predictor is neither on disk nor downloadable; says where to put it."""


class AccuracyPredictor:
    """OFA's accuracy predictor, batched: ``predict(archs)`` gives top-1 accuracy (0..1)."""

    def __init__(self, model: SeedMLP, source: str) -> None:
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
            raise PredictorError(f"{path} is not a loadable accuracy predictor: {exc}") from None
        try:
            if not isinstance(state, Mapping):
                raise ValueError(f"it holds a {type(state).__name__}, not a state dict")
            model = SeedMLP.from_state(state)
            if (model.in_features, model.hidden) != (IN_FEATURES, HIDDEN):
                raise ValueError(f"its MLP is {model.in_features}-{model.hidden}-...-1")
        except ValueError as exc:
            raise PredictorError(
                f"{path} is not OFA's accuracy predictor "
                f"({IN_FEATURES}-{HIDDEN}-{HIDDEN}-{HIDDEN}-1): {exc}"
            ) from None
        return cls(model, str(path))

    def predict(self, archs: ArchBatch | Iterable[ArchLike]) -> np.ndarray:
        batch = archs if isinstance(archs, ArchBatch) else ArchBatch.from_archs(archs)
        out = np.empty(len(batch))
        with torch.inference_mode():
            for start in range(0, len(batch), _CHUNK):
                features = torch.from_numpy(seed128(batch[start : start + _CHUNK]))
                out[start : start + _CHUNK] = self.model(features).double().numpy()
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
