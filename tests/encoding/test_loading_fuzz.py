"""Hostile and broken input, generated: whatever a latency CSV holds, loading ends in a table
or in a `LatencyDataError` naming file and line (a counted skip with ``on_bad_rows: skip``),
never in code execution, a hang or a crash deep in numpy or torch.

``make test`` runs these with the ``ci`` hypothesis profile (60 examples each);
``HYPOTHESIS_PROFILE=long make test`` with 2,000.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ofa_latency_kedro.encoding import LatencyDataError, load_latency_csv
from ofa_latency_kedro.encoding.encoders import Encoder
from ofa_latency_kedro.search_space import Arch, ArchBatch, ArchError
from tests.search_space.strategies import raw_archs

HEADER = "child_arch,latency\n"
MARKER_NAME = "executed"


def _text(arch: Arch) -> str:
    return arch.to_seed_string()


OUT_OF_SPACE = {
    "ks": [0, 1, 2, 4, 9, -3],
    "e": [0, 1, 2, 5, 8],
    "d": [0, 1, 5, 7],
    "r": [0, 100, 4096],
}
BAD_LATENCIES = ["nan", "inf", "-inf", "-1", "0", "0.0", "abc", "", "1e999"]


@st.composite
def bad_rows(draw: st.DrawFn, arch: Arch, marker: Path) -> str:
    """One row that must be refused, in one of the ways files from elsewhere break."""
    seed, text = arch.to_seed_dict(), _text(arch)

    def code() -> str:
        payload = draw(
            st.sampled_from(
                [
                    f"__import__('os').system('touch {marker}')",
                    f"{{'ks': __import__('os').system('touch {marker}')}}",
                    f"(lambda: open('{marker}', 'w'))()",
                ]
            )
        )
        return f'"{payload}",12.0'

    def truncated() -> str:
        row = f'"{text}",12.5'
        return row[: draw(st.integers(min_value=1, max_value=len(row) - 6))]

    def wrong_length() -> str:
        field = draw(st.sampled_from(["ks", "e", "d"]))
        values = seed[field]
        changed = draw(st.sampled_from([values[:-1], [*values, values[0]], []]))
        return f'"{ {**seed, field: changed} }",12.0'

    def out_of_space() -> str:
        field = draw(st.sampled_from(sorted(OUT_OF_SPACE)))
        values = list(seed[field])
        values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from(OUT_OF_SPACE[field]))
        return f'"{ {**seed, field: values} }",12.0'

    def bad_latency() -> str:
        return f'"{text}",{draw(st.sampled_from(BAD_LATENCIES))}'

    def wrong_fields() -> str:
        return draw(st.sampled_from([f'"{text}"', f'"{text}",12.0,extra']))

    def garbage() -> str:
        line = st.text(alphabet=st.characters(blacklist_characters="\r\n"), min_size=1)
        return draw(line.filter(lambda value: value.strip()))

    kinds = [code, truncated, wrong_length, out_of_space, bad_latency, wrong_fields, garbage]
    return draw(st.sampled_from(kinds))()


@st.composite
def csv_files(draw: st.DrawFn, marker: Path) -> tuple[list[str], list[bool]]:
    """Rows of distinct subnets, each good or broken; returns the rows and which are good."""
    archs = draw(
        st.lists(raw_archs(), min_size=1, max_size=12, unique_by=lambda a: a.canonical_key)
    )
    rows, good = [], []
    for index, arch in enumerate(archs):
        if draw(st.booleans()):
            rows.append(f'"{_text(arch)}",{10 + index}')
            good.append(True)
        else:
            rows.append(draw(bad_rows(arch, marker)))
            good.append(False)
    return rows, good


@given(st.data())
def test_any_mix_of_good_and_broken_rows_is_loaded_or_named(data):
    with tempfile.TemporaryDirectory() as folder:
        marker = Path(folder) / MARKER_NAME
        rows, good = data.draw(csv_files(marker))
        path = Path(folder) / "box_ofa.csv"
        path.write_text(HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")
        try:
            table = load_latency_csv(path, on_bad_rows="skip", merge=False)
        except LatencyDataError as error:  # nothing usable: said so, naming the file
            assert str(error).startswith(str(path))
            assert not any(good)
        else:
            report = table.attrs["report"]
            assert report["rows_read"] == len(rows)
            assert len(table) + report["rows_skipped"] == len(rows)
            assert len(table) >= sum(good)  # no good row lost
            expected_keys = {
                Arch.parse(row.rsplit(",", 1)[0].strip('"')).canonical_key
                for row, ok in zip(rows, good, strict=True)
                if ok
            }
            assert expected_keys <= set(table["canonical_key"])
            assert np.isfinite(table["latency"]).all() and (table["latency"] > 0).all()
        if not all(good):
            first_bad = good.index(False) + 2  # the header is line 1
            with pytest.raises(LatencyDataError) as info:
                load_latency_csv(path, merge=False)
            assert re.match(rf"{re.escape(str(path))}, line {first_bad}\D", str(info.value))
        assert not marker.exists()


@given(st.binary(max_size=400))
def test_arbitrary_bytes_end_in_a_table_or_a_named_error(content: bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "box_ofa.csv"
        path.write_bytes(HEADER.encode() + content)
        for mode in ("raise", "skip"):
            try:
                load_latency_csv(path, on_bad_rows=mode)
            except LatencyDataError as error:
                assert str(error).startswith(str(path))


@given(st.text(max_size=300))
def test_arch_parser_refuses_any_text_with_an_arch_error(text: str):
    try:
        arch = Arch.parse(text)
    except ArchError:
        return
    assert Arch.parse(arch.to_seed_string()) == arch


@given(
    st.lists(raw_archs(), min_size=1, max_size=8),
    st.sampled_from(["seed128", "analytic", "joint", "analytic+seed128"]),
)
def test_every_encoder_gives_finite_features_of_its_width(archs, name):
    encoder = Encoder(name)
    features = encoder.encode(ArchBatch.from_archs(archs))
    assert features.shape == (len(archs), encoder.dimension())
    assert np.isfinite(features).all()


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [("ks", 4, "ks"), ("e", 5, "e"), ("d", 7, "d"), ("r", 4096, "r")],
)
def test_out_of_space_values_never_reach_an_encoder(field: str, value: int, fragment: str):
    seed = {"ks": [3] * 20, "e": [4] * 20, "d": [2] * 5, "r": [224]}
    seed[field] = [value] * len(seed[field])
    with pytest.raises(ArchError, match=fragment):
        ArchBatch.from_archs([seed])


GIANT_LINE = """
import json, resource, sys
from ofa_latency_kedro.encoding import load_latency_csv
table = load_latency_csv(sys.argv[1], on_bad_rows="skip")
print(json.dumps({
    "rows": len(table),
    "skipped": table.attrs["report"]["files"][0]["skipped"],
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def _load_in_child(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", GIANT_LINE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.slow
def test_a_one_gigabyte_line_is_skipped_in_bounded_memory(tmp_path: Path):
    archs = [Arch(ks=[k] * 20, e=[4] * 20, d=[3] * 5, r=224) for k in (3, 5)]
    good = [f'"{_text(arch)}",{10 + i}' for i, arch in enumerate(archs)]
    small = tmp_path / "small_ofa.csv"
    small.write_text(HEADER + good[0] + "\n" + "x" * 100 + "\n" + good[1] + "\n")
    giant = tmp_path / "giant_ofa.csv"
    with giant.open("wb") as handle:  # a sparse file: 1 GiB of NUL bytes on one line
        handle.write((HEADER + good[0] + "\n").encode())
        handle.seek(handle.tell() + (1 << 30))
        handle.write(("\n" + good[1] + "\n").encode())
    baseline, result = _load_in_child(small), _load_in_child(giant)
    assert result["rows"] == 2
    assert len(result["skipped"]) == 1 and "line 3: line is longer than" in result["skipped"][0]
    # the line is streamed past in 1 MiB pieces, never held
    assert result["max_rss_mb"] - baseline["max_rss_mb"] < 64
