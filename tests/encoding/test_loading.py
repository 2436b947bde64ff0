"""load_latency_csv: validation that names file, line and field; merging; names."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from ofa_latency_kedro.encoding import LatencyDataError, dataset_name_parts, load_latency_csv
from ofa_latency_kedro.measurement import LatencyLog
from ofa_latency_kedro.search_space import ArchBatch, get_space

HEADER = "child_arch,latency\n"


def arch_text(seed: int = 0, space: str = "ofa") -> str:
    return get_space(space).sample(1, seed=seed)[0].to_seed_string()


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(row + "\n" for row in rows))
    return path


def good_rows(n: int, space: str = "ofa") -> list[str]:
    return [f'"{arch_text(i, space)}",{10 + i / 7}' for i in range(n)]


def test_reads_a_seed_file_with_names_and_arch_columns(shared_dir: Path):
    table = load_latency_csv(shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv")
    assert len(table) == 10000
    assert set(table["hardware"]) == {"Tesla_P40_GPU"}
    assert set(table["space"]) == {"ofa"}
    assert table["line"].iloc[0] == 2
    batch = ArchBatch.from_frame(table)
    assert batch.canonical_keys()[:3] == table["canonical_key"].iloc[:3].tolist()
    assert table.attrs["report"]["rows"] == 10000


def test_repeated_subnets_are_merged_to_their_median(shared_dir: Path):
    path = shared_dir / "seed_data" / "latency" / "Intel_Xeon_CPU_fixedkernelcompofa.csv"
    raw = load_latency_csv(path, merge=False)
    merged = load_latency_csv(path)
    assert len(raw) == 10000 and len(merged) == 1215
    assert merged["repeats"].sum() == 10000
    assert set(merged["space"]) == {"compofa"}
    key = merged["canonical_key"].iloc[0]
    assert merged["latency"].iloc[0] == pytest.approx(
        raw.loc[raw["canonical_key"] == key, "latency"].median()
    )
    assert merged["canonical_key"].is_unique


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("RTX_2080_Ti_GPU_fixedkernelcompofa", ("RTX_2080_Ti_GPU", "compofa")),
        ("note10_lookuptable_elastickernelcompofa", ("note10_lookuptable", "compofa-elastic")),
        ("AMD_EPYC_CPU_compofa-elastic", ("AMD_EPYC_CPU", "compofa-elastic")),
        ("Tesla_P40_GPU_ofa", ("Tesla_P40_GPU", "ofa")),
        ("mydevice", ("mydevice", None)),
    ],
)
def test_dataset_names(stem, expected):
    assert dataset_name_parts(stem) == expected


def test_sidecar_and_columns_say_hardware_space_and_width(tmp_path: Path):
    path = write(tmp_path / "box_ofa.csv", good_rows(3))
    (tmp_path / "box_ofa.json").write_text(
        json.dumps({"hardware": "pixel", "space": "ofa", "width_mult": 1.2})
    )
    table = load_latency_csv(path)
    assert set(table["hardware"]) == {"pixel"}
    assert set(table["width_mult"]) == {1.2}
    assert table["canonical_key"].str.startswith("w1.2/").all()
    mapped = load_latency_csv(
        write(tmp_path / "other_ofa.csv", good_rows(2)), width_mult={"other": 1.2}
    )
    assert set(mapped["width_mult"]) == {1.2}


@pytest.mark.parametrize(("text", "problem"), [("{", "not valid JSON"), ("[1]", "got list")])
def test_a_broken_sidecar_is_named_as_the_sampling_log_names_it(tmp_path: Path, text, problem):
    path = write(tmp_path / "box_ofa.csv", good_rows(2))
    (tmp_path / "box_ofa.json").write_text(text)
    with pytest.raises(LatencyDataError) as info:
        load_latency_csv(path)
    assert str(info.value).startswith(f"{tmp_path / 'box_ofa.json'}: sidecar")
    assert problem in str(info.value)
    with pytest.raises(LatencyDataError) as again:
        LatencyLog(path).read_sidecar()
    assert str(again.value) == str(info.value)


def test_a_folder_is_every_csv_in_it(tmp_path: Path):
    write(tmp_path / "a_ofa.csv", good_rows(3))
    write(tmp_path / "b_compofa.csv", good_rows(2, "compofa"))
    table = load_latency_csv(tmp_path)
    assert sorted(set(table["source"])) == ["a_ofa", "b_compofa"]
    assert len(table) == 5
    (tmp_path / "empty").mkdir()
    with pytest.raises(LatencyDataError, match="holds no .csv files"):
        load_latency_csv(tmp_path / "empty")


def spelled(**changes) -> str:
    arch = get_space("ofa").sample(1, seed=0)[0].to_seed_dict()
    return str({**arch, **changes})


BAD_ROWS = {
    "code": (
        "\"__import__('os').system('touch {marker}')\",12.0",
        "field 'child_arch'",
        "neither a Python dict literal nor a JSON object",
    ),
    "one field": ('"{arch}"', None, "expected 2 fields (child_arch, latency), got 1"),
    "three fields": ('"{arch}",12.0,extra', None, "expected 2 fields"),
    "text latency": ('"{arch}",abc', "field 'latency'", "'abc' is not a number"),
    "nan latency": ('"{arch}",nan', "field 'latency'", "must be a positive, finite number"),
    "inf latency": ('"{arch}",inf', "field 'latency'", "must be a positive, finite number"),
    "negative latency": ('"{arch}",-3', "field 'latency'", "must be a positive, finite number"),
    "zero latency": ('"{arch}",0', "field 'latency'", "must be a positive, finite number"),
    "19 kernels": ('"{short}",12.0', "field 'child_arch.ks'", "must have 20 values, got 19"),
    "kernel 4": ('"{kernel4}",12.0', "field 'child_arch.ks[0]'", "has value 4"),
    "depth 5": ('"{depth5}",12.0', "field 'child_arch.d[0]'", "has value 5"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_rows_are_named_by_file_line_and_field(tmp_path: Path, case: str):
    template, field, fragment = BAD_ROWS[case]
    marker = tmp_path / "executed"
    base = get_space("ofa").sample(1, seed=0)[0].to_seed_dict()
    row = template.format(
        marker=marker,
        arch=arch_text(),
        short=spelled(ks=base["ks"][1:]),
        kernel4=spelled(ks=[4, *base["ks"][1:]]),
        depth5=spelled(d=[5, *base["d"][1:]]),
    )
    path = write(tmp_path / "box_ofa.csv", [*good_rows(2), row])
    with pytest.raises(LatencyDataError) as info:
        load_latency_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 4")
    if field:
        assert field in message
    assert fragment in message
    assert not marker.exists()


def test_skip_mode_counts_bad_rows_and_keeps_the_rest(tmp_path: Path, caplog):
    rows = good_rows(4)
    rows.insert(1, '"{}",12.0')
    rows.insert(3, f'"{arch_text(9)}",-1')
    path = write(tmp_path / "box_ofa.csv", rows)
    with caplog.at_level(logging.WARNING):
        table = load_latency_csv(path, on_bad_rows="skip")
    assert len(table) == 4
    report = table.attrs["report"]
    assert report["rows_skipped"] == 2 and report["rows_read"] == 6
    assert "line 3" in report["files"][0]["skipped"][0]
    assert "line 5" in report["files"][0]["skipped"][1]
    assert "skipped 2 of 6 rows" in caplog.text


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "the file is empty"),
        (b"child_arch,latency,latency\n", "column 'latency' appears twice in the header"),
        (b"arch,ms\n", "the header lacks column(s) child_arch, latency"),
        (b"child_arch,latency\n", "no usable rows"),
        (b"\xff\xfechild_arch,latency\n", "line 1: not UTF-8 text"),
    ],
)
def test_broken_files_are_named(tmp_path: Path, content: bytes, fragment: str):
    path = tmp_path / "box_ofa.csv"
    path.write_bytes(content)
    with pytest.raises(LatencyDataError) as info:
        load_latency_csv(path)
    assert str(info.value).startswith(str(path))
    assert fragment in str(info.value)


def test_undecodable_and_overlong_lines_are_named_without_reading_them_whole(tmp_path: Path):
    path = tmp_path / "box_ofa.csv"
    rows = good_rows(2)
    path.write_bytes(
        (HEADER + rows[0] + "\n").encode()
        + b'"\xe9\xe9",1.0\n'
        + b"x" * (3 << 20)
        + b"\n"
        + (rows[1] + "\n").encode("utf-16")
    )
    with pytest.raises(LatencyDataError, match=r"line 3: not UTF-8 text \(byte 0xe9"):
        load_latency_csv(path)
    table = load_latency_csv(path, on_bad_rows="skip")
    skipped = table.attrs["report"]["files"][0]["skipped"]
    assert len(table) == 1
    assert any("line 4: line is longer than 1,048,576 bytes" in s for s in skipped)


def test_optional_columns_are_checked_when_present(tmp_path: Path):
    header = "child_arch,latency,runs,batch_size,latency_p10\n"
    path = write(tmp_path / "box_ofa.csv", [f'"{arch_text()}",10.0,2.5,1,9.0'], header)
    with pytest.raises(LatencyDataError, match="line 2, field 'runs': '2.5' is not a whole number"):
        load_latency_csv(path)
    write(path, [f'"{arch_text()}",10.0,30,1,'], header)
    table = load_latency_csv(path)
    assert np.isnan(table["latency_p10"].iloc[0]) and table["runs"].iloc[0] == 30


def test_rows_outside_the_named_space_are_refused(tmp_path: Path):
    path = write(tmp_path / "box_compofa.csv", good_rows(1, "ofa"))
    with pytest.raises(
        LatencyDataError, match=r"field 'child_arch\.(ks|e)\[\d+\]'.*space 'compofa'"
    ):
        load_latency_csv(path)


@pytest.mark.parametrize("cut", ["10.9", '"{arch', ""])
def test_a_row_counts_only_when_its_line_ended(tmp_path: Path, caplog, cut: str):
    """A last line without its newline is a write cut short (``10.9`` of
    ``10.937666893005371``): dropped with a warning, never read as a row."""
    rows = good_rows(3)
    last = f'"{arch_text(7)}",' if cut == "10.9" else ""
    path = tmp_path / "box_ofa.csv"
    path.write_text(HEADER + "".join(row + "\n" for row in rows) + last + cut)
    with caplog.at_level(logging.WARNING):
        table = load_latency_csv(path, merge=False)
    assert len(table) == 3
    assert table.attrs["report"]["rows_read"] == 3
    assert 10.9 not in table["latency"].tolist()
    if cut:
        assert f"{path}, line 5: dropped an incomplete last line" in caplog.text
    else:
        assert "incomplete" not in caplog.text
