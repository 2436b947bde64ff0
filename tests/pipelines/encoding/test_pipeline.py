"""The encoding pipeline with an in-memory catalog around a real latency folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from ofa_latency_kedro.datasets import AtomicParquetDataset, LatencyFolderDataset
from ofa_latency_kedro.encoding import LatencyDataError
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.pipelines.encoding import create_pipeline
from tests.helpers import PROJECT_ROOT
from tests.pipelines.runner import project_catalog

ENCODING = {
    "datasets": "all",
    "on_bad_rows": "raise",
    "merge_repeats": True,
    "split": "key",
    "seed": 0,
}


@pytest.fixture
def latency_folder(tmp_path: Path, shared_dir: Path) -> Path:
    for name in (
        "note10_lookuptable_fixedkernelcompofa.csv",
        "Intel_Xeon_CPU_fixedkernelcompofa.csv",
    ):
        shutil.copy(shared_dir / "seed_data" / "latency" / name, tmp_path)
    return tmp_path


def run(folder: Path, encoding: dict, hardware: dict | None = None) -> DataCatalog:
    if hardware is None:
        hardware = yaml.safe_load((PROJECT_ROOT / "conf/base/hardware.yml").read_text())["hardware"]
    catalog = project_catalog(
        {
            "raw_latency": LatencyFolderDataset(str(folder)),
            "params:encoding": MemoryDataset(encoding),
            "params:hardware": MemoryDataset(hardware),
            # a file, as in the project's catalog: the report node reads it after the split
            "latency_model_input": AtomicParquetDataset(
                filepath=str(folder / "latency_model_input.parquet")
            ),
            "encoding_report": MemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


def test_every_csv_is_validated_merged_and_split_without_leakage(latency_folder: Path):
    catalog = run(latency_folder, ENCODING)
    table = catalog.load("latency_model_input")
    report = catalog.load("encoding_report")
    assert len(table) == 2 * 1215
    assert report["rows_before_merge"] == 20000
    assert report["leaked_subnets"] == 0
    assert {d["hardware"] for d in report["datasets"]} == {"note10_lookuptable", "Intel_Xeon_CPU"}
    assert report["hardware"]["Intel_Xeon_CPU"]["kind"] == "cpu"
    assert report["hardware"]["Intel_Xeon_CPU"]["cores"] is None  # unknown, never 0
    assert report["hardware"]["note10_lookuptable"]["width_mult"] == 1.2
    note10 = table[table["hardware"] == "note10_lookuptable"]
    assert set(note10["width_mult"]) == {1.2}  # from the hardware registry


def test_the_seed_split_can_be_asked_for(latency_folder: Path):
    report = run(latency_folder, {**ENCODING, "merge_repeats": False, "split": "seed"}).load(
        "encoding_report"
    )
    assert report["leaked_subnets"] > 1000


def test_unknown_datasets_and_an_empty_folder_are_named(tmp_path: Path, latency_folder: Path):
    with pytest.raises(ParameterError, match="'encoding.datasets' names nope_ofa, which") as info:
        run(latency_folder, {**ENCODING, "datasets": ["nope_ofa"]})
    assert str(latency_folder) in str(info.value)
    empty = tmp_path / "empty"
    with pytest.raises(LatencyDataError, match=re.escape(f"no latency datasets in {empty}: run")):
        run(empty, ENCODING)


def test_chosen_datasets_are_the_only_ones_read(latency_folder: Path):
    report = run(latency_folder, {"datasets": "Intel_Xeon_CPU_fixedkernelcompofa"}).load(
        "encoding_report"
    )
    assert [d["hardware"] for d in report["datasets"]] == ["Intel_Xeon_CPU"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"on_bad_rows": "ignore"}, "'encoding.on_bad_rows' must be one of 'raise', 'skip'"),
        ({"split": "random"}, "'encoding.split' must be one of 'seed', 'key'"),
        ({"fractions": [0.5, 0.5]}, "'encoding.fractions' must be three non-negative numbers"),
        ({"fractions": [0.7, 0.2, 0.2]}, "summing to 1, got [0.7, 0.2, 0.2]"),
        ({"sed": 1}, "unknown parameter 'encoding.sed'; did you mean 'seed'?"),
        ({"datasets": []}, "'encoding.datasets' names no dataset"),
    ],
)
def test_bad_parameters_are_named(latency_folder: Path, changes, message):
    with pytest.raises(ParameterError) as info:
        run(latency_folder, {**ENCODING, **changes})
    assert message in str(info.value)


def test_a_bad_hardware_entry_is_named_by_its_parameter(latency_folder: Path):
    with pytest.raises(ParameterError, match="'hardware.box' has kind 'tpu'"):
        run(latency_folder, ENCODING, hardware={"box": {"kind": "tpu"}})
