"""The latency folder of the catalog: datasets by name, their rejected lines not among them,
and a whole run's writes under the dataset's writer lock."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ofa_latency_kedro.datasets import LatencyFolderDataset
from ofa_latency_kedro.measurement.log import DamagedRowsError, LatencyLog, lock_path
from tests.measurement.test_log import merged, rows


def test_rejected_lines_are_kept_beside_a_dataset_but_are_not_one(tmp_path: Path):
    path = tmp_path / "hw_ofa.csv"
    LatencyLog(path).append(rows(10))
    merged(path)
    dataset = LatencyFolderDataset(str(tmp_path))
    folder = dataset.load()
    with pytest.raises(DamagedRowsError, match=r"hw_ofa.csv, line 3: damaged row"):
        folder["hw_ofa"]()
    assert len(folder["hw_ofa"](on_damaged="reject")) == 6
    assert (tmp_path / "hw_ofa.rejected.csv").is_file()
    assert list(dataset.load()) == ["hw_ofa"]


def test_a_run_holds_the_lock_from_reading_to_its_last_write(tmp_path: Path):
    dataset = LatencyFolderDataset(str(tmp_path / "latency"))
    folder = dataset.load()
    with folder.writing("hw_ofa") as file:
        assert file.path == tmp_path / "latency" / "hw_ofa.csv"
        assert lock_path(file.path).is_file()
        dataset.save({"hw_ofa.csv": pd.DataFrame(rows(3))})
        dataset.save({"hw_ofa.json": {"sessions": []}})
        assert len(file()) == 3
    assert not lock_path(file.path).exists()
    assert list(dataset.load()) == ["hw_ofa"]
