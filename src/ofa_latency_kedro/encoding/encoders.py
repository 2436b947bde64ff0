"""Feature encodings of subnets, computed for a whole `ArchBatch` at once.

``seed128``   the seed's (and OFA's accuracy predictor's) encoding, bit for bit: 60 kernel
              one-hots (3 per block), 60 expand one-hots, 8 resolution one-hots at
              (r - 112) // 16; inactive blocks all zero.
``seed131``   seed128 plus the seed's three raw hardware numbers (CUDA cores, memory GB,
              bandwidth GB/s), for its generalized model.
``analytic``  per-block MACs, parameters and activation bytes at the subnet's resolution
              (closed form, equal to the built network's counts), per-stage sums, totals,
              resolution and width: features that carry the physics of latency.
``joint``     one-hot of (block, kernel, expand, resolution) plus a resolution one-hot: a
              lookup-table device's latency is a linear function of it, so it is exactly
              learnable.
Names join with ``+`` (``analytic+seed128``) to concatenate encodings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.constants import (
    EXPAND_CHOICES,
    KERNEL_CHOICES,
    MAX_DEPTH,
    NUM_BLOCKS,
    NUM_STAGES,
    OFA_RESOLUTIONS,
)
from ofa_latency_kedro.search_space.network import block_cost_table

#: The seed's hardware numbers, in its order.
SEED_HARDWARE_FEATURES = ("cuda_cores", "memory_gb", "bandwidth_gb_s")

# int8 like the genes they index (`ArchBatch.GENE_DTYPES`): positions 0..2, and sums of them
# times 3 stay below 9; results that grow (joint indices) are widened to int64 where built.
_KERNEL_INDEX = np.full(max(KERNEL_CHOICES) + 1, -1, dtype=np.int8)
_KERNEL_INDEX[list(KERNEL_CHOICES)] = np.arange(len(KERNEL_CHOICES))
_EXPAND_INDEX = np.full(max(EXPAND_CHOICES) + 1, -1, dtype=np.int8)
_EXPAND_INDEX[list(EXPAND_CHOICES)] = np.arange(len(EXPAND_CHOICES))
_BYTES_PER_ELEMENT = 4  # float32 activations


def _block_one_hot(
    values: np.ndarray, index: np.ndarray, active: np.ndarray, width: int
) -> np.ndarray:
    """(n, 20 * width) one-hots of per-block choices; inactive blocks stay zero."""
    n = len(values)
    out = np.zeros((n, NUM_BLOCKS, width), dtype=np.float32)
    rows, blocks = np.nonzero(active)
    out[rows, blocks, index[values[rows, blocks]]] = 1.0
    return out.reshape(n, NUM_BLOCKS * width)


def seed128(batch: ArchBatch) -> np.ndarray:
    active = batch.active_mask
    ks = _block_one_hot(batch.ks, _KERNEL_INDEX, active, len(KERNEL_CHOICES))
    ex = _block_one_hot(batch.e, _EXPAND_INDEX, active, len(EXPAND_CHOICES))
    resolution = np.zeros((len(batch), 8), dtype=np.float32)
    resolution[np.arange(len(batch)), (batch.r - 112) // 16] = 1.0
    return np.concatenate([ks, ex, resolution], axis=1)


def analytic(batch: ArchBatch) -> np.ndarray:
    costs = block_cost_table(batch)
    n = len(batch)
    blocks = np.empty((n, 3, NUM_BLOCKS), dtype=np.float32)
    blocks[:, 0] = costs.block_macs
    blocks[:, 1] = costs.block_params
    blocks[:, 2] = costs.block_activations
    blocks *= np.array([1e-6, 1e-6, _BYTES_PER_ELEMENT * 1e-6], dtype=np.float32)[None, :, None]
    stages = blocks.reshape(n, 3, NUM_STAGES, MAX_DEPTH).sum(axis=3).reshape(n, 3 * NUM_STAGES)
    totals = np.stack(
        [
            costs.macs_exact * 1e-6,
            costs.params * 1e-6,
            blocks[:, 2].sum(axis=1),
            batch.active_mask.sum(axis=1),
            batch.r / 224.0,
            batch.width_mult,
        ],
        axis=1,
    ).astype(np.float32)
    return np.concatenate(
        [blocks.reshape(n, 3 * NUM_BLOCKS), stages, batch.d.astype(np.float32), totals], axis=1
    )


def resolution_positions(batch: ArchBatch, resolutions: Sequence[int]) -> np.ndarray:
    """Index of every subnet's resolution in ``resolutions``; an error names one missing."""
    resolutions = np.asarray(resolutions)
    position = np.searchsorted(resolutions, batch.r)
    clipped = np.minimum(position, len(resolutions) - 1)
    unknown = resolutions[clipped] != batch.r
    if np.any(unknown):
        raise ValueError(
            f"resolution {int(batch.r[np.argmax(unknown)])} is not among the encoder's "
            f"resolutions {', '.join(map(str, resolutions))}"
        )
    return clipped


def joint_indices(batch: ArchBatch, resolutions: Sequence[int] = OFA_RESOLUTIONS) -> np.ndarray:
    """(n, 21) positions of the ones of `joint`: one per block (-1 when inactive), then the
    resolution's own position. Sums over a weight table indexed by them are what a linear
    model on `joint` computes, without building the (mostly zero) one-hot matrix."""
    n_r = len(resolutions)
    r_index = resolution_positions(batch, resolutions)
    choices = len(KERNEL_CHOICES) * len(EXPAND_CHOICES)
    choice = _KERNEL_INDEX[batch.ks] * len(EXPAND_CHOICES) + _EXPAND_INDEX[batch.e]
    blocks = np.arange(NUM_BLOCKS)[None, :]
    index = ((blocks * choices + choice) * n_r + r_index[:, None]).astype(np.int64)
    index[~batch.active_mask] = -1
    return np.concatenate([index, (NUM_BLOCKS * choices * n_r + r_index)[:, None]], axis=1)


def joint_width(n_resolutions: int) -> int:
    return NUM_BLOCKS * len(KERNEL_CHOICES) * len(EXPAND_CHOICES) * n_resolutions + n_resolutions


def joint(batch: ArchBatch, resolutions: Sequence[int] = OFA_RESOLUTIONS) -> np.ndarray:
    index = joint_indices(batch, resolutions)
    out = np.zeros((len(batch), joint_width(len(resolutions))), dtype=np.float32)
    rows, columns = np.nonzero(index >= 0)
    out[rows, index[rows, columns]] = 1.0
    return out


@dataclass(frozen=True)
class Encoder:
    """A named encoding (``seed128``, ``analytic+seed128``, ...) with its options; stored by
    name in predictor checkpoints, so a checkpoint knows its encoder."""

    name: str
    resolutions: tuple[int, ...] = OFA_RESOLUTIONS
    parts: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        parts = tuple(part.strip() for part in self.name.split("+"))
        unknown = [p for p in parts if p not in ENCODER_NAMES]
        if unknown or not parts:
            raise ValueError(
                f"unknown encoder {self.name!r}; known encoders: {', '.join(ENCODER_NAMES)} "
                "(join with '+')"
            )
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "resolutions", tuple(int(r) for r in self.resolutions))

    def dimension(self) -> int:
        return self.encode(ArchBatch.from_archs([_PROBE_ARCH]), np.zeros((1, 3))).shape[1]

    def encode(self, batch: ArchBatch, hardware: np.ndarray | None = None) -> np.ndarray:
        """(n, d) float32 features; ``hardware`` is (n, 3) seed hardware numbers for seed131."""
        blocks = []
        for part in self.parts:
            if part == "seed128":
                blocks.append(seed128(batch))
            elif part == "seed131":
                if hardware is None:
                    raise ValueError(
                        "encoder 'seed131' needs the hardware numbers (CUDA cores, memory GB, "
                        "bandwidth GB/s) of every row"
                    )
                blocks.append(
                    np.concatenate([seed128(batch), np.asarray(hardware, np.float32)], axis=1)
                )
            elif part == "analytic":
                blocks.append(analytic(batch))
            elif part == "joint":
                blocks.append(joint(batch, self.resolutions))
        return np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "resolutions": list(self.resolutions)}

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> Encoder:
        return cls(
            name=str(values["name"]), resolutions=tuple(values.get("resolutions", OFA_RESOLUTIONS))
        )


ENCODER_NAMES = ("seed128", "seed131", "analytic", "joint")
_PROBE_ARCH = {"ks": [3] * NUM_BLOCKS, "e": [3] * NUM_BLOCKS, "d": [2] * NUM_STAGES, "r": [224]}


def get_encoder(name: str, **options: object) -> Encoder:
    return Encoder(name=name, **options)  # type: ignore[arg-type]
