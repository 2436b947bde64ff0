"""Encoders: the seed's encoding bit for bit, analytic features equal to the built network,
and a joint encoding that makes a lookup-table device exactly learnable."""

from __future__ import annotations

import copy
import csv
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from torch import nn

from ofa_latency_kedro.encoding import Encoder, get_encoder
from ofa_latency_kedro.encoding.encoders import analytic, joint, joint_indices, seed128
from ofa_latency_kedro.search_space import Arch, ArchBatch, build_subnet, cost_table, get_space
from tests.search_space.strategies import as_int64, batches, raw_archs


def seed_formula(child_arch: dict, hardware: tuple | None = None) -> list[float]:
    """The seed's spec2feats, as its latency_encoding.py and DESIGN.md state it."""
    ks_list, ex_list = copy.deepcopy(child_arch["ks"]), copy.deepcopy(child_arch["e"])
    start, end = 0, 4
    for d in child_arch["d"]:
        for j in range(start + d, end):
            ks_list[j] = 0
            ex_list[j] = 0
        start += 4
        end += 4
    ks_map, ex_map = {3: 0, 5: 1, 7: 2}, {3: 0, 4: 1, 6: 2}
    ks_onehot, ex_onehot, r_onehot = [0] * 60, [0] * 60, [0] * 8
    for i in range(20):
        if ks_list[i] != 0:
            ks_onehot[i * 3 + ks_map[ks_list[i]]] = 1
        if ex_list[i] != 0:
            ex_onehot[i * 3 + ex_map[ex_list[i]]] = 1
    r_onehot[(child_arch["r"][0] - 112) // 16] = 1
    return ks_onehot + ex_onehot + r_onehot + (list(hardware) if hardware else [])


def test_seed128_matches_the_seed_formula_on_seed_rows(shared_dir: Path):
    path = shared_dir / "seed_data" / "latency" / "RTX_2080_Ti_GPU_ofa.csv"
    with open(path, newline="") as handle:
        rows = [
            row["child_arch"] for _, row in zip(range(300), csv.DictReader(handle), strict=False)
        ]
    archs = [Arch.parse(text) for text in rows]
    expected = np.array([seed_formula(a.to_seed_dict()) for a in archs], dtype=np.float32)
    assert np.array_equal(seed128(ArchBatch.from_archs(archs)), expected)


@given(raw_archs())
def test_seed128_matches_the_seed_formula_on_any_arch(arch: Arch):
    expected = np.array([seed_formula(arch.to_seed_dict())], dtype=np.float32)
    assert np.array_equal(Encoder("seed128").encode(ArchBatch.from_archs([arch])), expected)


def test_seed131_appends_the_hardware_numbers():
    archs = get_space("ofa").sample(5, seed=1)
    hardware = np.tile([4352.0, 11.0, 616.0], (5, 1))
    encoded = Encoder("seed131").encode(ArchBatch.from_archs(archs), hardware)
    expected = np.array(
        [seed_formula(a.to_seed_dict(), (4352, 11, 616)) for a in archs], dtype=np.float32
    )
    assert np.array_equal(encoded, expected)
    with pytest.raises(ValueError, match="needs the hardware numbers"):
        Encoder("seed131").encode(ArchBatch.from_archs(archs))


def block_counts(arch: Arch) -> tuple[list[int], list[int], list[int]]:
    """Per active block of the built network: MACs, parameters, activation elements (its
    input plus every convolution's output), counted by hooks while it runs."""
    net = build_subnet(arch).eval()
    blocks = list(net.blocks)[1:]
    counts = [{"macs": 0, "act": 0} for _ in blocks]

    def count_conv(tally, module, _inputs, output):
        kernel = module.weight.shape[2] * module.weight.shape[3]
        tally["macs"] += module.in_channels * output.nelement() * kernel // module.groups
        tally["act"] += output.nelement()

    def count_input(tally, _module, inputs):
        tally["act"] += inputs[0].nelement()

    handles = []
    for block, tally in zip(blocks, counts, strict=True):
        handles.append(block.register_forward_pre_hook(partial(count_input, tally)))
        for module in block.modules():
            if isinstance(module, nn.Conv2d):
                handles.append(module.register_forward_hook(partial(count_conv, tally)))
    with torch.inference_mode():
        net(torch.zeros(1, 3, arch.r, arch.r))
    for handle in handles:
        handle.remove()
    params = [sum(p.numel() for p in block.parameters()) for block in blocks]
    return [c["macs"] for c in counts], params, [c["act"] for c in counts]


@pytest.mark.parametrize("seed", range(4))
def test_analytic_block_features_equal_the_built_network(seed: int):
    arch = get_space("ofa", width_mult=(1.0, 1.2)[seed % 2]).sample(1, seed=seed)[0]
    costs = cost_table(ArchBatch.from_archs([arch]))
    active = list(arch.active_block_indices)
    macs, params, activations = block_counts(arch)
    assert costs.block_macs[0, active].tolist() == macs
    assert costs.block_params[0, active].tolist() == params
    assert costs.block_activations[0, active].tolist() == activations
    features = analytic(ArchBatch.from_archs([arch]))
    assert features[0, :20][active] == pytest.approx(np.array(macs) / 1e6, rel=1e-6)
    assert np.all(features[0, :20][[i for i in range(20) if i not in active]] == 0)


def test_joint_is_an_exact_basis_for_additive_devices():
    batch = get_space("ofa").sample_batch(400, seed=0)
    resolutions = (160, 176, 192, 208, 224)
    encoded = joint(batch, resolutions)
    assert encoded.shape == (400, 20 * 9 * 5 + 5)
    assert encoded.sum(axis=1).tolist() == (batch.active_mask.sum(axis=1) + 1).tolist()
    index = joint_indices(batch, resolutions)
    assert np.all((index >= 0).sum(axis=1) == batch.active_mask.sum(axis=1) + 1)
    rng = np.random.default_rng(0)
    table = rng.uniform(0.1, 2.0, encoded.shape[1])
    additive = encoded @ table
    fitted, *_ = np.linalg.lstsq(encoded, additive, rcond=None)
    assert np.allclose(encoded @ fitted, additive)
    with pytest.raises(ValueError, match="resolution 164 is not among"):
        joint(get_space("ofa", resolutions=[164]).sample_batch(1, seed=0), resolutions)


def test_encoder_names_combine_and_round_trip():
    batch = get_space("compofa").sample_batch(10, seed=0)
    combined = get_encoder("analytic+seed128").encode(batch)
    assert combined.shape == (10, analytic(batch).shape[1] + 128)
    assert combined.dtype == np.float32
    encoder = Encoder("joint", resolutions=(160, 224))
    assert Encoder.from_dict(encoder.to_dict()) == encoder
    assert Encoder("seed128").dimension() == 128
    with pytest.raises(ValueError, match="unknown encoder 'onehot'"):
        get_encoder("onehot")


@given(batches())
def test_compact_genes_encode_exactly_as_int64_genes(batch: ArchBatch):
    wide = as_int64(batch)
    hardware = np.tile(np.array([[4352.0, 11.0, 616.0]]), (len(batch), 1))
    for name in ("seed128", "seed131", "analytic", "joint", "analytic+seed128"):
        encoder = Encoder(name)
        assert np.array_equal(encoder.encode(batch, hardware), encoder.encode(wide, hardware)), name
    assert np.array_equal(joint_indices(batch), joint_indices(wide))
    expected = np.array([seed_formula(a.to_seed_dict()) for a in batch.to_archs()], np.float32)
    assert np.array_equal(seed128(batch), expected)
