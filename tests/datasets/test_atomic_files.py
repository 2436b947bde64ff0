"""Atomic saves of the catalog's tables: a failed or killed save leaves the previous version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ofa_latency_kedro.datasets import AtomicCSVDataset, AtomicParquetDataset
from tests.conftest import PROJECT_ROOT

FRAME = pd.DataFrame({"child_arch": ["a", "b", "c"], "latency": [1.5, 2.5, 3.5]})


@pytest.mark.parametrize(
    ("dataset_type", "name"),
    [(AtomicCSVDataset, "table.csv"), (AtomicParquetDataset, "table.parquet")],
)
def test_round_trip_and_a_failed_save_keeps_the_previous_version(
    tmp_path: Path, dataset_type, name: str, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "out" / name
    dataset = dataset_type(filepath=str(path), save_args={"index": False})
    dataset.save(FRAME)
    pd.testing.assert_frame_equal(dataset.load(), FRAME)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv" if name.endswith("csv") else "to_parquet", broken)
    with pytest.raises(Exception, match="disk full"):
        dataset.save(FRAME.assign(latency=0.0))
    monkeypatch.undo()
    pd.testing.assert_frame_equal(dataset.load(), FRAME)
    assert sorted(p.name for p in path.parent.iterdir()) == [name]  # no temporary file left


def test_every_table_and_json_of_the_catalog_is_saved_atomically():
    catalog = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "catalog.yml").read_text())
    kinds = {name: entry["type"] for name, entry in catalog.items()}
    kinds |= {
        f"{name}[partition]": entry["dataset"]["type"]
        for name, entry in catalog.items()
        if isinstance(entry.get("dataset"), dict)
    }
    plain = {name: kind for name, kind in kinds.items() if kind.startswith(("pandas.", "json."))}
    assert plain == {}, f"non-atomic tables in the catalog: {plain}"


WRITER = """
import sys
import numpy as np, pandas as pd
from ofa_latency_kedro.datasets import AtomicCSVDataset
dataset = AtomicCSVDataset(filepath=sys.argv[1], save_args={"index": False})
rows = 400_000
version = 0
print("ready", flush=True)
while True:
    version += 1
    dataset.save(pd.DataFrame({"version": np.full(rows, version), "value": np.arange(rows)}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.4, 1.1, 2.3])
def test_a_killed_save_never_leaves_half_a_table(tmp_path: Path, delay: float):
    path = tmp_path / "metrics.csv"
    AtomicCSVDataset(filepath=str(path), save_args={"index": False}).save(
        pd.DataFrame({"version": [0] * 400_000, "value": range(400_000)})
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    table = pd.read_csv(path)
    assert len(table) == 400_000 and table["version"].nunique() == 1
    assert table["value"].iloc[-1] == 399_999
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "metrics.csv"]
    assert all(name.endswith(".tmp") for name in leftovers)  # a temp file at most, never loaded
