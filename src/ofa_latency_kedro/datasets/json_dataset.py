"""A JSON file written atomically: a killed run never leaves half a report behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from ofa_latency_kedro.atomic import atomic_write_json


class AtomicJSONDataset(AbstractDataset[Any, Any]):
    """Loads and saves one JSON document (temporary file + rename on save)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> Any:
        try:
            return json.loads(self._filepath.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{self._filepath} is not valid JSON: {exc}") from None

    def save(self, data: Any) -> None:
        atomic_write_json(self._filepath, data)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
