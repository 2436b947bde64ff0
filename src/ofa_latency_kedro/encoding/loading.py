"""Reading latency CSVs: every row validated, bad input named by file, line and field.

A latency CSV needs the columns ``child_arch`` (the seed's dict literal, or JSON) and
``latency`` (ms); the columns the sampling pipeline writes are checked when present. Hardware
and space come from the row's columns, else the JSON sidecar, else the file name
(``<hardware>_<space>.csv``, the seed's names included). Repeated measurements of one
canonical subnet are merged (median latency, ``repeats`` counted) unless asked not to.
`LatencyDataError` (defined beside the latency-file format, in `measurement.log`) is the
error of every file, row and sidecar that cannot be used.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.measurement.log import REJECTED_SUFFIX, LatencyDataError, read_sidecar
from ofa_latency_kedro.search_space import Arch, ArchBatch, ArchError, SearchSpace, get_space
from ofa_latency_kedro.search_space.spaces import SPACE_ALIASES, SPACE_NAMES, spaces_holding

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("child_arch", "latency")
#: Optional numeric columns: (name, integer?, smallest allowed value).
NUMERIC_COLUMNS = (
    ("latency_p10", False, 0.0),
    ("latency_p90", False, 0.0),
    ("runs", True, 1),
    ("batch_size", True, 1),
)
TEXT_COLUMNS = ("backend", "hardware", "space", "measured_at")
#: Longest line read; an arch row is ~300 characters, so longer lines are refused unread.
MAX_LINE_BYTES = 1 << 20
#: What to do with a bad row: stop naming it (the default), or leave it out and count it.
ON_BAD_ROWS = ("raise", "skip")
_SPACE_SUFFIXES = sorted([*SPACE_NAMES, *SPACE_ALIASES], key=len, reverse=True)
_SKIP_EXAMPLES = 20


def dataset_name_parts(stem: str) -> tuple[str, str | None]:
    """``RTX_2080_Ti_GPU_fixedkernelcompofa`` -> (``RTX_2080_Ti_GPU``, ``compofa``)."""
    for suffix in _SPACE_SUFFIXES:
        if stem.lower().endswith("_" + suffix) and len(stem) > len(suffix) + 1:
            return stem[: -len(suffix) - 1], SPACE_ALIASES.get(suffix, suffix)
    return stem, None


@dataclass
class FileReport:
    path: str
    rows_read: int = 0
    rows_kept: int = 0
    rows_skipped: int = 0
    skipped: list[str] = field(default_factory=list)

    def skip(self, error: LatencyDataError) -> None:
        self.rows_skipped += 1
        if len(self.skipped) < _SKIP_EXAMPLES:
            self.skipped.append(str(error))


def _lines(path: Path) -> Iterator[tuple[int, str | LatencyDataError]]:
    """Numbered lines of a file, each decoded on its own; over-long or undecodable lines come
    back as errors without being held in memory. A row counts only when its line ended: a
    last line without its newline (a write cut short) is dropped with a warning."""
    with path.open("rb") as handle:
        number = 0
        while True:
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if number > 1 and len(raw) <= MAX_LINE_BYTES and not raw.endswith(b"\n"):
                if raw.strip():
                    logger.warning(
                        "%s, line %d: dropped an incomplete last line (no line end: an "
                        "interrupted write?): %r",
                        path,
                        number,
                        raw[:120].decode("utf-8", errors="replace"),
                    )
                return
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while True:  # skip the rest of the line in bounded chunks
                    rest = handle.readline(MAX_LINE_BYTES)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield (
                    number,
                    LatencyDataError(
                        f"line is longer than {MAX_LINE_BYTES:,} bytes", path=path, line=number
                    ),
                )
                continue
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield (
                    number,
                    LatencyDataError(
                        f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                        path=path,
                        line=number,
                    ),
                )
                continue
            yield number, text.rstrip("\r\n")


def _fields(text: str, path: Path, line: int) -> list[str]:
    try:
        return next(csv.reader([text]))
    except (csv.Error, StopIteration) as exc:
        raise LatencyDataError(f"not a CSV row: {exc}", path=path, line=line) from None


def _number(
    text: str, *, column: str, integer: bool, minimum: float, path: Path, line: int
) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise LatencyDataError(
            f"{text[:40]!r} is not a number", path=path, line=line, field=column
        ) from None
    if not math.isfinite(value) or value < minimum or (column == "latency" and value <= 0):
        bound = (
            "a positive, finite number" if column == "latency" else f"a finite number >= {minimum}"
        )
        raise LatencyDataError(f"{text[:40]!r} must be {bound}", path=path, line=line, field=column)
    if integer:
        if value != int(value):
            raise LatencyDataError(
                f"{text!r} is not a whole number", path=path, line=line, field=column
            )
        return int(value)
    return value


def read_latency_file(
    path: str | Path,
    *,
    on_bad_rows: str = ON_BAD_ROWS[0],
    width_mult: float | Mapping[str, float] | None = None,
    hardware: str | None = None,
    space: str | None = None,
) -> tuple[pd.DataFrame, FileReport]:
    """Validated rows of one latency CSV (not merged), with a report of what was skipped."""
    if on_bad_rows not in ON_BAD_ROWS:
        raise ParameterError(
            "on_bad_rows", f"must be one of {', '.join(ON_BAD_ROWS)}, got {on_bad_rows!r}"
        )
    path = Path(path)
    if not path.is_file():
        raise LatencyDataError("no such file", path=path)
    report = FileReport(path=str(path))
    sidecar = read_sidecar(path) or {}
    name_hardware, name_space = dataset_name_parts(path.stem)
    file_hardware = hardware or sidecar.get("hardware") or name_hardware
    file_space = space or sidecar.get("space") or name_space
    if isinstance(width_mult, Mapping):
        file_width = sidecar.get("width_mult") or width_mult.get(file_hardware)
    else:
        file_width = width_mult if width_mult is not None else sidecar.get("width_mult")

    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise LatencyDataError(
            "the file is empty (expected a header with child_arch and latency)", path=path
        )
    if isinstance(first[1], LatencyDataError):
        raise first[1]
    header = [name.strip() for name in _fields(first[1], path, 1)]
    seen = set()
    for name in header:
        if name in seen:
            raise LatencyDataError(
                f"column {name!r} appears twice in the header", path=path, line=1, field=name
            )
        seen.add(name)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise LatencyDataError(
            f"the header lacks column(s) {', '.join(missing)} (it has {', '.join(header) or 'none'})",
            path=path,
            line=1,
        )

    context = _FileContext(path, file_hardware, file_space, file_width)
    records: list[dict[str, Any]] = []
    archs: list[Arch] = []
    for line, text in lines:
        if isinstance(text, str) and not text.strip():
            continue
        report.rows_read += 1
        try:
            if isinstance(text, LatencyDataError):
                raise text
            values = _fields(text, path, line)
            if len(values) != len(header):
                raise LatencyDataError(
                    f"expected {len(header)} fields ({', '.join(header)}), got {len(values)}",
                    path=path,
                    line=line,
                )
            row = dict(zip(header, values, strict=True))
            record, arch = _validate_row(row, line, context)
        except LatencyDataError as error:
            if on_bad_rows == "raise":
                raise
            report.skip(error)
            continue
        records.append(record)
        archs.append(arch)
        report.rows_kept += 1
    if report.rows_skipped:
        logger.warning(
            "%s: skipped %d of %d rows (on_bad_rows: skip); first: %s",
            path,
            report.rows_skipped,
            report.rows_read,
            report.skipped[0],
        )
    if not records:
        raise LatencyDataError(
            "no usable rows" + (f" ({report.rows_skipped} skipped)" if report.rows_skipped else ""),
            path=path,
        )
    frame = pd.DataFrame.from_records(records)
    batch = ArchBatch.from_archs(archs)
    unnamed = frame["space"].isna().to_numpy()
    if unnamed.any():
        frame.loc[unnamed, "space"] = _inferred_space(batch[unnamed], path)
    return pd.concat([frame, batch.to_frame()], axis=1), report


def _inferred_space(batch: ArchBatch, path: Path) -> str:
    """The space of a file whose name, sidecar and rows do not say it: the one space that
    holds its subnets; a `LatencyDataError` when several do."""
    holding = spaces_holding(batch)
    if len(holding) != 1:
        raise LatencyDataError(
            f"the file does not say its search space (name it <hardware>_<space>.csv with a "
            f"space of {', '.join(SPACE_NAMES)}, or give a 'space' column), and its subnets fit "
            f"{'several spaces: ' + ', '.join(holding) if holding else 'no space'}",
            path=path,
        )
    logger.info("%s: no space in its name; its subnets fit '%s' only", path, holding[0])
    return holding[0]


@functools.lru_cache(maxsize=64)
def _space_for(name: str, width_mult: float) -> SearchSpace:
    return get_space(name, resolutions="ofa", width_mult=width_mult)


@dataclass
class _FileContext:
    """What a file says about all its rows, and the archs parsed so far."""

    path: Path
    hardware: str
    space: str | None
    width_mult: float | None
    parsed: dict[tuple[str, float | None, str | None], Arch] = field(default_factory=dict)


def _validate_row(
    row: dict[str, str], line: int, context: _FileContext
) -> tuple[dict[str, Any], Arch]:
    path = context.path
    hardware = row.get("hardware", "").strip() or context.hardware
    space_name = row.get("space", "").strip() or context.space
    width_text = row.get("width_mult", "").strip()
    width = (
        _number(width_text, column="width_mult", integer=False, minimum=0.0, path=path, line=line)
        if width_text
        else context.width_mult
    )
    space = None
    if space_name is not None:
        try:
            space = _space_for(space_name, 1.0).name
        except ValueError as exc:
            raise LatencyDataError(str(exc), path=path, line=line, field="space") from None
    cache_key = (row["child_arch"], width, space)
    arch = context.parsed.get(cache_key)
    if arch is None:
        try:
            arch = Arch.parse(row["child_arch"], width_mult=width)
            if space is not None:
                _space_for(space, arch.width_mult).validate(arch)
        except ArchError as exc:
            field_name = "child_arch" if exc.field in (None, "arch") else f"child_arch.{exc.field}"
            raise LatencyDataError(str(exc), path=path, line=line, field=field_name) from None
        context.parsed[cache_key] = arch
    record: dict[str, Any] = {
        "source": path.stem,
        "line": line,
        "hardware": hardware,
        "space": space,
        "child_arch": arch.to_seed_string(),
        "canonical_key": arch.canonical_key,
        "latency": _number(
            row["latency"].strip(),
            column="latency",
            integer=False,
            minimum=0.0,
            path=path,
            line=line,
        ),
    }
    for column, integer, minimum in NUMERIC_COLUMNS:
        if column in row:
            text = row[column].strip()
            record[column] = (
                _number(text, column=column, integer=integer, minimum=minimum, path=path, line=line)
                if text
                else np.nan
            )
    for column in ("backend", "measured_at"):
        if column in row:
            record[column] = row[column].strip()
    return record, arch


def latency_paths(source: str | Path | Iterable[str | Path]) -> list[Path]:
    """The CSV files a source names: a file, every ``*.csv`` of a folder (less the
    ``<name>.rejected.csv`` files of damaged lines that sampling moved aside), or a list."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            paths = [p for p in sorted(path.glob("*.csv")) if not p.stem.endswith(REJECTED_SUFFIX)]
            if not paths:
                raise LatencyDataError("the folder holds no .csv files", path=path)
            return paths
        return [path]
    return [p for item in source for p in latency_paths(item)]


def merge_repeats(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (hardware, space, subnet): the median latency of its repeats, in order of
    first appearance; ``repeats`` says how many rows were merged."""
    keys = ["hardware", "space", "canonical_key"]
    grouped = table.groupby(keys, sort=False, dropna=False)
    first = grouped.head(1).set_index(keys)
    merged = first.assign(
        latency=grouped["latency"].median(),
        repeats=grouped["latency"].size(),
    )
    return merged.reset_index()[[*table.columns, "repeats"]]


def load_latency_csv(
    source: str | Path | Sequence[str | Path],
    *,
    on_bad_rows: str = ON_BAD_ROWS[0],
    merge: bool = True,
    width_mult: float | Mapping[str, float] | None = None,
    hardware: str | None = None,
    space: str | None = None,
) -> pd.DataFrame:
    """Read, validate and (by default) merge one or many latency CSVs into one table.

    Bad rows raise `LatencyDataError` naming file, line and field, or, with
    ``on_bad_rows="skip"``, are skipped and counted in ``table.attrs["report"]``. The table
    has ``source``, ``line``, ``hardware``, ``space``, ``child_arch``, ``canonical_key``,
    ``latency``, the optional measurement columns, the arch columns of `ArchBatch.to_frame`
    and, when merged, ``repeats``. ``width_mult`` applies where rows and sidecars do not say
    (a number, or a mapping from hardware name to width); else it is 1.0.
    """
    frames, reports = [], []
    for path in latency_paths(source):
        frame, report = read_latency_file(
            path, on_bad_rows=on_bad_rows, width_mult=width_mult, hardware=hardware, space=space
        )
        frames.append(frame)
        reports.append(report)
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    rows_before = len(table)
    if merge:
        table = merge_repeats(table)
    table.attrs["report"] = {
        "files": [vars(r) for r in reports],
        "rows_read": sum(r.rows_read for r in reports),
        "rows_skipped": sum(r.rows_skipped for r in reports),
        "rows_before_merge": rows_before,
        "rows": len(table),
    }
    return table
