"""Append-only latency CSVs: exact floats, no duplicates, interrupted writes repaired, damaged
lines named or moved aside, one writer at a time (real processes, real kills)."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.measurement.log import (
    LATENCY_COLUMNS,
    DamagedRowsError,
    DatasetBusyError,
    LatencyDataError,
    LatencyLog,
    format_rows,
    lock_path,
    read_sidecar,
    row_key,
)
from ofa_latency_kedro.search_space import get_space
from tests.helpers import PausedProcess


def rows(n: int, seed: int = 0, width: float = 1.0) -> list[dict]:
    archs = get_space("ofa", width_mult=width).sample_distinct(n, seed=seed)
    return [
        {
            "child_arch": a.to_seed_string(),
            "latency": 1.0 / (i + 3),
            "latency_p10": 0.1,
            "latency_p90": 0.2,
            "runs": 30,
            "batch_size": 1,
            "backend": "torch-cpu",
            "hardware": "hw",
            "space": "ofa",
            "width_mult": a.width_mult,
            "measured_at": "2026-11-27T00:00:00+00:00",
        }
        for i, a in enumerate(archs)
    ]


def test_appends_with_one_header_and_exact_floats(tmp_path: Path):
    log = LatencyLog(tmp_path / "hw_ofa.csv")
    first, second = rows(3), rows(5)[3:]
    assert log.append(first) == 3
    assert log.append(second) == 2
    text = (tmp_path / "hw_ofa.csv").read_text()
    assert text.count("child_arch,latency") == 1
    frame = LatencyLog(tmp_path / "hw_ofa.csv").read()
    assert list(frame.columns) == list(LATENCY_COLUMNS)
    assert frame["latency"].tolist() == [r["latency"] for r in first + second]


def test_never_appends_a_subnet_twice(tmp_path: Path):
    log = LatencyLog(tmp_path / "hw_ofa.csv")
    log.append(rows(4))
    assert log.append(rows(6)) == 2
    fresh = LatencyLog(tmp_path / "hw_ofa.csv")
    assert fresh.append(rows(6)) == 0
    assert len(fresh.read()) == 6


def test_width_is_part_of_the_key(tmp_path: Path):
    narrow, wide = rows(2), rows(2, width=1.2)
    assert row_key(narrow[0]) != row_key(wide[0])
    assert row_key({"child_arch": narrow[0]["child_arch"]}) == row_key(narrow[0])


def test_incomplete_last_line_is_dropped_on_read_and_cut_before_append(tmp_path: Path, caplog):
    path = tmp_path / "hw_ofa.csv"
    log = LatencyLog(path)
    log.append(rows(3))
    complete = path.read_bytes()
    with path.open("ab") as handle:
        handle.write(b"\"{'wid': None, 'ks': [3, 5")
    with caplog.at_level(logging.WARNING):
        frame = LatencyLog(path).read()
    assert len(frame) == 3
    assert "dropped an incomplete last line" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert LatencyLog(path).append(rows(4)) == 1
    assert "cutting off an incomplete last line" in caplog.text
    assert path.read_bytes().startswith(complete)
    assert len(LatencyLog(path).read()) == 4


def test_a_header_cut_short_is_rewritten(tmp_path: Path):
    path = tmp_path / "hw_ofa.csv"
    path.write_text("child_arch,lat")
    log = LatencyLog(path)
    assert len(log.read()) == 0
    assert log.append(rows(2)) == 2
    assert path.read_text().startswith("child_arch,latency,latency_p10")
    assert len(LatencyLog(path).read()) == 2


def test_sidecar_round_trip_and_bad_json(tmp_path: Path):
    log = LatencyLog(tmp_path / "hw_ofa.csv")
    assert log.read_sidecar() is None
    log.write_sidecar({"backend": "torch-cpu", "sessions": []})
    assert log.read_sidecar() == {"backend": "torch-cpu", "sessions": []}
    assert read_sidecar(tmp_path / "hw_ofa.csv") == log.read_sidecar()
    assert not list(tmp_path.glob(".*tmp"))
    (tmp_path / "hw_ofa.json").write_text("{")
    with pytest.raises(LatencyDataError, match=r"hw_ofa\.json: sidecar is not valid JSON"):
        log.read_sidecar()
    (tmp_path / "hw_ofa.json").write_text("[1, 2]")
    with pytest.raises(LatencyDataError, match="sidecar must be a JSON object, got list"):
        read_sidecar(tmp_path / "hw_ofa.csv")


def test_a_bad_arch_in_the_file_is_named_with_its_line(tmp_path: Path):
    path = tmp_path / "hw_ofa.csv"
    LatencyLog(path).append(rows(2))
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("'d': [", "'d': [5, ", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LatencyDataError, match=r"hw_ofa.csv, line 3: damaged row: field 'child_"):
        LatencyLog(path).measured_keys()


def test_an_incomplete_last_line_is_cut_by_bytes_even_inside_a_character(tmp_path: Path):
    """A kill inside a multi-byte character leaves a partial byte sequence: the cut must
    not reach into the row before it."""
    path = tmp_path / "hw_ofa.csv"
    LatencyLog(path).append(rows(3))
    complete = path.read_bytes()
    with path.open("ab") as handle:
        handle.write("\"{'wid': None, 'é".encode()[:-1])  # the first byte of 'é' only
    assert LatencyLog(path).append(rows(4)) == 1
    assert path.read_bytes().startswith(complete)
    assert len(LatencyLog(path).read()) == 4


def merged(path: Path) -> list[int]:
    """Damage ``path`` as two writers at once did: a row cut short with the next row written
    onto the same line, twice; returns the damaged line numbers."""
    lines = path.read_bytes().split(b"\n")[:-1]
    lines[2:4] = [lines[2][:40] + lines[3]]
    lines[5:7] = [lines[5][: len(lines[5]) - 8] + lines[6]]  # cut inside the latency number
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return [3, 6]


def test_a_damaged_line_is_named_with_file_line_and_the_way_on(tmp_path: Path):
    path = tmp_path / "hw_ofa.csv"
    LatencyLog(path).append(rows(10))
    merged(path)
    with pytest.raises(DamagedRowsError) as info:
        LatencyLog(path).read()
    message = str(info.value)
    assert message.startswith(f"{path}, line 3: damaged row: ")
    assert "damaged lines in all: 2 (3, 6)" in message
    assert "sampling.on_damaged_rows=reject" in message
    assert str(tmp_path / "hw_ofa.rejected.csv") in message
    assert info.value.line == 3 and info.value.path == path
    with pytest.raises(DamagedRowsError):
        LatencyLog(path).append(rows(12))


def test_rejecting_moves_damaged_lines_aside_and_loses_nothing(tmp_path: Path, caplog):
    path = tmp_path / "hw_ofa.csv"
    LatencyLog(path).append(rows(10))
    original = path.read_bytes().split(b"\n")
    damaged = merged(path)
    before = path.read_bytes().split(b"\n")
    with caplog.at_level(logging.WARNING):
        frame = LatencyLog(path).read(on_damaged="reject")
    assert "moved 2 damaged line(s) (3, 6)" in caplog.text
    assert len(frame) == 10 - 4  # two merged lines held four rows; both lines went aside
    kept = path.read_bytes().split(b"\n")
    assert kept == [line for number, line in enumerate(before, 1) if number not in damaged]
    rejected = pd.read_csv(tmp_path / "hw_ofa.rejected.csv", dtype={"text": str})
    assert rejected["line"].tolist() == damaged
    assert [text.encode() for text in rejected["text"]] == [before[n - 1] for n in damaged]
    assert rejected["problem"].str.len().gt(0).all()
    # what was lost is measured again: the rows of the damaged lines are welcome back
    assert LatencyLog(path).append(rows(10)) == 4
    restored = LatencyLog(path).read()
    assert sorted(restored["child_arch"]) == sorted(r["child_arch"] for r in rows(10))
    assert original[0] == kept[0]
    assert LatencyLog(path).reject_damaged() == 0  # nothing left to move
    with pytest.raises(
        ParameterError, match="'on_damaged' must be one of raise, reject, got 'skip'"
    ):
        LatencyLog(path).read(on_damaged="skip")
    LatencyLog(path).append(rows(10))  # a second rejection appends below the first
    merged(path)
    LatencyLog(path).read(on_damaged="reject")
    again = pd.read_csv(tmp_path / "hw_ofa.rejected.csv")
    assert len(again) == 4 and again.columns.tolist() == ["rejected_at", "line", "problem", "text"]
    assert not (tmp_path / "hw_ofa.rejected.json").exists()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'"{}",1.0' + b"," * 9, "field 'child_arch.ks': arch is missing field(s)"),
        (b"abc", "expected 11 fields, got 1"),
        (b'"x"y,1.0', "not a CSV row"),
        (b"\xff\xfe", "not UTF-8 text (byte 0xff)"),
    ],
)
def test_every_kind_of_damage_is_named(tmp_path: Path, line: bytes, problem: str):
    path = tmp_path / "hw_ofa.csv"
    LatencyLog(path).append(rows(2))
    with path.open("ab") as handle:
        handle.write(line + b"\n")
    with pytest.raises(DamagedRowsError, match=rf"line 4: damaged row: {re.escape(problem)}"):
        LatencyLog(path).read()


@pytest.mark.parametrize("latency", ["nan", "inf", "-1.0", "0", "1e999", "abc"])
def test_a_row_without_a_positive_finite_latency_is_damaged(tmp_path: Path, latency: str):
    path = tmp_path / "hw_ofa.csv"
    bad = rows(3)[2]
    LatencyLog(path).append(rows(2))
    with path.open("a") as handle:
        handle.write(format_rows([bad], header=False).replace(repr(bad["latency"]), latency))
    with pytest.raises(DamagedRowsError, match=r"line 4: damaged row: field 'latency'"):
        LatencyLog(path).read()


def test_rows_are_not_appended_to_a_file_of_other_columns(tmp_path: Path):
    path = tmp_path / "seed_ofa.csv"
    arch = rows(1)[0]["child_arch"]
    path.write_text(f'child_arch,latency\n"{arch}",12.5\n')
    assert len(LatencyLog(path).read()) == 1
    with pytest.raises(LatencyDataError, match=r"seed_ofa.csv, line 1: the header has the colu"):
        LatencyLog(path).append(rows(3))
    assert path.read_text() == f'child_arch,latency\n"{arch}",12.5\n'


# -- one writer at a time ---------------------------------------------------------------------

WRITER = """
import sys
from ofa_latency_kedro.measurement.log import LatencyLog
from tests.measurement.test_log import rows
log = LatencyLog(sys.argv[1])
with log.writing():
    log.append(rows(2))  # stops here (latency_log.appended), holding the lock
"""


def start_writer(path: Path, marker: Path) -> PausedProcess:
    writer = PausedProcess(
        [sys.executable, "-c", WRITER, str(path)],
        f"latency_log.appended:{path.name}",
        marker,
        cwd=Path(__file__).resolve().parents[2],
    )
    writer.wait_for_pause()
    return writer


def test_a_second_writer_stops_at_once_naming_the_first(tmp_path: Path):
    path = tmp_path / "hw_ofa.csv"
    writer = start_writer(path, tmp_path / "paused")
    try:
        before = path.read_bytes()
        log = LatencyLog(path)
        for attempt in (lambda: log.append(rows(5)), lambda: log.write_sidecar({})):
            with pytest.raises(DatasetBusyError) as info:
                attempt()
            message = str(info.value)
            assert message.startswith(
                f"dataset {path} is being written by pid {writer.process.pid} on "
                f"{socket.gethostname()} since "
            )
        with pytest.raises(DatasetBusyError), log.writing():
            pass
        assert path.read_bytes() == before
        assert not path.with_suffix(".json").exists()
        record = json.loads(lock_path(path).read_text())
        assert record["pid"] == writer.process.pid
    finally:
        writer.kill()


def test_a_killed_writer_never_blocks_the_next(tmp_path: Path):
    path = tmp_path / "hw_ofa.csv"
    start_writer(path, tmp_path / "paused").kill()
    assert lock_path(path).exists()  # its record stays behind, stale
    log = LatencyLog(path)
    assert log.append(rows(5)) == 3
    with log.writing():
        assert json.loads(lock_path(path).read_text())["pid"] == os.getpid()
    assert not lock_path(path).exists()  # removed when released


def test_the_lock_is_reentrant_in_one_process_and_released_by_the_outermost(tmp_path: Path):
    path = tmp_path / "hw_ofa.csv"
    log = LatencyLog(path)
    probe = (
        "import sys\n"
        "from ofa_latency_kedro.measurement.log import LatencyLog, DatasetBusyError\n"
        "try:\n"
        "    with LatencyLog(sys.argv[1]).writing(): print('free')\n"
        "except DatasetBusyError: print('busy')\n"
    )

    def other_process_sees() -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    with log.writing():
        log.append(rows(2))  # takes the lock again inside
        log.write_sidecar({"sessions": []})
        assert other_process_sees() == "busy"
    assert other_process_sees() == "free"


def test_a_file_in_another_format_says_why_it_refuses_rows(tmp_path: Path):
    fresh = LatencyLog(tmp_path / "new_ofa.csv")
    assert fresh.refuses_rows() is None
    fresh.append(rows(2))
    assert fresh.refuses_rows() is None
    seed_format = tmp_path / "seed_ofa.csv"
    seed_format.write_text("child_arch,latency\n\"{'ks': [3]}\",1.0\n")
    reason = LatencyLog(seed_format).refuses_rows()
    assert reason is not None and "seed_ofa.csv" in reason
    assert "the header has the columns child_arch, latency" in reason
    assert seed_format.read_text().startswith("child_arch,latency\n")  # untouched
