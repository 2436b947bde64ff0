"""The predictor networks, as plain ``torch.nn.Module``s (their state dicts are all a
checkpoint needs, so loading never unpickles code). Each says which of its parameters are
its output heads (`head_parameters`): what a few-shot ``last_layer`` adaptation retrains."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def mlp(
    in_features: int, hidden: int, depth: int, out_features: int = 1, *, zero_output: bool = True
) -> nn.Sequential:
    """``depth`` hidden ReLU layers of ``hidden`` units and a linear output (indices 0, 2,
    ... of the Sequential are the Linear layers). ``zero_output``: the output starts at 0, so
    an untrained MLP added to a fitted model changes nothing."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    out = nn.Linear(width, out_features)
    if zero_output:
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
    layers.append(out)
    return nn.Sequential(*layers)


class SeedMLP(nn.Module):
    """The seed's predictor, and OFA's accuracy predictor: an MLP 128-400-400-400-1 with
    ReLUs. Its module names (``model.0`` ... ``model.6``) are the seed checkpoints' keys;
    `from_state` also reads OFA's (``0`` ... ``6``) and the seed's fine-tuned layout."""

    #: The seed's fine-tuned checkpoints split the MLP in two (``0.*`` body, ``1.*`` output).
    _FINETUNED_KEYS = {"0.0": "model.0", "0.2": "model.2", "0.4": "model.4", "1": "model.6"}

    def __init__(self, in_features: int = 128, hidden: int = 400) -> None:
        super().__init__()
        self.model = mlp(in_features, hidden, 3, zero_output=False)

    @property
    def in_features(self) -> int:
        return self.model[0].in_features

    @property
    def hidden(self) -> int:
        return self.model[0].out_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model(features).squeeze(-1)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.model[-1].parameters())

    @classmethod
    def state_keys(cls, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """``state`` with this module's key names, or None when its keys are none of the
        three layouts (``model.N``, OFA's ``N``, the seed's fine-tuned ``0.N``/``1``)."""
        keys = list(state)
        if not keys:
            return None
        layer = [k.rsplit(".", 1)[0] for k in keys]
        if all(k.split(".")[0] == "model" for k in keys):
            return dict(state)
        if all(name.isdigit() for name in layer):
            return {f"model.{k}": v for k, v in state.items()}
        if all(name in cls._FINETUNED_KEYS for name in layer):
            return {
                f"{cls._FINETUNED_KEYS[name]}.{k.rsplit('.', 1)[1]}": v
                for name, (k, v) in zip(layer, state.items(), strict=True)
            }
        return None

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor]) -> SeedMLP:
        """The MLP of a state dict in any of the `state_keys` layouts (its sizes read from
        the first layer); ``ValueError`` when the keys or shapes are not this MLP's."""
        renamed = cls.state_keys(state)
        if renamed is None:
            raise ValueError(f"state dict keys {list(state)[:4]} are not the seed's MLP")
        try:
            first = renamed["model.0.weight"]
            module = cls(first.shape[1], first.shape[0])
            module.load_state_dict(renamed, strict=True)
        except (KeyError, RuntimeError, AttributeError, IndexError) as exc:
            raise ValueError(f"not the seed's MLP shape: {exc}") from None
        return module


class WideDeep(nn.Module):
    """latency = linear + table + deep.

    The wide part has two terms. ``linear`` weighs the standardised ``analytic`` features
    (per-block MACs, parameters, activation bytes): physics that extrapolates to subnets
    unlike any measured one. ``table`` holds a cost per (block, kernel, expand, resolution)
    and per resolution, summed over the active blocks (a linear model on the ``joint``
    encoding): it corrects the first term where the data say so, and a lookup-table device
    is exactly such a sum. The deep part, an MLP on the same standardised features, learns
    what is not additive (blocks sharing a cache, kernel launch overheads); it starts at
    zero, so training starts from the wide part's least-squares fit. With ``depth`` 0 there
    is no deep part: the wide part alone (a linear model).
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

    @property
    def depth(self) -> int:
        return 0 if self.deep is None else (len(self.deep) - 1) // 2

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

    def drop_deep(self) -> None:
        """Leave the deep part out (the wide part alone is exact)."""
        self.deep = None

    def head_parameters(self) -> list[nn.Parameter]:
        """The analytic term and the MLP's output layer."""
        parameters = list(self.linear.parameters())
        if self.deep is not None:
            parameters += list(self.deep[-1].parameters())
        return parameters


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
        self.trunk = mlp(in_features, hidden, 2, basis, zero_output=False)
        self.linear = nn.Linear(in_features, devices)
        self.heads = nn.Linear(basis, devices)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        standardised = (features - self.mean) / self.std
        return self.linear(standardised) + self.heads(self.trunk(standardised))

    def head_parameters(self) -> list[nn.Parameter]:
        return [*self.linear.parameters(), *self.heads.parameters()]
