"""Hypothesis strategies for subnets."""

from __future__ import annotations

from hypothesis import strategies as st

from ofa_latency_kedro.search_space import Arch, get_space
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
