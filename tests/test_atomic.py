"""Atomic writes leave either the old file or the new one, never a mix or a stray temp file."""

from pathlib import Path

import pytest

from ofa_latency_kedro.atomic import atomic_write, atomic_write_json, atomic_write_text


def test_writes_replace_the_whole_file(tmp_path: Path):
    target = tmp_path / "sub" / "report.json"
    atomic_write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temp_file(tmp_path: Path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")

    def broken(handle):
        handle.write(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_files_get_the_mode_a_plain_open_would_give(tmp_path: Path):
    fresh = atomic_write_text(tmp_path / "fresh.txt", "x")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert fresh.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    plain.chmod(0o640)
    atomic_write_text(plain, "y")
    assert plain.stat().st_mode & 0o777 == 0o640  # an existing file keeps its mode
