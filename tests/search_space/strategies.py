"""Hypothesis strategies for subnets."""

from __future__ import annotations

import json
from collections import OrderedDict, defaultdict
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ofa_latency_kedro.search_space import Arch, ArchBatch, get_space
from ofa_latency_kedro.search_space.constants import (
    DEPTH_CHOICES,
    EXPAND_CHOICES,
    KERNEL_CHOICES,
    OFA_RESOLUTIONS,
    WIDTH_CHOICES,
)

space_names = st.sampled_from(["ofa", "compofa", "compofa-elastic"])
widths = st.sampled_from(WIDTH_CHOICES)


@st.composite
def raw_archs(draw: st.DrawFn) -> Arch:
    """Any OFA arch, inactive blocks included, drawn field by field (so it shrinks well)."""
    return Arch(
        ks=draw(st.lists(st.sampled_from(KERNEL_CHOICES), min_size=20, max_size=20)),
        e=draw(st.lists(st.sampled_from(EXPAND_CHOICES), min_size=20, max_size=20)),
        d=draw(st.lists(st.sampled_from(DEPTH_CHOICES), min_size=5, max_size=5)),
        r=draw(st.sampled_from(OFA_RESOLUTIONS)),
        width_mult=draw(widths),
    )


@st.composite
def spaces(draw: st.DrawFn):
    return get_space(
        draw(space_names),
        resolutions=draw(st.sampled_from(["seed", "ofa"])),
        width_mult=draw(widths),
    )


seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _seed_dict_with(arch: Arch, convert) -> dict:
    return {
        key: convert(value) if key != "wid" else value for key, value in arch.to_seed_dict().items()
    }


#: Every spelling `Arch.parse` accepts for one subnet; those without a width of their own take
#: the requested one.
SPELLINGS = {
    "arch": lambda a: a,
    "seed dict": Arch.to_seed_dict,
    "dict with width": Arch.to_dict,
    "seed string": Arch.to_seed_string,
    "seed bytes": lambda a: a.to_seed_string().encode(),
    "json": Arch.to_json,
    "json bytes": lambda a: a.to_json().encode(),
    "seed json": lambda a: json.dumps(a.to_seed_dict()),
    "padded string": lambda a: f"  {a.to_seed_string()}\n",
    "respaced string": lambda a: a.to_seed_string().replace(", ", ","),
    "trailing comma": lambda a: a.to_seed_string().replace("]}", ", ]}"),
    "numpy string": lambda a: np.str_(a.to_seed_string()),
    "tuples": lambda a: _seed_dict_with(a, tuple),
    "numpy integers": lambda a: _seed_dict_with(a, lambda v: [np.int64(x) for x in v]),
    "numpy arrays": lambda a: {**a.to_seed_dict(), "ks": np.array(a.ks), "e": np.array(a.e)},
    "bare resolution": lambda a: {**a.to_seed_dict(), "r": a.r},
    "numpy resolution": lambda a: {**a.to_seed_dict(), "r": np.int16(a.r)},
    "without wid": lambda a: {k: v for k, v in a.to_dict().items() if k != "wid"},
    "ordered dict": lambda a: OrderedDict(a.to_seed_dict()),
    "int width": lambda a: {**a.to_seed_dict(), "width_mult": 1} if a.width_mult == 1.0 else a,
}


@st.composite
def spellings(draw: st.DrawFn, arch: Arch | None = None) -> Any:
    """One subnet in one of the forms `Arch.parse` accepts (`SPELLINGS`)."""
    arch = draw(raw_archs()) if arch is None else arch
    return SPELLINGS[draw(st.sampled_from(sorted(SPELLINGS)))](arch)


_BASE = Arch(ks=(3,) * 20, e=(4,) * 20, d=(2, 3, 4, 2, 3), r=176)
_TEXT = _BASE.to_seed_string()


def _dict(**changes: Any) -> dict:
    return {**_BASE.to_seed_dict(), **changes}


def _text(old: str, new: str) -> str:
    return _TEXT.replace(old, new, 1)


def _missing_r() -> defaultdict:
    base = defaultdict(list, _BASE.to_seed_dict())
    del base["r"]
    return base


#: Items `Arch.parse` refuses, each with something a bulk reader could get wrong.
BAD_ITEMS = {
    "19 kernels": _dict(ks=[3] * 19),
    "21 expand ratios": _dict(e=[4] * 21),
    "4 depths": _dict(d=[2, 3, 4, 2]),
    "kernel 4": _dict(ks=[3, 3, 3, 4] + [3] * 16),
    "expand 5": _dict(e=[4] * 19 + [5]),
    "depth 5": _dict(d=[2, 3, 5, 2, 3]),
    "negative kernel": _dict(ks=[-3] * 20),
    "kernel 259 (3 in int8)": _dict(ks=[259] * 20),
    "numpy kernel 259": _dict(ks=[np.int64(259)] * 20),
    "resolution 65712 (176 in int16)": _dict(r=[176 + 65536]),
    "huge kernel": _dict(ks=[2**70] * 20),
    "huge kernel among numpy ones": _dict(ks=[2**70] + [np.int64(3)] * 19),
    "numpy kernels whose sum overflows": _dict(ks=[np.int64(2**62)] * 20),
    "resolution 100": _dict(r=[100]),
    "resolution 226": _dict(r=[226]),
    "two resolutions": _dict(r=[160, 176]),
    "empty resolution": _dict(r=[]),
    "text resolution": _dict(r="224"),
    "float resolution": _dict(r=176.0),
    "resolution array": _dict(r=np.array([176])),
    "resolution 0-d array in a list": _dict(r=[np.array(176)]),
    "bool kernels": _dict(ks=[True] * 20),
    "numpy bool kernels": _dict(ks=[np.True_] * 20),
    "float kernels": _dict(ks=[3.0] * 20),
    "numpy float kernels": _dict(ks=[np.float64(3)] * 20),
    "0-d array kernels": _dict(ks=[np.array(3)] * 20),
    "text kernels": _dict(ks="3" * 20),
    "no kernels": _dict(ks=None),
    "nested kernels": _dict(ks=[[3]] * 20),
    "wid 2": _dict(wid=2),
    "wid 0": _dict(wid=0),
    "width 1.1": _dict(width_mult=1.1),
    "text width": _dict(width_mult="1.0"),
    "bool width": _dict(width_mult=True),
    "nan width": _dict(width_mult=float("nan")),
    "list width": _dict(width_mult=[1.0]),
    "unknown field": _dict(kernel=[3] * 20),
    "integer field name": {**_dict(), 1: 2},
    "missing resolution": {k: v for k, v in _dict().items() if k != "r"},
    "missing resolution in a defaultdict": _missing_r(),
    "text kernel 4": _text("[3, 3", "[4, 3"),
    "text kernel 0": _text("[3, 3", "[0, 3"),
    "text resolution 096": _text("[176]", "[096]"),
    "text resolution 999": _text("[176]", "[999]"),
    "text resolution 1760": _text("[176]", "[1760]"),
    "text two-digit kernel": _text("[3, 3", "[33, 3"),
    "text non-ascii digit": _text("[3, 3", "[\u0663, 3"),
    "text non-ascii letter": _text("[3, 3", "[\u00e9, 3"),
    "text wid 1": _text("None", "1"),
    "truncated text": _TEXT[:-3],
    "empty text": "",
    "code": "__import__('os').getcwd()",
    "text list": "[3, 5, 7]",
    "overlong text": "{" * 5000,
    "non-utf8 bytes": b"\xff\xfe{",
    "template-length non-utf8 bytes": b"\xff" * len(_TEXT),
    "json kernel 4": _BASE.to_json().replace("[3, 3", "[4, 3", 1),
    "json width 1.1": _BASE.to_json().replace('"width_mult": 1.0', '"width_mult": 1.1'),
    "an int": 42,
    "None": None,
    "a list": [3, 5, 7],
}


#: The costliest subnet there is: every product of sizes and channels at its largest.
LARGEST = Arch(ks=(7,) * 20, e=(6,) * 20, d=(4,) * 5, r=224, width_mult=1.2)


@st.composite
def batches(draw: st.DrawFn) -> ArchBatch:
    """A batch of any space, as sampling, mutation and crossover make them, sometimes with the
    largest subnet of either width added."""
    space, seed = draw(spaces()), draw(seeds)
    n = draw(st.integers(min_value=1, max_value=40))
    sampled = space.sample_batch(n, seed)
    parts = [
        sampled,
        space.mutate_batch(sampled, 0.3, seed),
        space.crossover_batch(sampled, sampled[::-1], seed),
    ]
    if draw(st.booleans()):
        parts.append(ArchBatch.from_archs([LARGEST, LARGEST.replace(width_mult=1.0)]))
    return ArchBatch.concatenate(parts)


def as_int64(batch: ArchBatch) -> ArchBatch:
    """The same batch with int64 genes, as every batch held them before they were compacted
    (built around the constructor, which would compact them again): the reference for
    results computed from compact genes."""
    wide = object.__new__(ArchBatch)
    for name in ("ks", "e", "d", "r"):
        object.__setattr__(wide, name, getattr(batch, name).astype(np.int64))
    object.__setattr__(wide, "width_mult", batch.width_mult.copy())
    return wide
