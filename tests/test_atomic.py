"""Atomic writes leave either the old file or the new one, never a mix or a stray temp file
(the next save removes those of killed saves); JSON is strict; a lock has one holder."""

import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from ofa_latency_kedro.atomic import (
    ExclusiveLock,
    LockHolder,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
)
from ofa_latency_kedro.datasets import AtomicJSONDataset
from tests.helpers import PausedProcess


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


def test_json_is_strict_nan_and_infinities_become_null(tmp_path: Path):
    target = tmp_path / "report.json"
    data = {
        "mape": float("nan"),
        "max": float("inf"),
        "per_budget": [np.float32("-inf"), np.float64(1.5), np.int64(3), np.bool_(True)],
        "curve": np.array([1.0, np.nan]),
        "nested": {"ok": (0.25, float("nan"))},
    }
    atomic_write_json(target, data)
    text = target.read_text()
    assert "NaN" not in text and "Infinity" not in text
    strict = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    assert strict == {
        "mape": None,
        "max": None,
        "per_budget": [None, 1.5, 3, True],
        "curve": [1.0, None],
        "nested": {"ok": [0.25, None]},
    }
    AtomicJSONDataset(filepath=str(target)).save({"spearman": np.float64("nan")})
    assert target.read_text() == '{\n  "spearman": null\n}\n'


KILLED_SAVE = """
import sys
from ofa_latency_kedro.atomic import atomic_write_text
atomic_write_text(sys.argv[1], "new")
"""


def killed_save(target: Path, point: str, marker: Path) -> PausedProcess:
    """A process saving ``target`` that stops at ``point`` (and waits there)."""
    save = PausedProcess([sys.executable, "-c", KILLED_SAVE, str(target)], point, marker)
    save.wait_for_pause()
    return save


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_the_next_save_removes_the_temporary_files_of_killed_saves(tmp_path: Path):
    target = tmp_path / "out" / "report.json"
    atomic_write_text(target, "old")
    killed_save(target, "atomic_write.opened:report.json", tmp_path / "paused").kill()
    first = temporaries(target.parent)
    assert len(first) == 1
    atomic_write_text(tmp_path / "out" / "other.json", "x")  # another file's save: kept
    assert temporaries(target.parent) == first
    killed_save(target, "atomic_write.written:report.json", tmp_path / "paused").kill()
    second = temporaries(target.parent)
    assert len(second) == 1 and second != first  # the second save removed the first's
    atomic_write_text(target, "newer")
    assert temporaries(target.parent) == []
    assert target.read_text() == "newer"


def test_a_save_under_way_in_another_process_keeps_its_temporary_file(tmp_path: Path):
    target = tmp_path / "report.json"
    save = killed_save(target, "atomic_write.written:report.json", tmp_path / "paused")
    try:
        live = temporaries(tmp_path)
        assert len(live) == 1
        atomic_write_text(target, "mine")
        assert temporaries(tmp_path) == live
        assert (tmp_path / live[0]).read_text() == "new"
    finally:
        save.kill()
    atomic_write_text(target, "mine again")
    assert temporaries(tmp_path) == []


def test_a_lock_says_who_holds_it_and_goes_with_its_holder(tmp_path: Path):
    path = tmp_path / "x.lock"
    first, second = ExclusiveLock(path), ExclusiveLock(path)
    assert first.try_acquire() is None
    holder = second.try_acquire()
    assert (holder.pid, holder.host) == (os.getpid(), socket.gethostname())
    assert holder.describe().startswith(f"pid {os.getpid()} on {socket.gethostname()} since 20")
    assert not second.held
    first.release()
    assert not path.exists()
    assert second.try_acquire() is None
    second.release()
    assert LockHolder().describe() == "another process (it has not written its pid yet)"
