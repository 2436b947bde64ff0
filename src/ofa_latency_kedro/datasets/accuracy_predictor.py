"""OFA's accuracy predictor as a catalog entry. Loading never fails: it gives a source whose
``get()`` reads the file, downloading it first when missing, and raises
`AccuracyPredictorUnavailable` (saying where to put the file) when neither works, so that
``nas.objective: auto`` can fall back to the MACs proxy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from ofa_latency_kedro.nas.accuracy import (
    ACC_PREDICTOR_URL,
    AccuracyPredictor,
    ensure_accuracy_predictor,
)


@dataclass(frozen=True)
class AccuracyPredictorSource:
    path: Path
    url: str | None

    def get(self) -> AccuracyPredictor:
        return AccuracyPredictor.load(ensure_accuracy_predictor(self.path, self.url))


class AccuracyPredictorDataset(AbstractDataset[AccuracyPredictorSource, None]):
    def __init__(
        self,
        filepath: str,
        url: str | None = ACC_PREDICTOR_URL,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = Path(filepath)
        self._url = url
        self.metadata = metadata

    def load(self) -> AccuracyPredictorSource:
        return AccuracyPredictorSource(self._filepath, self._url)

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._filepath}: the accuracy predictor is read-only")

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "url": self._url}
