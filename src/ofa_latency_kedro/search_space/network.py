"""The static subnet of an Arch, layer for layer as OFA's ``get_active_subnet`` builds it.

Three views of one structure: `block_specs` (the layers, in plain numbers), `net_config`
(OFA's JSON, readable by ``MobileNetV3.build_from_config``), and `build_subnet` (a
``torch.nn.Module`` with random weights; module names follow OFA, so OFA state dicts fit).
Parameter and multiply-accumulate counts come in closed form from `cost_table`, vectorised
over whole batches, without building any module.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ofa_latency_kedro.search_space.arch import Arch, ArchLike
from ofa_latency_kedro.search_space.batch import ArchBatch, choice_positions
from ofa_latency_kedro.search_space.constants import (
    BASE_STAGE_WIDTH,
    BN_EPS,
    BN_MOMENTUM,
    CHANNEL_DIVISIBLE,
    DROPOUT_RATE,
    EXPAND_CHOICES,
    FIRST_BLOCK_ACTIVATION,
    KERNEL_CHOICES,
    MAX_DEPTH,
    NUM_BLOCKS,
    NUM_CLASSES,
    NUM_STAGES,
    SE_REDUCTION,
    STAGE_ACTIVATIONS,
    STAGE_STRIDES,
    STAGE_USES_SE,
)


def make_divisible(value: float, divisor: int = CHANNEL_DIVISIBLE) -> int:
    """OFA's channel rounding: nearest multiple of ``divisor``, never more than 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _make_divisible_array(values: np.ndarray, divisor: int = CHANNEL_DIVISIBLE) -> np.ndarray:
    rounded = np.maximum(
        divisor, np.floor(values + divisor / 2).astype(np.int64) // divisor * divisor
    )
    return np.where(rounded < 0.9 * values, rounded + divisor, rounded)


@dataclass(frozen=True)
class SupernetWidths:
    """Channel widths of the OFA-MobileNetV3 supernet at one width multiplier."""

    first_conv: int
    first_block: int
    stages: tuple[int, ...]
    final_expand: int
    feature_mix: int

    @classmethod
    def for_width(cls, width_mult: float) -> SupernetWidths:
        widths = [make_divisible(w * width_mult) for w in BASE_STAGE_WIDTH]
        return cls(
            first_conv=widths[0],
            first_block=widths[1],
            stages=tuple(widths[2:7]),
            final_expand=widths[7],
            feature_mix=widths[8],
        )


def conv_output_size(size: int | np.ndarray, stride: int) -> int | np.ndarray:
    """Spatial size after an odd-kernel convolution with OFA's "same" padding."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block of a static subnet, with the spatial size it runs at."""

    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    expand_ratio: int
    mid_channels: int
    act_func: str
    use_se: bool
    has_shortcut: bool
    input_size: int
    output_size: int


def block_specs(arch: ArchLike, width_mult: float | None = None) -> list[BlockSpec]:
    """The first block followed by every active elastic block of the subnet."""
    arch = Arch.parse(arch, width_mult=width_mult)
    widths = SupernetWidths.for_width(arch.width_mult)
    size = conv_output_size(arch.r, 2)
    specs = [
        BlockSpec(
            in_channels=widths.first_conv,
            out_channels=widths.first_block,
            kernel_size=3,
            stride=1,
            expand_ratio=1,
            mid_channels=widths.first_conv,
            act_func=FIRST_BLOCK_ACTIVATION,
            use_se=False,
            has_shortcut=widths.first_conv == widths.first_block,
            input_size=size,
            output_size=size,
        )
    ]
    channels = widths.first_block
    for stage in range(NUM_STAGES):
        for j in range(arch.d[stage]):
            i = stage * MAX_DEPTH + j
            stride = STAGE_STRIDES[stage] if j == 0 else 1
            out_channels = widths.stages[stage]
            out_size = conv_output_size(size, stride)
            specs.append(
                BlockSpec(
                    in_channels=channels,
                    out_channels=out_channels,
                    kernel_size=arch.ks[i],
                    stride=stride,
                    expand_ratio=arch.e[i],
                    mid_channels=make_divisible(round(channels * arch.e[i])),
                    act_func=STAGE_ACTIVATIONS[stage],
                    use_se=STAGE_USES_SE[stage],
                    has_shortcut=stride == 1 and channels == out_channels,
                    input_size=size,
                    output_size=out_size,
                )
            )
            channels, size = out_channels, out_size
    return specs


# -- closed-form costs -----------------------------------------------------------------------
@dataclass(frozen=True)
class CostTable:
    """Closed-form costs of a batch of subnets: multiply-accumulates of conv and linear layers
    for one image, and trainable parameters (BatchNorm affine included).

    ``block_*`` are (n, 20) with zeros for inactive blocks; ``stem_*`` cover the first conv and
    first block, ``head_*`` the final expand, feature mix and classifier. ``block_activations``
    counts the elements a block moves for one image: its input plus the output of each of its
    convolutions. ``macs`` is the figure OFA's profiler reports: it sums layer counts in
    float32, in module order, so it can differ from the exact ``macs_exact`` by a few units in
    the last float32 place (< 1e-7 relative).
    """

    block_macs: np.ndarray
    block_params: np.ndarray
    block_activations: np.ndarray
    stem_macs: np.ndarray
    stem_params: np.ndarray
    head_macs: np.ndarray
    head_params: np.ndarray
    macs: np.ndarray | None

    @property
    def macs_exact(self) -> np.ndarray:
        return self.stem_macs + self.block_macs.sum(axis=1) + self.head_macs

    @property
    def params(self) -> np.ndarray:
        return self.stem_params + self.block_params.sum(axis=1) + self.head_params


def _widths_by_row(width_mult: np.ndarray) -> dict[str, np.ndarray]:
    """Channel widths of every row, looked up per distinct width (there are at most two)."""
    distinct, row_width = np.unique(width_mult, return_inverse=True)
    tables = [SupernetWidths.for_width(float(w)) for w in distinct]

    def column(values: list[Any]) -> np.ndarray:
        return np.asarray(values, dtype=np.int64)[row_width]

    return {
        "first_conv": column([w.first_conv for w in tables]),
        "first_block": column([w.first_block for w in tables]),
        "stages": column([w.stages for w in tables]).reshape(len(width_mult), NUM_STAGES),
        "final_expand": column([w.final_expand for w in tables]),
        "feature_mix": column([w.feature_mix for w in tables]),
    }


class _OFAProfilerSum:
    """OFA's ``flops_counter.profile`` total: each layer's count stored in float32 and added
    in module order into a float32 accumulator."""

    def __init__(self, n: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.total = np.zeros(n, dtype=np.float32)

    def add(self, layer_macs: np.ndarray) -> np.ndarray:
        if self.enabled:
            self.total = self.total + layer_macs.astype(np.float32)
        return layer_macs


def cost_table(batch: ArchBatch, *, ofa_macs: bool = True) -> CostTable:
    """Parameters, MACs and activations of every block of every subnet of ``batch``, in
    closed form (vectorised over the rows; the 20 blocks are a short loop). ``ofa_macs=False``
    skips OFA's float32 total (``macs`` is then None), which encoders do not need."""
    n = len(batch)
    widths = _widths_by_row(batch.width_mult)
    profiler = _OFAProfilerSum(n, enabled=ofa_macs)
    # Genes come in int8/int16 (`GENE_DTYPES`); products of sizes and channels need int64.
    ks, e = batch.ks.astype(np.int64), batch.e.astype(np.int64)
    size = conv_output_size(batch.r.astype(np.int64), 2)
    area = size * size
    c0, c1 = widths["first_conv"], widths["first_block"]
    # First conv (3x3, stride 2, BN) and first block (depthwise 3x3 + pointwise, BN each).
    stem_macs = (
        profiler.add(27 * c0 * area) + profiler.add(9 * c0 * area) + profiler.add(c0 * c1 * area)
    )
    stem_params = (27 * c0 + 2 * c0) + (9 * c0 + 2 * c0) + (c0 * c1 + 2 * c1)

    active = batch.active_mask
    block_macs = np.zeros((n, NUM_BLOCKS), dtype=np.int64)
    block_params = np.zeros((n, NUM_BLOCKS), dtype=np.int64)
    block_activations = np.zeros((n, NUM_BLOCKS), dtype=np.int64)
    channels = c1
    for stage in range(NUM_STAGES):
        out_channels = widths["stages"][:, stage]
        for j in range(MAX_DEPTH):
            i = stage * MAX_DEPTH + j
            on = active[:, i]
            out_size = conv_output_size(size, STAGE_STRIDES[stage] if j == 0 else 1)
            out_area = out_size * out_size
            k = ks[:, i]
            mid = _make_divisible_array(channels * e[:, i])
            macs = profiler.add(np.where(on, channels * mid * area, 0))
            macs = macs + profiler.add(np.where(on, k * k * mid * out_area, 0))
            params = (channels + k * k + 4) * mid
            activations = (channels + mid) * area + (mid + out_channels) * out_area
            if STAGE_USES_SE[stage]:
                se = _make_divisible_array(mid // SE_REDUCTION)
                se_macs = np.where(on, mid * se, 0)  # each of two 1x1 convolutions, pooled input
                macs = macs + profiler.add(se_macs) + profiler.add(se_macs)
                params = params + 2 * mid * se + se + mid
                activations = activations + se + mid
            macs = macs + profiler.add(np.where(on, mid * out_channels * out_area, 0))
            params = params + mid * out_channels + 2 * out_channels
            block_macs[:, i] = macs
            block_params[:, i] = np.where(on, params, 0)
            block_activations[:, i] = np.where(on, activations, 0)
            if j == 0:
                channels, size, area = out_channels, out_size, out_area
    final, mix = widths["final_expand"], widths["feature_mix"]
    head_macs = (
        profiler.add(channels * final * area)
        + profiler.add(final * mix)
        + profiler.add(mix * NUM_CLASSES)
    )
    head_params = (channels * final + 2 * final) + final * mix + (mix * NUM_CLASSES + NUM_CLASSES)
    return CostTable(
        block_macs=block_macs,
        block_params=block_params,
        block_activations=block_activations,
        stem_macs=stem_macs,
        stem_params=stem_params,
        head_macs=head_macs,
        head_params=head_params,
        macs=profiler.total.astype(np.int64) if ofa_macs else None,
    )


@functools.lru_cache(maxsize=256)
def _costs_at(width_mult: float, resolution: int) -> tuple[np.ndarray, ...]:
    """Every block's costs for each (kernel, expand) at one width and resolution, as (20, 3, 3)
    tables of MACs, parameters and activations, plus the stem's and head's MACs and
    parameters; computed by `cost_table` itself on the nine subnets that use one (kernel,
    expand) in all 20 blocks."""
    grid = [(k, e) for k in KERNEL_CHOICES for e in EXPAND_CHOICES]
    batch = ArchBatch(
        ks=np.array([[k] * NUM_BLOCKS for k, _ in grid]),
        e=np.array([[e] * NUM_BLOCKS for _, e in grid]),
        d=np.full((len(grid), NUM_STAGES), MAX_DEPTH),
        r=np.full(len(grid), resolution),
        width_mult=np.full(len(grid), width_mult),
    )
    costs = cost_table(batch, ofa_macs=False)

    def table(values: np.ndarray) -> np.ndarray:
        return values.T.reshape(NUM_BLOCKS, len(KERNEL_CHOICES), len(EXPAND_CHOICES))

    return (
        table(costs.block_macs),
        table(costs.block_params),
        table(costs.block_activations),
        np.array(
            [costs.stem_macs[0], costs.stem_params[0], costs.head_macs[0], costs.head_params[0]]
        ),
    )


def block_cost_table(batch: ArchBatch) -> CostTable:
    """`cost_table` without OFA's float32 total, by table lookup: a block's costs depend only
    on its position, kernel, expand ratio, and the subnet's width and resolution, so a few
    cached tables answer whole populations with one gather each."""
    codes = np.rint(batch.width_mult * 10).astype(np.int64) * 1000 + batch.r.astype(np.int64)
    distinct, row_pair = np.unique(codes, return_inverse=True)
    tables = [_costs_at(code // 1000 / 10, code % 1000) for code in distinct.tolist()]
    macs, params, activations = (np.stack([t[q] for t in tables]) for q in range(3))
    fixed = np.stack([t[3] for t in tables])[row_pair.reshape(-1)]
    choices = len(KERNEL_CHOICES) * len(EXPAND_CHOICES)
    flat = (row_pair.reshape(-1, 1) * NUM_BLOCKS + np.arange(NUM_BLOCKS)) * choices
    flat += choice_positions(batch.ks, KERNEL_CHOICES) * len(EXPAND_CHOICES)
    flat += choice_positions(batch.e, EXPAND_CHOICES)
    flat[~batch.active_mask] = -1  # points at an appended zero
    return CostTable(
        block_macs=np.append(macs, 0).take(flat),
        block_params=np.append(params, 0).take(flat),
        block_activations=np.append(activations, 0).take(flat),
        stem_macs=fixed[:, 0],
        stem_params=fixed[:, 1],
        head_macs=fixed[:, 2],
        head_params=fixed[:, 3],
        macs=None,
    )


# -- OFA net_config --------------------------------------------------------------------------
def _conv_layer_config(
    in_channels: int, out_channels: int, *, kernel_size: int, stride: int, use_bn: bool = True
) -> dict[str, Any]:
    """OFA's ``ConvLayer.config``; every ConvLayer of MobileNetV3 uses h-swish."""
    return {
        "name": "ConvLayer",
        "kernel_size": kernel_size,
        "stride": stride,
        "dilation": 1,
        "groups": 1,
        "bias": False,
        "has_shuffle": False,
        "use_se": False,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "use_bn": use_bn,
        "act_func": "h_swish",
        "dropout_rate": 0,
        "ops_order": "weight_bn_act",
    }


def _identity_config(channels: int) -> dict[str, Any]:
    return {
        "name": "IdentityLayer",
        "in_channels": channels,
        "out_channels": channels,
        "use_bn": False,
        "act_func": None,
        "dropout_rate": 0,
        "ops_order": "weight_bn_act",
    }


def _block_config(spec: BlockSpec, first: bool) -> dict[str, Any]:
    conv: dict[str, Any] = {
        "name": "MBConvLayer",
        "in_channels": spec.in_channels,
        "out_channels": spec.out_channels,
        "kernel_size": spec.kernel_size,
        "stride": spec.stride,
        "expand_ratio": spec.expand_ratio,
        "mid_channels": None if first else spec.mid_channels,
        "act_func": spec.act_func,
        "use_se": spec.use_se,
    }
    if first:
        # The first block is a static MBConvLayer in OFA; its config also carries ``groups``.
        conv["groups"] = None
    return {
        "name": "ResidualBlock",
        "conv": conv,
        "shortcut": _identity_config(spec.in_channels) if spec.has_shortcut else None,
    }


def net_config(arch: ArchLike, width_mult: float | None = None) -> dict[str, Any]:
    """OFA's ``get_active_net_config()`` for the subnet, key for key."""
    arch = Arch.parse(arch, width_mult=width_mult)
    widths = SupernetWidths.for_width(arch.width_mult)
    specs = block_specs(arch)
    return {
        "name": "MobileNetV3",
        "bn": {"momentum": BN_MOMENTUM, "eps": BN_EPS, "ws_eps": None},
        "first_conv": _conv_layer_config(3, widths.first_conv, kernel_size=3, stride=2),
        "blocks": [_block_config(spec, first=i == 0) for i, spec in enumerate(specs)],
        "final_expand_layer": _conv_layer_config(
            specs[-1].out_channels, widths.final_expand, kernel_size=1, stride=1
        ),
        "feature_mix_layer": _conv_layer_config(
            widths.final_expand, widths.feature_mix, kernel_size=1, stride=1, use_bn=False
        ),
        "classifier": {
            "name": "LinearLayer",
            "in_features": widths.feature_mix,
            "out_features": NUM_CLASSES,
            "bias": True,
            "use_bn": False,
            "act_func": None,
            "dropout_rate": DROPOUT_RATE,
            "ops_order": "weight_bn_act",
        },
    }


# -- torch modules ---------------------------------------------------------------------------
def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "h_swish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class SqueezeExcite(nn.Module):
    """OFA's ``SEModule``: global mean, 1x1 reduce, ReLU, 1x1 expand, hard sigmoid, rescale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = make_divisible(channels // SE_REDUCTION)
        self.fc = nn.Sequential(
            OrderedDict(
                reduce=nn.Conv2d(channels, mid, 1, bias=True),
                relu=nn.ReLU(inplace=True),
                expand=nn.Conv2d(mid, channels, 1, bias=True),
                h_sigmoid=nn.Hardsigmoid(inplace=True),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3), keepdim=True))


def _conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    groups: int = 1,
    use_bn: bool = True,
    act: str | None = None,
) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv=nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            kernel_size // 2,
            groups=groups,
            bias=False,
        )
    )
    if use_bn:
        layers["bn"] = _batch_norm(out_channels)
    if act is not None:
        layers["act"] = _activation(act)
    return nn.Sequential(layers)


class MBConv(nn.Module):
    """OFA's ``MBConvLayer``: 1x1 expand (absent when expand ratio is 1), depthwise conv with
    optional squeeze-excite, 1x1 linear projection."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        mid = spec.mid_channels
        self.inverted_bottleneck = (
            None
            if spec.expand_ratio == 1
            else _conv_bn_act(spec.in_channels, mid, 1, act=spec.act_func)
        )
        self.depth_conv = _conv_bn_act(
            mid, mid, spec.kernel_size, stride=spec.stride, groups=mid, act=spec.act_func
        )
        if spec.use_se:
            self.depth_conv.add_module("se", SqueezeExcite(mid))
        self.point_linear = _conv_bn_act(mid, spec.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))


class ResidualBlock(nn.Module):
    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        self.conv = MBConv(spec)
        self.has_shortcut = spec.has_shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out + x if self.has_shortcut else out


class OFAMobileNetV3Subnet(nn.Module):
    """A static OFA-MobileNetV3 subnet (OFA's ``MobileNetV3``) with random weights."""

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        self.arch = arch
        widths = SupernetWidths.for_width(arch.width_mult)
        specs = block_specs(arch)
        self.first_conv = _conv_bn_act(3, widths.first_conv, 3, stride=2, act="h_swish")
        self.blocks = nn.ModuleList(ResidualBlock(spec) for spec in specs)
        self.final_expand_layer = _conv_bn_act(
            specs[-1].out_channels, widths.final_expand, 1, act="h_swish"
        )
        self.feature_mix_layer = _conv_bn_act(
            widths.final_expand, widths.feature_mix, 1, use_bn=False, act="h_swish"
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                dropout=nn.Dropout(DROPOUT_RATE),
                linear=nn.Linear(widths.feature_mix, NUM_CLASSES),
            )
        )

    @property
    def resolution(self) -> int:
        return self.arch.r

    @property
    def config(self) -> dict[str, Any]:
        return net_config(self.arch)

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        return torch.randn(batch_size, 3, self.arch.r, self.arch.r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_conv(x)
        for block in self.blocks:
            x = block(x)
        x = self.final_expand_layer(x)
        x = x.mean(dim=(2, 3), keepdim=True)
        x = self.feature_mix_layer(x)
        return self.classifier(torch.flatten(x, 1))


def build_subnet(arch: ArchLike, width_mult: float | None = None) -> OFAMobileNetV3Subnet:
    """The static subnet as a ``torch.nn.Module`` with random weights (latency does not depend
    on the weights). ``width_mult`` applies to archs that do not carry one."""
    return OFAMobileNetV3Subnet(Arch.parse(arch, width_mult=width_mult))


def subnet_stats(arch: ArchLike, width_mult: float | None = None) -> dict[str, Any]:
    """``{"params", "macs", "macs_exact", "net_config"}`` of the subnet, computed without
    building it. ``macs`` is OFA's profiler figure (see `CostTable`)."""
    arch = Arch.parse(arch, width_mult=width_mult)
    costs = cost_table(ArchBatch.from_archs([arch]))
    return {
        "params": int(costs.params[0]),
        "macs": int(costs.macs[0]),
        "macs_exact": int(costs.macs_exact[0]),
        "net_config": net_config(arch),
    }
