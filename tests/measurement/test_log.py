"""Append-only latency CSVs: exact floats, no duplicates, interrupted writes repaired."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ofa_latency_kedro.measurement.log import (
    LATENCY_COLUMNS,
    LatencyDataError,
    LatencyLog,
    read_sidecar,
    row_key,
)
from ofa_latency_kedro.search_space import get_space


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
    with pytest.raises(ValueError, match=r"hw_ofa.csv, line 3, column 'child_arch': field 'd'"):
        LatencyLog(path).measured_keys()
