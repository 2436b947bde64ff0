"""Search spaces: membership, counting, sampling, mutation and crossover."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ofa_latency_kedro.search_space import Arch, ArchBatch, ArchError, get_space
from ofa_latency_kedro.search_space.constants import (
    COMPOFA_EXPAND_FOR_DEPTH,
    DEPTH_CHOICES,
    EXPAND_CHOICES,
    KERNEL_CHOICES,
    OFA_RESOLUTIONS,
    SEED_RESOLUTIONS,
)
from tests.search_space.strategies import as_int64, seeds, spaces

SEED_FILES = {
    "RTX_2080_Ti_GPU_ofa.csv": ("ofa", 10000),
    "Tesla_P40_GPU_ofa.csv": ("ofa", 10000),
    "RTX_2080_Ti_GPU_fixedkernelcompofa.csv": ("compofa", 1215),
    "Tesla_P40_GPU_fixedkernelcompofa.csv": ("compofa", 1215),
    "Intel_Xeon_CPU_fixedkernelcompofa.csv": ("compofa", 1215),
    "note10_lookuptable_ofa.csv": ("ofa", 10000),
    "note10_lookuptable_fixedkernelcompofa.csv": ("compofa", 1215),
    "note10_lookuptable_elastickernelcompofa.csv": ("compofa-elastic", 10000),
}


def test_counts_of_distinct_subnets():
    assert get_space("compofa").count() == 3**5 * 5 == 1215
    assert get_space("compofa", resolutions="ofa").count() == 3**5 * 25
    assert get_space("compofa-elastic").count() == (3**2 + 3**3 + 3**4) ** 5 * 5
    assert get_space("ofa").count() == (9**2 + 9**3 + 9**4) ** 5 * 5
    assert get_space("ofa", width_mult=1.2).count() == get_space("ofa").count()


def test_enumerating_fixed_kernel_compofa_lists_every_subnet_once():
    space = get_space("compofa")
    everything = space.enumerate()
    assert len(everything) == 1215
    assert len(everything.unique_index()) == 1215
    assert space.contains_batch(everything).all()
    assert set(everything.r.tolist()) == set(SEED_RESOLUTIONS)


def test_enumeration_refuses_huge_spaces():
    with pytest.raises(ValueError, match="enumeration is limited"):
        get_space("ofa").enumerate()


def test_resolution_sets():
    assert get_space("ofa").resolutions == SEED_RESOLUTIONS
    assert get_space("ofa", resolutions="ofa").resolutions == OFA_RESOLUTIONS
    assert OFA_RESOLUTIONS == tuple(range(128, 225, 4))
    assert get_space("ofa", resolutions=[224, 160]).resolutions == (160, 224)
    with pytest.raises(ValueError, match="not OFA resolutions"):
        get_space("ofa", resolutions=[100])
    with pytest.raises(ValueError, match="unknown resolution set"):
        get_space("ofa", resolutions="imagenet")


def test_unknown_space_names_list_the_known_ones():
    with pytest.raises(ValueError, match="known spaces: ofa, compofa, compofa-elastic"):
        get_space("mobilenet")
    assert get_space("fixedkernelcompofa").name == "compofa"
    assert get_space("elastickernelcompofa").name == "compofa-elastic"
    with pytest.raises(ValueError, match="width_mult"):
        get_space("ofa", width_mult=1.5)


@given(spaces(), seeds)
def test_sampling_is_reproducible_and_stays_in_the_space(space, seed):
    first = space.sample(20, seed=seed)
    assert first == space.sample(20, seed=seed)
    for arch in first:
        assert space.validate(arch) == arch
        assert arch.width_mult == space.width_mult
    assert space.contains_batch(space.sample_batch(50, seed)).all()


@given(spaces(), seeds)
def test_compact_sampling_draws_the_subnets_int64_sampling_drew(space, seed):
    """The random stream is unchanged by compact genes: datasets extended with a seed go on
    with the same subnets."""
    rng = np.random.default_rng(seed)

    def choice(values, shape):
        return np.asarray(values, dtype=np.int64)[rng.integers(0, len(values), size=shape)]

    ks, e = choice(KERNEL_CHOICES, (50, 20)), choice(EXPAND_CHOICES, (50, 20))
    d, r = choice(DEPTH_CHOICES, (50, 5)), choice(space.resolutions, (50,))
    if space.fixed_kernels is not None:
        ks[:] = np.repeat(space.fixed_kernels, 4)
    if space.coupled_expand:
        e = np.repeat([[COMPOFA_EXPAND_FOR_DEPTH[x] for x in row] for row in d.tolist()], 4, axis=1)
    sampled = as_int64(space.sample_batch(50, seed))
    for name, expected in (("ks", ks), ("e", e), ("d", d), ("r", r)):
        assert np.array_equal(getattr(sampled, name), expected), name


def test_different_seeds_give_different_samples():
    space = get_space("ofa")
    assert space.sample(10, seed=1) != space.sample(10, seed=2)


def test_compofa_couples_expand_ratio_to_depth_and_fixes_kernels():
    for arch in get_space("compofa").sample(200, seed=3):
        for stage, depth in enumerate(arch.d):
            blocks = range(4 * stage, 4 * stage + 4)
            assert {arch.e[i] for i in blocks} == {{2: 3, 3: 4, 4: 6}[depth]}
            assert {arch.ks[i] for i in blocks} == {(3, 5, 3, 3, 5)[stage]}
    elastic = get_space("compofa-elastic").sample(200, seed=3)
    assert len({a.ks for a in elastic}) > 100


@pytest.mark.parametrize("name", ["ofa", "compofa", "compofa-elastic"])
def test_sampling_covers_every_choice(name):
    batch = get_space(name).sample_batch(2000, seed=0)
    assert set(batch.d.ravel().tolist()) == {2, 3, 4}
    assert set(batch.r.tolist()) == set(SEED_RESOLUTIONS)
    assert set(batch.e.ravel().tolist()) == {3, 4, 6}
    expected_kernels = {3, 5} if name == "compofa" else {3, 5, 7}
    assert set(batch.ks.ravel().tolist()) == expected_kernels


@pytest.mark.parametrize(
    ("name", "n"), [("compofa", 1215), ("compofa", 700), ("compofa", 100), ("ofa", 500)]
)
def test_sample_distinct_gives_distinct_subnets_reproducibly(name, n):
    space = get_space(name)
    archs = space.sample_distinct(n, seed=7)
    assert len(archs) == n
    assert len({a.canonical_key for a in archs}) == n
    assert archs == space.sample_distinct(n, seed=7)
    assert all(space.contains(a) for a in archs)


def test_sample_distinct_refuses_more_than_the_space_holds():
    with pytest.raises(ValueError, match="has only 1215"):
        get_space("compofa").sample_distinct(1216)


@given(spaces(), seeds, st.floats(min_value=0.0, max_value=1.0))
def test_mutation_stays_in_the_space(space, seed, prob):
    parents = space.sample_batch(30, seed)
    children = space.mutate_batch(parents, prob, seed + 1)
    assert space.contains_batch(children).all()
    assert np.array_equal(children.width_mult, parents.width_mult)
    single = space.mutate(parents.to_archs()[0], prob, seed)
    assert space.contains(single)


def test_mutation_probability_zero_changes_nothing_and_one_changes_most():
    space = get_space("ofa")
    parents = space.sample_batch(200, seed=0)
    same = space.mutate_batch(parents, 0.0, seed=1)
    assert np.array_equal(same.canonical_codes(), parents.canonical_codes())
    changed = space.mutate_batch(parents, 1.0, seed=1)
    differs = (changed.canonical_codes() != parents.canonical_codes()).any(axis=1)
    assert differs.mean() > 0.95


def test_mutation_is_reproducible():
    space = get_space("compofa-elastic")
    parents = space.sample_batch(50, seed=0)
    a = space.mutate_batch(parents, 0.3, seed=9)
    b = space.mutate_batch(parents, 0.3, seed=9)
    assert np.array_equal(a.canonical_codes(), b.canonical_codes())


@given(spaces(), seeds)
def test_crossover_stays_in_the_space_and_takes_genes_from_the_parents(space, seed):
    first = space.sample_batch(30, seed)
    second = space.sample_batch(30, seed + 1)
    children = space.crossover_batch(first, second, seed + 2)
    assert space.contains_batch(children).all()
    assert np.all((children.d == first.d) | (children.d == second.d))
    assert np.all((children.r == first.r) | (children.r == second.r))
    assert np.all((children.ks == first.ks) | (children.ks == second.ks))
    child = space.crossover(first.to_archs()[0], second.to_archs()[0], seed)
    assert space.contains(child)


def test_crossover_of_a_subnet_with_itself_is_itself():
    space = get_space("ofa")
    parents = space.sample_batch(20, seed=4)
    children = space.crossover_batch(parents, parents, seed=5)
    assert np.array_equal(children.canonical_codes(), parents.canonical_codes())


def test_crossover_needs_equal_populations():
    space = get_space("ofa")
    with pytest.raises(ValueError, match="crossover of 3 and 2"):
        space.crossover_batch(space.sample_batch(3, 0), space.sample_batch(2, 0))


def test_batch_and_single_views_agree():
    space = get_space("ofa", width_mult=1.2)
    batch = space.sample_batch(40, seed=2)
    archs = batch.to_archs()
    rebuilt = ArchBatch.from_archs(archs)
    assert np.array_equal(rebuilt.canonical_codes(), batch.canonical_codes())
    assert batch.canonical_keys() == [a.canonical_key for a in archs]
    assert batch.active_mask.sum(axis=1).tolist() == [a.num_active_blocks for a in archs]
    assert batch[3].to_archs() == [archs[3]]


def test_contains_batch_agrees_with_validate():
    ofa_archs = get_space("ofa").sample_batch(300, seed=11)
    compofa = get_space("compofa")
    flags = compofa.contains_batch(ofa_archs)
    assert flags.tolist() == [compofa.contains(a) for a in ofa_archs.to_archs()]


def test_validate_names_the_space():
    with pytest.raises(ArchError, match="space 'compofa'"):
        get_space("compofa").validate(get_space("ofa").sample(1, seed=0)[0])


@pytest.mark.parametrize("filename", sorted(SEED_FILES))
def test_every_seed_row_belongs_to_its_space(shared_dir: Path, filename: str):
    space_name, distinct = SEED_FILES[filename]
    space = get_space(space_name)
    with open(shared_dir / "seed_data" / "latency" / filename, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10000
    archs = [Arch.parse(row["child_arch"], space=space) for row in rows]
    assert len({a.canonical_key for a in archs}) == distinct
    assert [a.to_seed_string() for a in archs[:50]] == [row["child_arch"] for row in rows[:50]]


@pytest.mark.parametrize("name", ["ofa", "compofa", "compofa-elastic"])
def test_asking_for_more_distinct_subnets_extends_the_sample(name):
    space = get_space(name)
    small = space.sample_distinct(20, seed=5)
    large = space.sample_distinct(1100, seed=5)
    assert large[:20] == small


@given(spaces(), seeds)
def test_packed_keys_agree_with_canonical_keys(space, seed):
    batch = ArchBatch.concatenate(
        [
            space.sample_batch(60, seed),
            space.mutate_batch(space.sample_batch(60, seed), 0.2, seed + 1),
        ]
    )
    packed = batch.packed_keys()
    keys = batch.canonical_keys()
    same_packed = {(i, j) for i in range(len(batch)) for j in range(i) if packed[i] == packed[j]}
    same_keys = {(i, j) for i in range(len(batch)) for j in range(i) if keys[i] == keys[j]}
    assert same_packed == same_keys
