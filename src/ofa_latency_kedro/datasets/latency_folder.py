"""The folder of latency CSVs (the catalog's ``raw_latency``), one file per (hardware, space).

Loading gives a `LatencyFolder`, a mapping ``{name: LatencyFile}`` like the load functions of
Kedro's ``PartitionedDataset``: calling one reads the file as written (for resuming a
measurement), its ``path`` lets `load_latency_csv` validate it, and the folder's own ``path``
names it in messages. Saving *appends*: ``{"<name>.csv": rows}`` adds rows whose subnets
are not in the file yet and ``{"<name>.json": sidecar}`` replaces the sidecar atomically, which
lets a generator node flush every measured row the moment it exists. Every write holds the
dataset's writer lock (`LatencyFolder.writing` holds it for a whole run); ``<name>.rejected.csv``
files (damaged lines moved aside, see `LatencyLog`) are not datasets and are not listed.
In kedro-viz the folder previews as a table: its files' row counts, or the first rows of one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from ofa_latency_kedro.datasets.previews import TablePreview, table_preview
from ofa_latency_kedro.encoding.loading import dataset_name_parts
from ofa_latency_kedro.measurement.log import (
    ON_DAMAGED_ROWS,
    REJECTED_SUFFIX,
    LatencyLog,
    read_sidecar,
)


@dataclass(frozen=True)
class LatencyFile:
    """One latency CSV of the folder: call it for its rows as written, with the sidecar in
    ``attrs``; validated reading goes through `load_latency_csv` on ``path``."""

    path: Path

    def sidecar(self) -> dict[str, Any] | None:
        """The JSON sidecar (how and where the file was measured), without reading the rows."""
        return read_sidecar(self.path)

    def __call__(self, on_damaged: str = ON_DAMAGED_ROWS[0]) -> pd.DataFrame:
        """The rows as written; damaged lines raise, or move aside with
        ``on_damaged="reject"`` (see `LatencyLog.read`)."""
        log = LatencyLog(self.path)
        frame = log.read(on_damaged)
        frame.attrs["source"] = str(log.path)
        frame.attrs["sidecar"] = log.read_sidecar()
        return frame


class LatencyFolder(Mapping[str, LatencyFile]):
    """The latency CSVs of a folder by dataset name (``<hardware>_<space>``); ``path`` is the
    folder, for messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        files = sorted(path.glob("*.csv")) if path.is_dir() else []
        self._files = {
            file.stem: LatencyFile(file)
            for file in files
            if not file.stem.endswith(REJECTED_SUFFIX)
        }

    def __getitem__(self, name: str) -> LatencyFile:
        return self._files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def describe(self) -> str:
        """``<path> holds a, b`` (or nothing)."""
        return f"{self.path} holds {', '.join(self) or 'nothing'}"

    @contextmanager
    def writing(self, name: str) -> Iterator[LatencyFile]:
        """Hold the writer lock of dataset ``name`` (which need not exist yet) for a whole run
        of reads and writes; `DatasetBusyError` at once when another process writes it."""
        path = self.path / f"{name}.csv"
        with LatencyLog(path).writing():
            yield LatencyFile(path)


class LatencyFolderDataset(AbstractDataset[LatencyFolder, Mapping[str, Any]]):
    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self._logs: dict[str, LatencyLog] = {}
        self.metadata = metadata

    def _log(self, name: str) -> LatencyLog:
        if name not in self._logs:
            self._logs[name] = LatencyLog(self._path / f"{name}.csv")
        return self._logs[name]

    def load(self) -> LatencyFolder:
        return LatencyFolder(self._path)

    def save(self, data: Mapping[str, Any]) -> None:
        for filename, value in data.items():
            name, _, extension = filename.rpartition(".")
            if extension == "csv" and isinstance(value, pd.DataFrame):
                self._log(name).append(value)
            elif extension == "json" and isinstance(value, Mapping):
                self._log(name).write_sidecar(value)
            else:
                raise DatasetError(
                    f"{self._path}: cannot save {type(value).__name__} as {filename!r}; give rows "
                    "as '<name>.csv': DataFrame and sidecars as '<name>.json': dict"
                )

    def _exists(self) -> bool:
        return len(LatencyFolder(self._path)) > 0

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def preview(self, nrows: int = 5, head: bool = False) -> TablePreview:
        """For kedro-viz: one row per file (dataset, rows, hardware, space, median latency);
        with ``head``, the first ``nrows`` rows of the first file instead."""
        folder = self.load()
        if head:
            if not folder:
                return table_preview(pd.DataFrame({"dataset": []}))
            name = next(iter(folder))
            return table_preview(folder[name]().head(nrows).assign(dataset=name))
        rows = []
        for name, file in folder.items():
            frame = file()
            hardware, space = dataset_name_parts(name)
            rows.append(
                {
                    "dataset": name,
                    "rows": len(frame),
                    "hardware": hardware,
                    "space": space,
                    "latency_ms_median": float(frame["latency"].median()) if len(frame) else None,
                }
            )
        columns = ["dataset", "rows", "hardware", "space", "latency_ms_median"]
        return table_preview(pd.DataFrame(rows, columns=columns))
