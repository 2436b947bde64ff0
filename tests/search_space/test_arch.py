"""Arch: parsing, validation, canonical keys and conversions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ofa_latency_kedro.search_space import Arch, ArchError
from ofa_latency_kedro.search_space.arch import MAX_ARCH_TEXT_LENGTH
from tests.search_space.strategies import raw_archs, seeds, spaces

SEED_ROW = (
    "{'wid': None, 'ks': [7, 7, 3, 3, 5, 7, 3, 7, 3, 7, 3, 7, 5, 7, 7, 5, 5, 5, 7, 5], "
    "'e': [6, 3, 4, 4, 3, 6, 4, 6, 6, 3, 4, 6, 6, 3, 3, 4, 6, 4, 6, 6], "
    "'d': [2, 4, 2, 3, 3], 'r': [208]}"
)


def seed_dict(**changes):
    base = {
        "wid": None,
        "ks": [3] * 20,
        "e": [4] * 20,
        "d": [2, 3, 4, 2, 3],
        "r": [176],
    }
    base.update(changes)
    return base


def test_parses_the_seed_literal_and_writes_it_back_character_for_character():
    arch = Arch.parse(SEED_ROW)
    assert arch.d == (2, 4, 2, 3, 3)
    assert arch.r == 208
    assert arch.width_mult == 1.0
    assert arch.to_seed_string() == SEED_ROW
    assert str(arch) == SEED_ROW


def test_parses_json_dicts_and_archs_alike():
    from_text = Arch.parse(SEED_ROW)
    from_json = Arch.parse(json.dumps(from_text.to_seed_dict()))
    from_dict = Arch.parse(from_text.to_seed_dict())
    assert from_text == from_json == from_dict == Arch.parse(from_text)
    assert Arch.parse(SEED_ROW.encode()) == from_text


def test_accepts_a_bare_int_resolution_and_numpy_integers():
    arch = Arch.parse(seed_dict(r=192, ks=np.full(20, 5), d=np.array([4, 4, 4, 4, 4])))
    assert arch.r == 192
    assert arch.ks == (5,) * 20
    assert all(type(v) is int for v in arch.ks + arch.d)


def test_is_immutable_and_hashable():
    arch = Arch.parse(SEED_ROW)
    with pytest.raises(AttributeError):
        arch.r = 224  # type: ignore[misc]
    assert {arch: 1}[Arch.parse(SEED_ROW)] == 1


@pytest.mark.parametrize(
    ("source", "field", "fragment"),
    [
        (seed_dict(ks=[3] * 19), "ks", "must have 20 values, got 19"),
        (seed_dict(e=[4] * 21), "e", "must have 20 values, got 21"),
        (seed_dict(d=[2, 3, 4, 2]), "d", "must have 5 values, got 4"),
        (seed_dict(ks=[3, 3, 3, 4] + [3] * 16), "ks[3]", "has value 4; allowed values are 3, 5, 7"),
        (seed_dict(e=[4] * 19 + [5]), "e[19]", "has value 5; allowed values are 3, 4, 6"),
        (seed_dict(d=[2, 3, 5, 2, 3]), "d[2]", "has value 5; allowed values are 2, 3, 4"),
        (seed_dict(r=[100]), "r", "has value 100"),
        (seed_dict(r=[226]), "r", "has value 226"),
        (seed_dict(r=[160, 176]), "r", "exactly one resolution"),
        (seed_dict(r="224"), "r", "must be an integer"),
        (seed_dict(ks=[True] * 20), "ks[0]", "must be an integer"),
        (seed_dict(ks=[3.0] * 20), "ks[0]", "must be an integer"),
        (seed_dict(ks="3" * 20), "ks", "must be a list"),
        (seed_dict(ks=None), "ks", "must be a list"),
        (seed_dict(wid=2), "wid", "no elastic width index"),
        (seed_dict(width_mult=1.1), "width_mult", "allowed values are 1.0, 1.2"),
        ({**seed_dict(), "kernel": [3] * 20}, "kernel", "unknown arch field"),
        ({"ks": [3] * 20, "e": [4] * 20, "d": [2] * 5}, "r", "missing field"),
    ],
)
def test_malformed_archs_are_refused_naming_the_field(source, field, fragment):
    with pytest.raises(ArchError) as info:
        Arch.parse(source)
    assert info.value.field == field
    assert fragment in str(info.value)
    assert f"'{field}'" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch {marker}')",
        "{'ks': __import__('os').system('touch {marker}')}",
        "open('{marker}', 'w').write('x')",
        "(lambda: __import__('os').system('touch {marker}'))()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
    ],
)
def test_python_code_is_never_run(tmp_path: Path, text: str):
    marker = tmp_path / "executed"
    with pytest.raises(ArchError) as info:
        Arch.parse(text.replace("{marker}", str(marker)))
    assert info.value.field == "arch"
    assert "neither a Python dict literal nor a JSON object" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "neither a Python dict literal"),
        ("{'wid': None, 'ks': [3, 3", "neither a Python dict literal"),
        ("[3, 5, 7]", "must be a dict"),
        ("42", "must be a dict"),
        ("{" * 5000, "characters long"),
        ("[" * 2000 + "]" * 2000, "neither a Python dict literal"),
    ],
)
def test_broken_text_gives_a_clear_error(text: str, fragment: str):
    with pytest.raises(ArchError) as info:
        Arch.parse(text)
    assert fragment in str(info.value)


def test_text_shaped_like_the_seed_literal_but_not_json_is_read_as_python_or_refused():
    assert Arch.parse(SEED_ROW.replace("[208]", "[208, ]")) == Arch.parse(SEED_ROW)
    with pytest.raises(ArchError, match="neither a Python dict literal") as info:
        Arch.parse(SEED_ROW.replace("[208]", "[0208]"))
    assert info.value.field == "arch"


def test_overlong_text_is_refused_before_parsing():
    with pytest.raises(ArchError, match=f"at most {MAX_ARCH_TEXT_LENGTH}"):
        Arch.parse("{'ks': [" + "3, " * 10_000_000 + "]}")


def test_non_utf8_bytes_are_refused():
    with pytest.raises(ArchError, match="not valid UTF-8"):
        Arch.parse(b"\xff\xfe{")


def test_unsupported_types_are_refused():
    with pytest.raises(ArchError, match="cannot read an arch from int"):
        Arch.parse(42)  # type: ignore[arg-type]


def test_conflicting_width_is_refused():
    arch = Arch.parse(SEED_ROW, width_mult=1.2)
    assert arch.width_mult == 1.2
    with pytest.raises(ArchError, match="width"):
        Arch.parse(arch, width_mult=1.0)
    with pytest.raises(ArchError, match="width"):
        Arch.parse({**arch.to_dict()}, width_mult=1.0)


def test_space_membership_is_checked_when_asked():
    compofa = seed_dict(
        ks=[3] * 4 + [5] * 4 + [3] * 8 + [5] * 4,
        e=[3] * 4 + [4] * 4 + [6] * 4 + [3] * 4 + [4] * 4,
        d=[2, 3, 4, 2, 3],
    )
    assert Arch.parse(compofa, space="compofa").d == (2, 3, 4, 2, 3)
    bad_kernel = {**compofa, "ks": [5] + compofa["ks"][1:]}
    with pytest.raises(ArchError, match="fixes the kernel of stage 1 to 3") as info:
        Arch.parse(bad_kernel, space="compofa")
    assert info.value.field == "ks[0]"
    bad_expand = {**compofa, "e": [6] + compofa["e"][1:]}
    with pytest.raises(ArchError, match="couples the expand ratio") as info:
        Arch.parse(bad_expand, space="compofa-elastic")
    assert info.value.field == "e[0]"
    with pytest.raises(ArchError, match="allows resolutions 160, 176, 192, 208, 224"):
        Arch.parse(seed_dict(r=[164]), space="ofa")
    assert Arch.parse(seed_dict(r=[164])).r == 164


def test_canonical_key_ignores_inactive_blocks_only():
    arch = Arch.parse(SEED_ROW)
    # Stage 1 has depth 2: blocks 2 and 3 are inactive.
    respelled = arch.replace(
        ks=(*arch.ks[:2], 3, 5, *arch.ks[4:]), e=(*arch.e[:2], 6, 6, *arch.e[4:])
    )
    assert respelled != arch
    assert respelled.canonical_key == arch.canonical_key
    assert respelled.same_subnet(arch)
    assert arch.replace(ks=(5, *arch.ks[1:])).canonical_key != arch.canonical_key
    assert arch.replace(r=224).canonical_key != arch.canonical_key
    assert arch.replace(width_mult=1.2).canonical_key != arch.canonical_key
    assert arch.canonical_key == (
        "w1.0/r208/k7e6.k7e3/k5e3.k7e6.k3e4.k7e6/k3e6.k7e3/k5e6.k7e3.k7e3/k5e6.k5e4.k7e6"
    )


def test_active_blocks_follow_the_depths():
    arch = Arch.parse(SEED_ROW)
    assert arch.num_active_blocks == 14
    assert arch.active_block_indices[:4] == (0, 1, 4, 5)
    assert sum(arch.active_blocks) == 14


@given(raw_archs())
def test_any_arch_round_trips_through_json(arch: Arch):
    assert Arch.from_json(arch.to_json()) == arch
    assert Arch.parse(arch.to_dict()) == arch


@given(raw_archs())
def test_any_arch_round_trips_through_the_seed_dict_and_text(arch: Arch):
    assert Arch.parse(arch.to_seed_dict(), width_mult=arch.width_mult) == arch
    assert Arch.parse(arch.to_seed_string(), width_mult=arch.width_mult) == arch


@given(spaces(), seeds)
def test_sampled_archs_round_trip(space, seed):
    for arch in space.sample(5, seed=seed):
        assert Arch.parse(arch.to_seed_string(), width_mult=arch.width_mult, space=space) == arch
        assert Arch.from_json(arch.to_json()) == arch


@given(raw_archs(), st.data())
def test_masked_inactive_blocks_never_change_the_canonical_key(arch: Arch, data):
    inactive = [i for i, on in enumerate(arch.active_blocks) if not on]
    ks, e = list(arch.ks), list(arch.e)
    for i in inactive:
        ks[i] = data.draw(st.sampled_from([3, 5, 7]))
        e[i] = data.draw(st.sampled_from([3, 4, 6]))
    assert arch.replace(ks=ks, e=e).canonical_key == arch.canonical_key


@given(raw_archs(), raw_archs())
def test_canonical_keys_differ_when_active_structure_differs(first: Arch, second: Arch):
    same_structure = (
        first.d == second.d
        and first.r == second.r
        and first.width_mult == second.width_mult
        and all(
            (first.ks[i], first.e[i]) == (second.ks[i], second.e[i])
            for i in first.active_block_indices
        )
    )
    assert (first.canonical_key == second.canonical_key) == same_structure
