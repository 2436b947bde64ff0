"""Append-only latency CSVs with a JSON sidecar: rows are flushed to disk as they are measured,
so an interrupted run loses nothing and a re-run skips what is already there.

Each row is written with a single ``write`` and fsynced. A kill during that write leaves a last
line without its newline; readers drop it with a warning, and the next append cuts it off
before writing. `read_sidecar` is the one reader of sidecars (the encoding pipeline's
validated loading uses it too); `LatencyDataError` is the error of a latency file or sidecar
that cannot be used.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ofa_latency_kedro import pause
from ofa_latency_kedro.atomic import atomic_write_json
from ofa_latency_kedro.errors import LatencyDataError
from ofa_latency_kedro.search_space import Arch, ArchError

logger = logging.getLogger(__name__)


def read_sidecar(csv_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON sidecar of a latency CSV (``<name>.json`` beside it), or None when there is
    none; `LatencyDataError` names a sidecar that is not a JSON object."""
    path = Path(csv_path).with_suffix(".json")
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LatencyDataError(f"sidecar is not valid JSON: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise LatencyDataError(
            f"sidecar must be a JSON object, got {type(data).__name__}", path=path
        )
    return data


#: The latency-CSV columns this project writes, in order (readers need only the first two).
LATENCY_COLUMNS = (
    "child_arch",
    "latency",
    "latency_p10",
    "latency_p90",
    "runs",
    "batch_size",
    "backend",
    "hardware",
    "space",
    "width_mult",
    "measured_at",
)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back to the same float
    if value is None:
        return ""
    return str(value)


def format_rows(rows: Iterable[Mapping[str, Any]], header: bool) -> str:
    """CSV text of ``rows`` in `LATENCY_COLUMNS` order (floats written exactly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(LATENCY_COLUMNS)
    for row in rows:
        writer.writerow([_format(row.get(column)) for column in LATENCY_COLUMNS])
    return buffer.getvalue()


def row_key(row: Mapping[str, Any]) -> str:
    """The canonical key of a row's subnet (its width column applies when present)."""
    width = row.get("width_mult")
    known = width is not None and width != "" and not pd.isna(width)
    return Arch.parse(row["child_arch"], width_mult=float(width) if known else None).canonical_key


class LatencyLog:
    """One ``<hardware>_<space>.csv`` and its ``.json`` sidecar."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.sidecar_path = self.path.with_suffix(".json")
        self._keys: set[str] | None = None

    # -- reading ------------------------------------------------------------------------------
    def _complete_text(self) -> tuple[str, str]:
        """The file's complete lines, and any incomplete last line."""
        if not self.path.exists():
            return "", ""
        data = self.path.read_bytes()
        cut = data.rfind(b"\n") + 1
        return data[:cut].decode("utf-8"), data[cut:].decode("utf-8", errors="replace")

    def read(self) -> pd.DataFrame:
        """Every complete row (an incomplete last line is dropped with a warning)."""
        text, partial = self._complete_text()
        if partial:
            logger.warning(
                "%s: dropped an incomplete last line (an interrupted write): %r",
                self.path,
                partial[:120],
            )
        if not text.strip():
            return pd.DataFrame(columns=list(LATENCY_COLUMNS))
        return pd.read_csv(io.StringIO(text), dtype={"child_arch": str})

    def measured_keys(self) -> set[str]:
        """Canonical keys of the subnets already in the file."""
        if self._keys is None:
            keys = set()
            for line, row in enumerate(self.read().to_dict("records"), start=2):
                try:
                    keys.add(row_key(row))
                except ArchError as exc:
                    raise ArchError(
                        f"{self.path}, line {line}, column 'child_arch': {exc}",
                        field=exc.field,
                        value=exc.value,
                    ) from None
            self._keys = keys
        return self._keys

    def read_sidecar(self) -> dict[str, Any] | None:
        return read_sidecar(self.path)

    # -- writing ------------------------------------------------------------------------------
    def _repair_tail(self) -> None:
        _, partial = self._complete_text()
        if partial:
            size = self.path.stat().st_size
            logger.warning(
                "%s: cutting off an incomplete last line left by an interrupted write: %r",
                self.path,
                partial[:120],
            )
            with self.path.open("r+b") as handle:
                handle.truncate(size - len(partial.encode("utf-8", errors="replace")))

    def append(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Append rows whose subnet is not in the file yet; returns how many were written."""
        records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
        if not records:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        known = self.measured_keys()
        fresh = []
        for record in records:
            key = row_key(record)
            if key not in known:
                known.add(key)
                fresh.append(record)
        if not fresh:
            return 0
        header = not self.path.exists() or self.path.stat().st_size == 0
        data = format_rows(fresh, header=header).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        pause.reached(f"latency_log.appended:{self.path.name}")
        return len(fresh)

    def write_sidecar(self, sidecar: Mapping[str, Any]) -> None:
        atomic_write_json(self.sidecar_path, dict(sidecar))
