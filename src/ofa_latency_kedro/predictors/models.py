"""The predictor networks, as plain ``torch.nn.Module``s (their state dicts are all a
checkpoint needs, so loading never unpickles code)."""

from __future__ import annotations

import torch
from torch import nn


class SeedMLP(nn.Module):
    """The seed's predictor: 128-400-400-400-1 with ReLUs, raw milliseconds out. Its module
    names (``model.0`` ... ``model.6``) are the seed checkpoints' keys."""

    def __init__(self, in_features: int = 128, hidden: int = 400) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model(features).squeeze(-1)


def mlp(in_features: int, hidden: int, depth: int) -> nn.Sequential:
    """``depth`` hidden ReLU layers and a zero-initialised output, so an untrained MLP adds 0."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    out = nn.Linear(width, 1)
    nn.init.zeros_(out.weight)
    nn.init.zeros_(out.bias)
    layers.append(out)
    return nn.Sequential(*layers)


class WideDeep(nn.Module):
    """latency = linear + table + deep.

    The wide part has two terms. ``linear`` weighs the standardised ``analytic`` features
    (per-block MACs, parameters, activation bytes): physics that extrapolates to subnets
    unlike any measured one. ``table`` holds a cost per (block, kernel, expand, resolution)
    and per resolution, summed over the active blocks (a linear model on the ``joint``
    encoding): it corrects the first term where the data say so, and a lookup-table device
    is exactly such a sum. The deep part, an MLP on the same standardised features, learns
    what is not additive (blocks sharing a cache, kernel launch overheads); it starts at
    zero, so training starts from the wide part's least-squares fit.
    """

    def __init__(self, n_wide: int, deep_features: int, hidden: int = 256, depth: int = 3) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(n_wide))
        self.linear = nn.Linear(deep_features, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.register_buffer("deep_mean", torch.zeros(deep_features))
        self.register_buffer("deep_std", torch.ones(deep_features))
        self.register_buffer("deep_scale", torch.ones(()))
        self.deep = mlp(deep_features, hidden, depth) if depth > 0 else None

    def wide(self, wide_index: torch.Tensor) -> torch.Tensor:
        """Sum of the table entries of each row's indices (-1: an inactive block, adds 0)."""
        active = wide_index >= 0
        return (self.table[wide_index.clamp(min=0)] * active).sum(dim=1)

    def deep_part(self, deep_features: torch.Tensor) -> torch.Tensor:
        """The terms that read the analytic features: ``linear`` plus the MLP."""
        standardised = (deep_features - self.deep_mean) / self.deep_std
        out = self.linear(standardised).squeeze(-1)
        if self.deep is not None:
            out = out + self.deep(standardised).squeeze(-1) * self.deep_scale
        return out

    def forward(self, wide_index: torch.Tensor, deep_features: torch.Tensor) -> torch.Tensor:
        return self.wide(wide_index) + self.deep_part(deep_features)


class SharedBasis(nn.Module):
    """The generalized model: log latency on device ``j`` = ``linear_j(x) + heads_j(trunk(x))``.

    One trunk (an MLP on the standardised subnet features) learns a basis of latency
    behaviours shared by every device; each device keeps a linear term on the features (its
    own compute and memory weights) and a head over the basis. ``forward`` gives every
    device's log latency, (n, devices): a new device is a blend of these columns (its
    embedding), fitted from a few of its measurements.
    """

    def __init__(self, in_features: int, devices: int, basis: int = 64, hidden: int = 256) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("std", torch.ones(in_features))
        self.trunk = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, basis),
        )
        self.linear = nn.Linear(in_features, devices)
        self.heads = nn.Linear(basis, devices)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        standardised = (features - self.mean) / self.std
        return self.linear(standardised) + self.heads(self.trunk(standardised))
