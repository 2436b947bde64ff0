"""A folder of predictor checkpoints (one ``<name>.pt`` per predictor, e.g. the training
pipeline's ``<hardware>_<space>.pt``); in kedro-viz it previews as a table of their metadata."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from ofa_latency_kedro.datasets.previews import TablePreview, table_preview
from ofa_latency_kedro.predictors import LatencyPredictor

#: The columns of the preview table, one row per checkpoint.
PREVIEW_COLUMNS = (
    "predictor",
    "kind",
    "hardware",
    "space",
    "width_mult",
    "encoder",
    "train_rows",
    "val_mape",
    "test_mape",
    "test_spearman",
)


class PredictorFolder(Mapping[str, Callable[[], LatencyPredictor]]):
    """The checkpoints of a folder by name, each a function that loads it (so a node loads
    only the predictors it uses); ``path`` is the folder, for messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        files = sorted(path.glob("*.pt")) if path.is_dir() else []
        self._loaders = {file.stem: partial(LatencyPredictor.load, file) for file in files}

    def __getitem__(self, name: str) -> Callable[[], LatencyPredictor]:
        return self._loaders[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def describe(self) -> str:
        """``<path> holds a, b`` (or nothing)."""
        return f"{self.path} holds {', '.join(self) or 'nothing'}"

    def including(self, loaders: Mapping[str, Callable[[], LatencyPredictor]]) -> PredictorFolder:
        """This folder with ``loaders`` added (registered models a parameter names), each in
        place of a checkpoint of the same name; this one stays as it is."""
        folder = copy.copy(self)
        folder._loaders = {**self._loaders, **loaders}
        return folder


class PredictorFolderDataset(AbstractDataset[PredictorFolder, Mapping[str, LatencyPredictor]]):
    """Saving writes one checkpoint per name (atomically, keeping other names' files);
    loading gives a `PredictorFolder` of load functions."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def filepath(self, name: str) -> Path:
        """Where the checkpoint of ``name`` is saved."""
        if not name or "/" in name:
            raise DatasetError(f"{self._path}: {name!r} is not a predictor name")
        return self._path / f"{name}.pt"

    def load(self) -> PredictorFolder:
        return PredictorFolder(self._path)

    def save(self, data: Mapping[str, LatencyPredictor]) -> None:
        for name, predictor in data.items():
            if not isinstance(predictor, LatencyPredictor):
                raise DatasetError(
                    f"{self._path}: cannot save {type(predictor).__name__} as {name!r}"
                )
            predictor.save(self.filepath(name))

    def _exists(self) -> bool:
        return self._path.is_dir() and any(self._path.glob("*.pt"))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def preview(self) -> TablePreview:
        """For kedro-viz: one row per checkpoint with its metadata (kind, device, space,
        width, encoder, training rows) and its validation and test scores (MAPE in %)."""
        rows = []
        for name, load in self.load().items():
            predictor = load()
            rows.append(
                {
                    "predictor": name,
                    "kind": predictor.kind,
                    "hardware": predictor.hardware or "+".join(predictor.devices) or None,
                    "space": predictor.space,
                    "width_mult": predictor.width_mult,
                    "encoder": predictor.encoder_name,
                    "train_rows": (predictor.metadata.training or {}).get("rows", {}).get("train"),
                    "val_mape": predictor.metrics.get("val", {}).get("mape"),
                    "test_mape": predictor.metrics.get("test", {}).get("mape"),
                    "test_spearman": predictor.metrics.get("test", {}).get("spearman"),
                }
            )
        return table_preview(pd.DataFrame(rows, columns=list(PREVIEW_COLUMNS)))
