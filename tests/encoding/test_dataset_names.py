"""A latency CSV whose name does not say its space: the one space its subnets fit, or an
error naming the file; never a NaN space."""

from __future__ import annotations

from pathlib import Path

import pytest

from ofa_latency_kedro.encoding import LatencyDataError, load_latency_csv


def copy_head(shared_dir: Path, name: str, target: Path, rows: int = 200) -> Path:
    lines = (shared_dir / "seed_data" / "latency" / name).read_text().splitlines()[: rows + 1]
    target.write_text("\n".join(lines) + "\n")
    return target


def test_a_file_named_freely_gets_the_one_space_its_subnets_fit(shared_dir: Path, tmp_path):
    path = copy_head(shared_dir, "RTX_2080_Ti_GPU_ofa.csv", tmp_path / "mydata.csv")
    table = load_latency_csv(path)
    assert set(table["space"]) == {"ofa"} and set(table["hardware"]) == {"mydata"}


def test_a_file_whose_subnets_fit_several_spaces_must_say_which(shared_dir: Path, tmp_path):
    path = copy_head(shared_dir, "Tesla_P40_GPU_fixedkernelcompofa.csv", tmp_path / "mydata.csv")
    with pytest.raises(
        LatencyDataError, match=r"mydata\.csv: the file does not say its search space"
    ):
        load_latency_csv(path)
    named = copy_head(
        shared_dir, "Tesla_P40_GPU_fixedkernelcompofa.csv", tmp_path / "p40_compofa.csv"
    )
    assert set(load_latency_csv(named)["space"]) == {"compofa"}
