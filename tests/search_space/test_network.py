"""The subnet builder against the 26 reference subnets built with the official `ofa` package."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from torch import nn

from ofa_latency_kedro.search_space import (
    Arch,
    ArchBatch,
    block_specs,
    build_subnet,
    cost_table,
    get_space,
    net_config,
    subnet_stats,
)
from ofa_latency_kedro.search_space.network import SupernetWidths, make_divisible
from tests.search_space.strategies import LARGEST, raw_archs


def hooked_layer_macs(net: nn.Module, resolution: int) -> list[int]:
    """Per-layer MACs in execution order, counted the way OFA's profiler counts them."""
    counts: list[int] = []

    def count(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kernel = module.weight.shape[2] * module.weight.shape[3]
            counts.append(module.in_channels * output.nelement() * kernel // module.groups)
        else:
            counts.append(module.in_features * module.out_features)

    handles = [
        m.register_forward_hook(count)
        for m in net.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.inference_mode():
        net(torch.zeros(1, 3, resolution, resolution))
    for handle in handles:
        handle.remove()
    return counts


def ofa_profiler_total(layer_macs: list[int]) -> int:
    """OFA's ``flops_counter.profile`` sums float32 tensors layer by layer."""
    total = torch.zeros(1)
    for macs in layer_macs:
        total += torch.zeros(1).fill_(macs)
    return int(total.item())


@pytest.fixture(scope="module")
def reference(reference_subnets):
    assert len(reference_subnets) == 26
    return reference_subnets


@pytest.mark.parametrize("index", range(26))
def test_builder_matches_the_ofa_reference_exactly(reference, index):
    entry = reference[index]
    arch = Arch.parse(entry["arch"], width_mult=entry["width_mult"])
    stats = subnet_stats(arch)
    assert stats["params"] == entry["params"]
    assert stats["macs"] == entry["macs"]
    assert stats["net_config"] == entry["net_config"]

    net = build_subnet(arch).eval()
    assert sum(p.numel() for p in net.parameters()) == entry["params"]
    assert net.config == entry["net_config"]
    with torch.inference_mode():
        out = net(net.example_input())
    assert list(out.shape) == entry["output_shape"]

    layer_macs = hooked_layer_macs(net, arch.r)
    assert sum(layer_macs) == stats["macs_exact"]
    assert ofa_profiler_total(layer_macs) == entry["macs"]


def test_reference_covers_both_widths_and_the_odd_resolution(reference):
    assert {s["width_mult"] for s in reference} == {1.0, 1.2}
    assert {s["arch"]["r"][0] for s in reference} >= {132, 160, 224}


def test_width_can_be_given_to_the_builder_for_seed_dicts(reference):
    entry = next(s for s in reference if s["width_mult"] == 1.2)
    assert subnet_stats(entry["arch"], width_mult=1.2)["params"] == entry["params"]
    assert subnet_stats(str(Arch.parse(entry["arch"])), width_mult=1.2)["params"] == entry["params"]
    net = build_subnet(entry["arch"], width_mult=1.2)
    assert sum(p.numel() for p in net.parameters()) == entry["params"]


def test_module_names_follow_ofa_so_its_state_dicts_fit():
    arch = get_space("ofa").sample(1, seed=0)[0]
    keys = set(build_subnet(arch).state_dict())
    for key in [
        "first_conv.conv.weight",
        "first_conv.bn.running_mean",
        "blocks.0.conv.depth_conv.conv.weight",
        "blocks.0.conv.point_linear.bn.weight",
        "blocks.1.conv.inverted_bottleneck.conv.weight",
        "blocks.1.conv.depth_conv.bn.weight",
        "final_expand_layer.conv.weight",
        "final_expand_layer.bn.bias",
        "feature_mix_layer.conv.weight",
        "classifier.linear.weight",
        "classifier.linear.bias",
    ]:
        assert key in keys
    se_keys = [k for k in keys if ".se.fc." in k]
    assert {k.split(".se.fc.")[1] for k in se_keys} == {
        "reduce.weight",
        "reduce.bias",
        "expand.weight",
        "expand.bias",
    }
    assert "blocks.0.conv.inverted_bottleneck.conv.weight" not in keys


def test_supernet_widths():
    assert SupernetWidths.for_width(1.0) == SupernetWidths(
        16, 16, (24, 40, 80, 112, 160), 960, 1280
    )
    assert SupernetWidths.for_width(1.2) == SupernetWidths(
        24, 24, (32, 48, 96, 136, 192), 1152, 1536
    )
    assert make_divisible(19.2) == 24
    assert make_divisible(136 * 3) == 408


def test_block_specs_follow_strides_and_shortcuts():
    arch = Arch.parse({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": [224]})
    specs = block_specs(arch)
    assert len(specs) == 21
    assert [s.output_size for s in specs[::4]] == [112, 56, 28, 14, 14, 7]
    assert specs[0].has_shortcut and not specs[1].has_shortcut and specs[2].has_shortcut
    assert [s.use_se for s in specs[1::4]] == [False, True, False, True, True]
    assert specs[1].mid_channels == 96


@given(raw_archs())
@example(LARGEST)  # every product at its largest: compact genes must not overflow here
def test_closed_form_costs_equal_the_built_module(arch: Arch):
    net = build_subnet(arch)
    costs = cost_table(ArchBatch.from_archs([arch]))
    assert int(costs.params[0]) == sum(p.numel() for p in net.parameters())
    layer_macs = hooked_layer_macs(net, arch.r)
    assert int(costs.macs_exact[0]) == sum(layer_macs)
    assert int(costs.macs[0]) == ofa_profiler_total(layer_macs)


def test_cost_table_is_vectorised_over_mixed_batches():
    archs = get_space("ofa").sample(30, seed=1) + get_space("compofa", width_mult=1.2).sample(
        30, seed=2
    )
    costs = cost_table(ArchBatch.from_archs(archs))
    singles = [subnet_stats(a) for a in archs]
    assert costs.params.tolist() == [s["params"] for s in singles]
    assert costs.macs.tolist() == [s["macs"] for s in singles]
    assert costs.block_macs.shape == (60, 20)
    inactive = ~ArchBatch.from_archs(archs).active_mask
    assert np.all(costs.block_macs[inactive] == 0)
    assert np.all(costs.block_params[inactive] == 0)


def test_latency_structure_only_depends_on_the_canonical_subnet():
    arch = Arch.parse({"ks": [3] * 20, "e": [4] * 20, "d": [2] * 5, "r": [160]})
    respelled = arch.replace(ks=(3, 3, 7, 7) + arch.ks[4:])
    assert net_config(arch) == net_config(respelled)
    assert subnet_stats(arch)["macs"] == subnet_stats(respelled)["macs"]


def test_the_lookup_path_equals_the_closed_form():
    from ofa_latency_kedro.search_space.network import block_cost_table

    batch = ArchBatch.concatenate(
        [
            get_space("ofa", resolutions="ofa").sample_batch(400, seed=0),
            get_space("compofa-elastic", width_mult=1.2, resolutions="ofa").sample_batch(
                400, seed=1
            ),
        ]
    )
    exact, looked_up = cost_table(batch), block_cost_table(batch)
    for name in (
        "block_macs",
        "block_params",
        "block_activations",
        "stem_macs",
        "stem_params",
        "head_macs",
        "head_params",
    ):
        assert np.array_equal(getattr(exact, name), getattr(looked_up, name)), name
    assert looked_up.macs is None
