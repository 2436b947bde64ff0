"""The folder of latency CSVs (``data/01_raw/latency``), one file per (hardware, space).

Loading gives ``{name: LatencyFile}``, like Kedro's ``PartitionedDataset`` gives load
functions: calling one reads the file as written (for resuming a measurement), its ``path``
lets `load_latency_csv` validate it. Saving *appends*: ``{"<name>.csv": rows}`` adds rows whose subnets
are not in the file yet and ``{"<name>.json": sidecar}`` replaces the sidecar atomically, which
lets a generator node flush every measured row the moment it exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from ofa_latency_kedro.measurement.log import LatencyLog


@dataclass(frozen=True)
class LatencyFile:
    """One latency CSV of the folder: call it for its rows as written, with the sidecar in
    ``attrs``; validated reading goes through `load_latency_csv` on ``path``."""

    path: Path

    def sidecar(self) -> dict[str, Any] | None:
        """The JSON sidecar (how and where the file was measured), without reading the rows."""
        return LatencyLog(self.path).read_sidecar()

    def __call__(self) -> pd.DataFrame:
        log = LatencyLog(self.path)
        frame = log.read()
        frame.attrs["source"] = str(log.path)
        frame.attrs["sidecar"] = log.read_sidecar()
        return frame


class LatencyFolderDataset(AbstractDataset[dict[str, LatencyFile], Mapping[str, Any]]):
    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self._logs: dict[str, LatencyLog] = {}
        self.metadata = metadata

    def _log(self, name: str) -> LatencyLog:
        if name not in self._logs:
            self._logs[name] = LatencyLog(self._path / f"{name}.csv")
        return self._logs[name]

    def load(self) -> dict[str, LatencyFile]:
        if not self._path.is_dir():
            return {}
        return {path.stem: LatencyFile(path) for path in sorted(self._path.glob("*.csv"))}

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
        return self._path.is_dir() and any(self._path.glob("*.csv"))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
