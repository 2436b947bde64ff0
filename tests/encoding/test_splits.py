"""Splits: the seed's file-order split, and the default split by canonical key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ofa_latency_kedro.encoding import leaked_subnets, load_latency_csv, split_table


@pytest.fixture(scope="module")
def compofa(shared_dir: Path):
    return load_latency_csv(
        shared_dir / "seed_data" / "latency" / "RTX_2080_Ti_GPU_fixedkernelcompofa.csv", merge=False
    )


def test_seed_split_is_file_order_70_15_15(compofa):
    table = split_table(compofa, "seed")
    assert table["split"].tolist() == ["train"] * 7000 + ["val"] * 1500 + ["test"] * 1500
    assert leaked_subnets(table) > 1000  # the seed's split leaks fixed-kernel CompOFA subnets


def test_key_split_never_puts_a_subnet_on_two_sides(compofa):
    table = split_table(compofa, "key", seed=3)
    assert leaked_subnets(table) == 0
    counts = table.drop_duplicates("canonical_key")["split"].value_counts()
    assert (counts["train"], counts["val"], counts["test"]) == (850, 182, 183)
    assert table["split"].tolist() != split_table(compofa, "key", seed=4)["split"].tolist()
    assert table["split"].tolist() == split_table(compofa, "key", seed=3)["split"].tolist()


def test_bad_split_settings(compofa):
    with pytest.raises(ValueError, match="unknown split 'random'"):
        split_table(compofa, "random")
    with pytest.raises(ValueError, match="summing to 1"):
        split_table(compofa, "key", fractions=(0.5, 0.5, 0.5))
