"""A folder of predictor checkpoints (``data/06_models/predictors/<hardware>_<space>.pt``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from ofa_latency_kedro.predictors import LatencyPredictor


class PredictorFolderDataset(
    AbstractDataset[dict[str, Callable[[], LatencyPredictor]], Mapping[str, LatencyPredictor]]
):
    """Saving writes one checkpoint per name (atomically, keeping other names' files);
    loading gives ``{name: load function}``."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, Callable[[], LatencyPredictor]]:
        if not self._path.is_dir():
            return {}
        return {p.stem: partial(LatencyPredictor.load, p) for p in sorted(self._path.glob("*.pt"))}

    def save(self, data: Mapping[str, LatencyPredictor]) -> None:
        for name, predictor in data.items():
            if not isinstance(predictor, LatencyPredictor) or "/" in name:
                raise DatasetError(
                    f"{self._path}: cannot save {type(predictor).__name__} as {name!r}"
                )
            predictor.save(self._path / f"{name}.pt")

    def _exists(self) -> bool:
        return self._path.is_dir() and any(self._path.glob("*.pt"))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
