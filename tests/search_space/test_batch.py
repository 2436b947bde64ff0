"""ArchBatch: a whole list read at once exactly as `Arch.parse` reads each item, and genes held
in compact integer types that never change a computed value."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ofa_latency_kedro.search_space import Arch, ArchBatch, ArchError, cost_table, get_space
from ofa_latency_kedro.search_space.batch import GENE_DTYPES
from ofa_latency_kedro.search_space.network import block_cost_table
from tests.search_space.strategies import (
    BAD_ITEMS,
    SPELLINGS,
    as_int64,
    batches,
    raw_archs,
    seeds,
    spaces,
    spellings,
)

requested_widths = st.sampled_from([None, 1.0, 1.2])


def outcome(read, items, width_mult=None):
    """What reading ``items`` gives: ("ok", archs) or ("error", type, message, field, value,
    item) for the error raised."""
    try:
        return ("ok", read(items, width_mult))
    except Exception as error:  # any exception: it must be the same one
        return (
            "error",
            type(error),
            str(error),
            getattr(error, "field", None),
            repr(getattr(error, "value", None)),
            getattr(error, "item", None),
        )


def per_item(items, width_mult):
    """The reference: `Arch.parse` of every item in turn, naming the position of the first
    it refuses."""
    archs = []
    for position, item in enumerate(items):
        try:
            archs.append(Arch.parse(item, width_mult=width_mult))
        except ArchError as error:
            error.item = position
            raise
    return archs


def at_once(items, width_mult):
    batch = ArchBatch.from_archs(items, width_mult=width_mult)
    assert_compact(batch)
    return batch.to_archs()


def assert_compact(batch: ArchBatch) -> None:
    for name, dtype in GENE_DTYPES.items():
        assert getattr(batch, name).dtype == dtype, name
    assert batch.width_mult.dtype == np.float64


# -- reading lists ---------------------------------------------------------------------------
@given(st.lists(spellings(), max_size=30), requested_widths)
def test_reading_a_list_at_once_equals_parsing_each_item(items, width_mult):
    assert outcome(at_once, items, width_mult) == outcome(per_item, items, width_mult)


@pytest.mark.parametrize("form", sorted(SPELLINGS))
@given(st.lists(raw_archs(), min_size=1, max_size=20), requested_widths)
def test_every_spelling_is_read_as_arch_parse_reads_it(form, archs, width_mult):
    items = [SPELLINGS[form](arch) for arch in archs]
    assert outcome(at_once, items, width_mult) == outcome(per_item, items, width_mult)


@given(
    st.lists(spellings(), max_size=20),
    st.lists(st.sampled_from(sorted(BAD_ITEMS)), min_size=1, max_size=3),
    st.data(),
    requested_widths,
)
def test_bad_items_give_the_error_arch_parse_gives_for_the_first(items, bad, data, width_mult):
    for name in bad:
        items.insert(data.draw(st.integers(0, len(items))), BAD_ITEMS[name])
    expected = outcome(per_item, items, width_mult)
    assert expected[0] == "error"
    assert outcome(at_once, items, width_mult) == expected


@pytest.mark.filterwarnings("error::RuntimeWarning")  # e.g. NumPy overflow while reading
@pytest.mark.parametrize("name", sorted(BAD_ITEMS))
@pytest.mark.parametrize("form", ["seed dict", "seed string", "arch"])
def test_each_bad_item_is_refused_in_words_of_arch_parse_naming_its_position(name, form):
    good = [SPELLINGS[form](arch) for arch in get_space("ofa").sample(5, seed=0)]
    items = [*good[:3], BAD_ITEMS[name], *good[3:]]
    with pytest.raises(ArchError) as alone:
        Arch.parse(BAD_ITEMS[name])
    assert alone.value.item is None
    with pytest.raises(ArchError) as in_list:
        ArchBatch.from_archs(items)
    assert str(in_list.value) == str(alone.value)
    assert in_list.value.field == alone.value.field
    assert repr(in_list.value.value) == repr(alone.value.value)
    assert in_list.value.item == 3


def test_a_width_that_conflicts_or_is_invalid_is_refused_as_arch_parse_refuses_it():
    arch = get_space("ofa", width_mult=1.2).sample(1, seed=0)[0]
    for items, width in (
        ([arch.to_seed_string(), arch], 1.0),
        ([arch.to_seed_dict(), arch.to_dict()], 1.0),
        ([arch.to_seed_string()], 1.1),
        ([arch], 1.1),
        ([arch.to_dict()], True),
    ):
        expected = outcome(per_item, items, width)
        assert expected[0] == "error"
        assert outcome(at_once, items, width) == expected
    assert len(ArchBatch.from_archs([], width_mult=1.1)) == 0


def test_the_seed_file_is_read_as_arch_parse_reads_it_as_text_and_as_dicts(shared_dir: Path):
    path = shared_dir / "seed_data" / "latency" / "RTX_2080_Ti_GPU_ofa.csv"
    with open(path, newline="") as handle:
        texts = [row["child_arch"] for row in csv.DictReader(handle)]
    archs = [Arch.parse(text) for text in texts]
    dicts = [arch.to_seed_dict() for arch in archs]
    assert ArchBatch.from_archs(texts).to_archs() == archs
    assert ArchBatch.from_archs(dicts).to_archs() == archs
    wide = [arch.replace(width_mult=1.2) for arch in archs]
    assert ArchBatch.from_archs(texts, width_mult=1.2).to_archs() == wide
    assert ArchBatch.from_archs(iter(dicts), width_mult=1.2).to_archs() == wide
    assert ArchBatch.from_archs(pd.Series(texts)).to_archs() == archs


def test_mixed_lists_keep_their_order():
    archs = get_space("compofa-elastic", resolutions="ofa").sample(12, seed=4)
    forms = sorted(SPELLINGS)
    items = [SPELLINGS[forms[i % len(forms)]](arch) for i, arch in enumerate(archs)]
    assert ArchBatch.from_archs(items).to_archs() == archs


# -- compact genes ---------------------------------------------------------------------------
@given(spaces(), seeds)
def test_genes_stay_compact_through_every_operation(space, seed):
    batch = space.sample_batch(30, seed)
    other = space.sample_batch(30, seed + 1)
    for result in (
        batch,
        ArchBatch.from_archs(batch.to_archs()),
        ArchBatch.concatenate([batch, other]),
        batch[3],
        batch[2:9],
        batch[batch.r > 160],
        batch[np.arange(5)],
        batch.at_width(1.2),
        ArchBatch.from_frame(batch.to_frame()),
        space.mutate_batch(batch, 0.5, seed),
        space.crossover_batch(batch, other, seed),
        space.sample_distinct_batch(5, seed),
    ):
        assert_compact(result)


def test_enumeration_is_compact():
    assert_compact(get_space("compofa").enumerate())


def test_a_million_subnets_fit_in_64_mb():
    batch = get_space("ofa").sample_batch(1000, seed=0)
    per_subnet = sum(getattr(batch, name).nbytes for name in (*GENE_DTYPES, "width_mult")) / 1000
    assert per_subnet == 20 + 20 + 5 + 2 + 8
    assert per_subnet * 1_000_000 <= 64 * 2**20


def test_the_constructor_compacts_what_it_is_given():
    wide = as_int64(get_space("ofa").sample_batch(10, seed=0))
    batch = ArchBatch(wide.ks, wide.e, wide.d, wide.r, wide.width_mult)
    assert_compact(batch)
    assert batch.to_archs() == wide.to_archs()
    from_lists = ArchBatch(
        wide.ks.tolist(), wide.e.tolist(), wide.d.tolist(), wide.r.tolist(), [1.0] * 10
    )
    assert_compact(from_lists)
    assert from_lists.to_archs() == wide.to_archs()
    floats = ArchBatch(wide.ks * 1.0, wide.e, wide.d, wide.r * 1.0, wide.width_mult)
    assert floats.to_archs() == wide.to_archs()


@pytest.mark.parametrize(
    ("name", "values", "fragment"),
    [
        ("ks", np.full((1, 20), 259), "holds 259"),
        ("e", np.full((1, 20), -129), "holds -129"),
        ("r", np.array([176 + 65536]), "holds 65712"),
        ("r", np.array([np.nan]), "holds nan"),
        ("d", np.full((1, 5), 2.5), "holds 2.5"),
        ("ks", np.full((1, 20), "3"), "must hold integers"),
    ],
)
def test_the_constructor_refuses_values_its_types_cannot_hold(name, values, fragment):
    genes = {"ks": np.full((1, 20), 3), "e": np.full((1, 20), 3), "d": np.full((1, 5), 2)}
    genes |= {"r": np.array([176]), "width_mult": np.ones(1)}
    with pytest.raises(ValueError, match=fragment) as info:
        ArchBatch(**{**genes, name: values})
    assert f"ArchBatch.{name}" in str(info.value)


def test_tables_hold_compact_columns_and_round_trip_through_parquet(tmp_path: Path):
    batch = get_space("ofa", resolutions="ofa", width_mult=1.2).sample_batch(50, seed=3)
    frame = batch.to_frame()
    assert frame["ks_0"].dtype == np.int8
    assert frame["d_4"].dtype == np.int8
    assert frame["r"].dtype == np.int16
    assert frame["width_mult"].dtype == np.float64
    frame.to_parquet(tmp_path / "batch.parquet")
    back = ArchBatch.from_frame(pd.read_parquet(tmp_path / "batch.parquet"))
    assert_compact(back)
    assert back.to_archs() == batch.to_archs()
    widened = ArchBatch.from_frame(frame.astype({c: np.int64 for c in frame.columns[:-1]}))
    assert widened.to_archs() == batch.to_archs()
    nullable = ArchBatch.from_frame(frame.astype({"r": "Int64", "ks_0": "Int16"}))
    assert nullable.to_archs() == batch.to_archs()


def test_a_table_with_missing_genes_is_refused_not_read_as_garbage():
    frame = get_space("ofa").sample_batch(3, seed=0).to_frame()
    frame["r"] = frame["r"].where(frame.index != 1)
    with pytest.raises(ValueError, match=r"ArchBatch\.r holds nan"):
        ArchBatch.from_frame(frame)
    frame = get_space("ofa").sample_batch(3, seed=0).to_frame().astype({"d_0": "Int64"})
    frame.loc[0, "d_0"] = pd.NA
    with pytest.raises(ValueError, match=r"ArchBatch\.d holds nan"):
        ArchBatch.from_frame(frame)


# -- no computed value changes ---------------------------------------------------------------
def reference_canonical_codes(batch: ArchBatch) -> np.ndarray:
    """`ArchBatch.canonical_codes` as it was computed in int64."""
    mask = batch.active_mask
    return np.concatenate(
        [
            np.where(mask, batch.ks, 0),
            np.where(mask, batch.e, 0),
            batch.d,
            batch.r[:, None],
            np.rint(batch.width_mult * 10).astype(np.int64)[:, None],
        ],
        axis=1,
    )


def reference_packed_keys(batch: ArchBatch) -> list[int]:
    """`ArchBatch.packed_keys` with Python integers, one subnet at a time."""
    keys = []
    for arch in batch.to_archs():
        key = 0
        for i, active in enumerate(arch.active_blocks):
            if active:
                key |= {3: 1, 5: 2, 7: 3}[arch.ks[i]] << (40 + 2 * i)
                key |= {3: 1, 4: 2, 6: 3}[arch.e[i]] << (2 * i)
        for s, depth in enumerate(arch.d):
            key |= (depth - 2) << (80 + 2 * s)
        key |= ((arch.r - 128) // 4) << 90
        key |= int(arch.width_mult == 1.2) << 95
        keys.append(key)
    return keys


@given(batches())
def test_compact_genes_give_every_value_int64_genes_give(batch):
    wide = as_int64(batch)
    exact, wide_exact = cost_table(batch), cost_table(wide)
    looked_up, wide_looked_up = block_cost_table(batch), block_cost_table(wide)
    for name in (
        "block_macs",
        "block_params",
        "block_activations",
        "stem_macs",
        "stem_params",
        "head_macs",
        "head_params",
        "macs_exact",
        "params",
    ):
        assert np.array_equal(getattr(exact, name), getattr(wide_exact, name)), name
        assert np.array_equal(getattr(looked_up, name), getattr(wide_looked_up, name)), name
        assert np.array_equal(getattr(exact, name), getattr(looked_up, name)), name
    assert np.array_equal(exact.macs, wide_exact.macs)
    assert np.array_equal(batch.canonical_codes(), reference_canonical_codes(wide))
    assert batch.packed_keys() == reference_packed_keys(batch)
    _, first = np.unique(reference_canonical_codes(wide), axis=0, return_index=True)
    assert batch.unique_index().tolist() == sorted(first.tolist())
    assert np.array_equal(batch.active_mask, wide.active_mask)
