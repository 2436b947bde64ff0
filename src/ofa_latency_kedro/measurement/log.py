"""Append-only latency CSVs with a JSON sidecar: rows are flushed to disk as they are measured,
so an interrupted run loses nothing and a re-run skips what is already there.

One process writes a dataset at a time: every write holds the dataset's writer lock
(`writer_lock`, an ``flock`` on ``<name>.csv.lock`` beside the CSV), and a sampling run holds it
from reading the dataset to its last write. A second writer stops at once with
`DatasetBusyError` ("dataset <file> is being written by pid N on <host> since <time>"); the
lock dies with its process, so a killed run never blocks the next one.

Each group of rows is written with a single ``write`` and fsynced. A kill during that write
leaves a last line without its newline; a row counts only when its line ended: readers drop
such a line with a warning, and the next append cuts it off (by bytes) before writing. Every
other line must be a row of the file (its fields, a valid ``child_arch``, a positive finite
``latency``); a damaged one (two writes merged into one line) raises `DamagedRowsError` naming
file and line, or, with ``on_damaged="reject"``, moves to ``<name>.rejected.csv`` (with its
line number and the problem) while the dataset is rewritten atomically without it.

`read_sidecar` is the one reader of sidecars (the encoding pipeline's validated loading uses
it too); `LatencyDataError` is the error of a latency file or sidecar that cannot be used.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ofa_latency_kedro import pause
from ofa_latency_kedro.atomic import ExclusiveLock, atomic_write_bytes, atomic_write_json
from ofa_latency_kedro.errors import LatencyDataError, OfaLatencyError, ParameterError
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


#: What to do with damaged lines of a dataset: stop naming them, or move them aside.
ON_DAMAGED_ROWS = ("raise", "reject")
#: The suffix of the files that hold a dataset's rejected lines (never a dataset).
REJECTED_SUFFIX = ".rejected"
#: The columns of ``<name>.rejected.csv``.
REJECTED_COLUMNS = ("rejected_at", "line", "problem", "text")
_LISTED_LINES = 10


@dataclass(frozen=True)
class DamagedLine:
    """A line of a latency CSV that is not a row of it: its number, what is wrong, its bytes."""

    line: int
    problem: str
    raw: bytes


class DamagedRowsError(LatencyDataError):
    """Lines of a latency CSV that are not rows of it (e.g. two writes merged into one line):
    names the file, the first such line and how many there are, and how to go on."""

    def __init__(self, path: Path, damaged: Sequence[DamagedLine], rejected_path: Path) -> None:
        first = damaged[0]
        listed = ", ".join(str(d.line) for d in damaged[:_LISTED_LINES])
        more = ", ..." if len(damaged) > _LISTED_LINES else ""
        text = first.raw.decode("utf-8", errors="replace")
        super().__init__(
            f"damaged row: {first.problem} ({text[:80]!r}); damaged lines in all: "
            f"{len(damaged)} ({listed}{more}). To go on, run sampling with "
            f"sampling.on_damaged_rows=reject: the damaged lines move to {rejected_path} and "
            "their subnets are measured again",
            path=path,
            line=first.line,
        )
        self.damaged = list(damaged)


class DatasetBusyError(OfaLatencyError, RuntimeError):
    """Another process is writing this dataset (it holds the dataset's writer lock)."""


_HELD: dict[Path, list[Any]] = {}  # lock file -> [ExclusiveLock, depth] held by this process
_HELD_GUARD = threading.Lock()


def lock_path(csv_path: str | os.PathLike[str]) -> Path:
    """The writer-lock file of a latency CSV: ``<name>.csv.lock`` beside it."""
    path = Path(csv_path)
    return path.with_name(path.name + ".lock")


@contextmanager
def writer_lock(csv_path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the writer lock of the dataset ``csv_path`` (re-entrant within this process);
    `DatasetBusyError` at once when another process holds it."""
    key = lock_path(csv_path).resolve()
    with _HELD_GUARD:
        entry = _HELD.get(key)
        if entry is None:
            lock = ExclusiveLock(key)
            holder = lock.try_acquire()
            if holder is not None:
                raise DatasetBusyError(
                    f"dataset {csv_path} is being written by {holder.describe()}; one run "
                    "writes a dataset at a time: run again when that one has ended (its lock "
                    "goes with its process, a killed one's too)"
                )
            entry = _HELD[key] = [lock, 0]
        entry[1] += 1
    try:
        yield
    finally:
        with _HELD_GUARD:
            entry[1] -= 1
            if entry[1] == 0:
                del _HELD[key]
                entry[0].release()


@dataclass
class _Scan:
    """A latency CSV read line by line: its header, the lines that are rows (with their
    subnets' keys), the damaged ones and an incomplete last line."""

    header: list[str] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)  # every complete line, without b"\n"
    rows: list[int] = field(default_factory=list)  # indices into lines of the good rows
    keys: list[str] = field(default_factory=list)
    damaged: list[DamagedLine] = field(default_factory=list)
    partial: bytes = b""


class LatencyLog:
    """One ``<hardware>_<space>.csv`` and its ``.json`` sidecar."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.sidecar_path = self.path.with_suffix(".json")
        self.rejected_path = self.path.with_suffix(f"{REJECTED_SUFFIX}.csv")
        self._keys: set[str] | None = None

    # -- reading ------------------------------------------------------------------------------
    def _scan(self) -> _Scan:
        scan = _Scan()
        if not self.path.exists():
            return scan
        data = self.path.read_bytes()
        cut = data.rfind(b"\n") + 1
        scan.partial = data[cut:]
        scan.lines = data[:cut].split(b"\n")[:-1]
        if not scan.lines:
            return scan
        scan.header = _parse_header(scan.lines[0], self.path)
        for index in range(1, len(scan.lines)):
            raw = scan.lines[index]
            if not raw.strip():
                continue
            key, problem = _row_key_of_line(raw, scan.header)
            if key is None:
                scan.damaged.append(DamagedLine(index + 1, problem, raw))
                continue
            scan.rows.append(index)
            scan.keys.append(key)
        return scan

    def read(self, on_damaged: str = ON_DAMAGED_ROWS[0]) -> pd.DataFrame:
        """Every row of the file (an incomplete last line is dropped with a warning); damaged
        lines raise `DamagedRowsError`, or with ``on_damaged="reject"`` move aside (see
        `reject_damaged`)."""
        if on_damaged not in ON_DAMAGED_ROWS:
            raise ParameterError(
                "on_damaged", f"must be one of {', '.join(ON_DAMAGED_ROWS)}, got {on_damaged!r}"
            )
        scan = self._scan()
        if scan.partial:
            logger.warning(
                "%s: dropped an incomplete last line (an interrupted write): %r",
                self.path,
                scan.partial[:120].decode("utf-8", errors="replace"),
            )
        if scan.damaged:
            if on_damaged == "raise":
                raise DamagedRowsError(self.path, scan.damaged, self.rejected_path)
            scan = self._reject()
        self._keys = set(scan.keys)
        if not scan.rows:
            return pd.DataFrame(columns=list(scan.header or LATENCY_COLUMNS))
        text = b"\n".join([scan.lines[0], *(scan.lines[i] for i in scan.rows)]) + b"\n"
        return pd.read_csv(io.BytesIO(text), dtype={"child_arch": str})

    def measured_keys(self) -> set[str]:
        """Canonical keys of the subnets already in the file."""
        if self._keys is None:
            self.read()
        return self._keys

    def read_sidecar(self) -> dict[str, Any] | None:
        return read_sidecar(self.path)

    # -- writing ------------------------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[LatencyLog]:
        """Hold this dataset's writer lock (see `writer_lock`) for a whole run of writes."""
        with writer_lock(self.path):
            yield self

    def reject_damaged(self) -> int:
        """Move the damaged lines to ``<name>.rejected.csv`` and rewrite the dataset without
        them; returns how many moved."""
        return len(self._reject().damaged)

    def _reject(self) -> _Scan:
        """Under the writer lock, append the damaged lines to the rejected file (durably), then
        replace the dataset by its other lines (atomically): a kill in between repeats lines
        there, loses none. Returns the scan the rewrite was made from."""
        with self.writing():
            scan = self._scan()
            if not scan.damaged:
                return scan
            now = datetime.now(UTC).isoformat(timespec="seconds")
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            if not self.rejected_path.exists() or self.rejected_path.stat().st_size == 0:
                writer.writerow(REJECTED_COLUMNS)
            for damaged in scan.damaged:
                text = damaged.raw.decode("utf-8", errors="surrogateescape")
                writer.writerow([now, damaged.line, damaged.problem, text])
            _append_durably(
                self.rejected_path, buffer.getvalue().encode("utf-8", errors="surrogateescape")
            )
            dropped = {d.line - 1 for d in scan.damaged}
            kept = b"".join(
                line + b"\n" for index, line in enumerate(scan.lines) if index not in dropped
            )
            atomic_write_bytes(self.path, kept + scan.partial)
            self._keys = None
        listed = ", ".join(str(d.line) for d in scan.damaged[:_LISTED_LINES])
        logger.warning(
            "%s: moved %d damaged line(s) (%s%s) to %s; their subnets are measured again",
            self.path,
            len(scan.damaged),
            listed,
            ", ..." if len(scan.damaged) > _LISTED_LINES else "",
            self.rejected_path,
        )
        return scan

    def _repair_tail(self) -> None:
        """Cut an incomplete last line off, by bytes (its text may end inside a character)."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            logger.warning(
                "%s: cutting off an incomplete last line left by an interrupted write: %r",
                self.path,
                data[cut : cut + 120].decode("utf-8", errors="replace"),
            )
            with self.path.open("r+b") as handle:
                handle.truncate(cut)

    def append(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Append rows whose subnet is not in the file yet; returns how many were written."""
        records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
        if not records:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.writing():
            self._repair_tail()
            header = self._header_or_none()
            fresh = self.new_records(records)
            if not fresh:
                return 0
            _append_durably(self.path, format_rows(fresh, header=header is None).encode("utf-8"))
        pause.reached(f"latency_log.appended:{self.path.name}")
        return len(fresh)

    def new_records(self, records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The records whose subnet (`row_key`) the file does not hold yet, each once."""
        known = self.measured_keys()
        fresh = []
        for record in records:
            key = row_key(record)
            if key not in known:
                known.add(key)
                fresh.append(record)
        return fresh

    def refuses_rows(self) -> str | None:
        """Why rows measured now cannot be appended to this file (a file in another format,
        e.g. the seed's two columns), or None when they can."""
        try:
            self._header_or_none()
        except LatencyDataError as exc:
            return str(exc)
        return None

    def _header_or_none(self) -> list[str] | None:
        """The file's header, checked to be this module's columns (None: no file yet)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        with self.path.open("rb") as handle:
            first = handle.readline()
        header = _parse_header(first.rstrip(b"\r\n"), self.path)
        if header != list(LATENCY_COLUMNS):
            raise LatencyDataError(
                f"the header has the columns {', '.join(header)}, not those the sampling "
                f"pipeline writes ({', '.join(LATENCY_COLUMNS)}): rows measured now cannot be "
                "appended to this file; give this run another sampling.hardware name",
                path=self.path,
                line=1,
            )
        return header

    def write_sidecar(self, sidecar: Mapping[str, Any]) -> None:
        with self.writing():
            atomic_write_json(self.sidecar_path, dict(sidecar))


def _parse_header(raw: bytes, path: Path) -> list[str]:
    try:
        text = raw.decode("utf-8-sig").rstrip("\r")
        header = [name.strip() for name in next(csv.reader([text], strict=True))]
    except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise LatencyDataError(f"the header is not a CSV row: {exc}", path=path, line=1) from None
    missing = [column for column in ("child_arch", "latency") if column not in header]
    if missing:
        raise LatencyDataError(
            f"the header lacks column(s) {', '.join(missing)} (it has {', '.join(header)})",
            path=path,
            line=1,
        )
    return header


def _row_key_of_line(raw: bytes, header: list[str]) -> tuple[str | None, str | None]:
    """The canonical key of the subnet of one line, or what makes the line no row of its
    file: ``(key, None)`` or ``(None, problem)``."""
    row, problem = _fields_of_line(raw, header)
    if row is None:
        return None, problem
    try:
        latency = float(row["latency"])
    except ValueError:
        return None, f"field 'latency': {row['latency'][:40]!r} is not a number"
    if not (math.isfinite(latency) and latency > 0):
        return None, f"field 'latency': {row['latency']!r} is not a positive, finite number"
    try:
        return row_key(row), None
    except (ArchError, ValueError) as exc:
        field_name = getattr(exc, "field", None)
        where = "child_arch" if field_name in (None, "arch") else f"child_arch.{field_name}"
        return None, f"field '{where}': {exc}"


def _fields_of_line(raw: bytes, header: list[str]) -> tuple[dict[str, str] | None, str | None]:
    """One line as ``{column: text}``, or why it is not a CSV row of ``header``."""
    try:
        text = raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})"
    try:
        values = next(csv.reader([text], strict=True))
    except (csv.Error, StopIteration) as exc:
        return None, f"not a CSV row ({exc})"
    if len(values) != len(header):
        return None, f"expected {len(header)} fields, got {len(values)}"
    return dict(zip(header, values, strict=True)), None


def _append_durably(path: Path, data: bytes) -> None:
    """One ``O_APPEND`` write of ``data``, fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
