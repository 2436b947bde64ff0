"""Atomic saves of the catalog's tables: a failed save, or a save killed at each step of its
write (temporary file opened, written, renamed; the writer announces each step it reaches, see
`ofa_latency_kedro.pause`), leaves a whole table: the previous version, or the new one once it
has been renamed into place."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog

from ofa_latency_kedro.datasets import AtomicCSVDataset, AtomicParquetDataset
from tests.helpers import PROJECT_ROOT, PausedProcess

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
dataset.save(pd.DataFrame({"version": np.full(400_000, 1), "value": np.arange(400_000)}))
"""


def assert_whole_table(path: Path, version: int) -> None:
    table = pd.read_csv(path)
    assert len(table) == 400_000 and set(table["version"]) == {version}
    assert table["value"].iloc[-1] == 399_999


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "version_in_place", "new_version_in_temp_file"),
    [
        ("atomic_write.opened:metrics.csv", 0, False),  # temporary file created, empty
        ("atomic_write.written:metrics.csv", 0, True),  # all of it written, not yet renamed
        ("atomic_write.replaced:metrics.csv", 1, False),  # renamed over the table
    ],
)
def test_a_killed_save_never_leaves_half_a_table(
    tmp_path: Path, point: str, version_in_place: int, new_version_in_temp_file: bool
):
    path = tmp_path / "out" / "metrics.csv"
    AtomicCSVDataset(filepath=str(path), save_args={"index": False}).save(
        pd.DataFrame({"version": [0] * 400_000, "value": range(400_000)})
    )
    writer = PausedProcess([sys.executable, "-c", WRITER, str(path)], point, tmp_path / "at")
    try:
        assert writer.wait_for_pause() == point
    finally:
        writer.kill()
    assert_whole_table(path, version_in_place)
    leftovers = [p for p in path.parent.iterdir() if p != path]
    assert all(p.name.endswith(".tmp") for p in leftovers)  # a temp file at most, never loaded
    if new_version_in_temp_file:
        assert len(leftovers) == 1
        assert_whole_table(leftovers[0], 1)
    elif version_in_place == 0:
        assert [p.stat().st_size for p in leftovers] == [0]
    else:
        assert leftovers == []


def test_the_net_configs_folder_holds_the_last_results_only(tmp_path: Path):
    entry = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "catalog.yml").read_text())[
        "nas_net_configs"
    ]
    folder = tmp_path / "net_configs"
    catalog = DataCatalog.from_config({"nas_net_configs": {**entry, "path": str(folder)}})
    catalog.save("nas_net_configs", {f"gpu_{budget}ms": {"ms": budget} for budget in (10, 15, 20)})
    catalog.save("nas_net_configs", {"cpu_30ms": {"ms": 30}, "cpu_40ms": {"ms": 40}})
    assert sorted(p.name for p in folder.iterdir()) == ["cpu_30ms.json", "cpu_40ms.json"]
    assert {name: load() for name, load in catalog.load("nas_net_configs").items()} == {
        "cpu_30ms": {"ms": 30},
        "cpu_40ms": {"ms": 40},
    }
