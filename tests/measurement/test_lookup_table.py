"""OFA lookup tables: the `lut` backend reproduces the seed's Note10 datasets exactly."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from ofa_latency_kedro.measurement import LatencyLookupTable, LookupTableError, measure
from ofa_latency_kedro.measurement.lookup_table import layer_keys
from ofa_latency_kedro.search_space import Arch, get_space

NOTE10_FILES = [
    "note10_lookuptable_ofa.csv",
    "note10_lookuptable_fixedkernelcompofa.csv",
    "note10_lookuptable_elastickernelcompofa.csv",
]


@pytest.fixture(scope="module")
def note10_dir(shared_dir: Path) -> Path:
    return shared_dir / "seed_data" / "latency_table@note10"


@pytest.fixture(scope="module")
def note10(note10_dir: Path) -> LatencyLookupTable:
    return LatencyLookupTable.from_dir(note10_dir)


def test_tables_describe_the_width_1_2_network(note10: LatencyLookupTable):
    assert note10.width_mult == 1.2
    assert note10.device == "note10"
    assert note10.resolutions == tuple(range(160, 225, 4))
    described = note10.describe()
    assert described["entries"] == sum(len(t) for t in note10.tables.values())
    assert described["device_time_s"] == pytest.approx(note10.device_time_ms() / 1000)
    assert described["device_time_s"] > 0


@pytest.mark.parametrize("filename", NOTE10_FILES)
def test_every_seed_note10_latency_is_reproduced_exactly(
    shared_dir: Path, note10_dir: Path, filename: str
):
    with open(shared_dir / "seed_data" / "latency" / filename, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10000
    frame = measure([row["child_arch"] for row in rows], backend="lut", lut_dir=note10_dir)
    expected = [float(row["latency"]) for row in rows]
    mismatches = [
        (i, got, want)
        for i, (got, want) in enumerate(zip(frame["latency"], expected, strict=True))
        if got != want
    ]
    assert mismatches == []
    assert set(frame["width_mult"]) == {1.2}
    assert set(frame["hardware"]) == {"note10_lookuptable"}
    assert frame.attrs["repeat_probe"]["within_run"]["median_rel_diff"] == 0.0


def test_layer_keys_follow_ofa_order():
    arch = Arch.parse({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": [160]}, width_mult=1.2)
    keys = layer_keys(arch)
    assert keys[0] == "Conv-input:160x160x3-output:80x80x24"
    assert keys[1] == (
        "expanded_conv-input:80x80x24-output:80x80x24-expand:24-kernel:3-stride:1-idskip:1-se:0-hs:0"
    )
    assert keys[2].startswith(
        "expanded_conv-input:80x80x24-output:40x40x32-expand:72-kernel:3-stride:2"
    )
    assert keys[-4:] == [
        "Conv_1-input:5x5x192-output:5x5x1152",
        "AvgPool2D-input:5x5x1152-output:1x1x1152",
        "Conv_2-input:1x1x1152-output:1x1x1536",
        "Logits-input:1x1x1536-output:1000",
    ]
    assert len(keys) == 1 + 1 + 10 + 4


def test_missing_resolution_and_entry_are_named(tmp_path: Path, note10_dir: Path):
    folder = tmp_path / "latency_table@partial"
    folder.mkdir()
    shutil.copy(note10_dir / "160_lookup_table.yaml", folder)
    table = LatencyLookupTable.from_dir(folder)
    arch = get_space("ofa", width_mult=1.2).sample(1, seed=0)[0].replace(r=224)
    with pytest.raises(LookupTableError, match="no table for resolution 224"):
        table.latency(arch)
    lines = (folder / "160_lookup_table.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Logits"))
    (folder / "160_lookup_table.yaml").write_text("\n".join(lines[:start] + lines[start + 4 :]))
    with pytest.raises(LookupTableError, match="has no entry 'Logits-input:1x1x1536-output:1000'"):
        LatencyLookupTable.from_dir(folder).latency(arch.replace(r=160))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("- a\n- b\n", "must map layer keys"),
        ("Conv-input:160x160x3-output:80x80x24:\n  count: 3\n", "has no 'mean'"),
        ("Conv-input:160x160x3-output:80x80x24:\n  mean: -1\n", "not a latency"),
        ("key: [unclosed\n", "is not valid YAML"),
        ("!!python/object/apply:os.system ['echo hacked']\n", "is not valid YAML"),
    ],
)
def test_malformed_tables_are_refused(tmp_path: Path, content: str, fragment: str):
    (tmp_path / "160_lookup_table.yaml").write_text(content)
    with pytest.raises(LookupTableError, match=fragment):
        LatencyLookupTable.from_dir(tmp_path)


def test_a_folder_without_tables_is_refused(tmp_path: Path):
    with pytest.raises(LookupTableError, match="holds no"):
        LatencyLookupTable.from_dir(tmp_path)
    with pytest.raises(LookupTableError, match="does not exist"):
        LatencyLookupTable.from_dir(tmp_path / "missing")
