"""`ArchBatch`: many subnets as integer arrays, so that sampling, mutation, encoding and
prediction work on whole populations at once instead of one Python dict at a time.

Genes are held in the smallest integer type that holds them (`GENE_DTYPES`: int8 kernels,
expand ratios and depths, int16 resolutions), so a million subnets take 55 MB; the
constructor converts whatever it is given and refuses values that type cannot hold. Code that
computes with genes (squares of the resolution, shifts, products of channel counts) widens
them to int64 first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ofa_latency_kedro.search_space.arch import Arch, ArchLike
from ofa_latency_kedro.search_space.bulk import read_genes
from ofa_latency_kedro.search_space.constants import (
    EXPAND_CHOICES,
    KERNEL_CHOICES,
    MAX_DEPTH,
    NUM_BLOCKS,
    NUM_STAGES,
)

#: The columns that hold a batch in a table (`ArchBatch.to_frame` / `from_frame`).
ARCH_COLUMNS = (
    *(f"ks_{i}" for i in range(NUM_BLOCKS)),
    *(f"e_{i}" for i in range(NUM_BLOCKS)),
    *(f"d_{s}" for s in range(NUM_STAGES)),
    "r",
    "width_mult",
)
#: The integer type of each gene array: kernels, expand ratios and depths are at most 7,
#: resolutions at most 224.
GENE_DTYPES = {name: np.dtype(np.int8) for name in ("ks", "e", "d")} | {"r": np.dtype(np.int16)}

_BLOCK_POSITION = (np.arange(NUM_BLOCKS) % MAX_DEPTH).astype(np.int8)
_BLOCK_SHIFT = (np.int64(1) << (2 * np.arange(NUM_BLOCKS))).astype(np.int64)
_STAGE_SHIFT = (np.int64(1) << (40 + 2 * np.arange(NUM_STAGES))).astype(np.int64)
_BLOCK_STAGE = np.arange(NUM_BLOCKS) // MAX_DEPTH


def choice_positions(genes: np.ndarray, choices: Sequence[int]) -> np.ndarray:
    """int8 position of every gene among its sorted ``choices`` (genes are choices): the
    number of choices below it. Faster than a lookup table, which NumPy would index only
    after copying the int8 genes into int64 indices."""
    positions = np.zeros(genes.shape, dtype=np.int8)
    for choice in choices[:-1]:
        positions += genes > choice
    return positions


def _compact(name: str, values: object, dtype: np.dtype) -> np.ndarray:
    """``values`` as an array of ``dtype``; an error for values it would not hold exactly
    (a cast that wraps around, a fraction, NaN), never a silent change."""
    array = np.asarray(values)
    if array.dtype == dtype:
        return array
    if array.dtype.kind not in "iuf":
        raise ValueError(f"ArchBatch.{name} must hold integers, got an array of {array.dtype}")
    with np.errstate(invalid="ignore"):  # NaN and infinities are refused just below
        compact = array.astype(dtype)
    if not np.array_equal(compact, array):
        wrong = np.flatnonzero((compact != array).reshape(-1))[0]
        raise ValueError(
            f"ArchBatch.{name} holds {array.reshape(-1)[wrong].item()!r}, which {dtype} does "
            "not hold exactly (genes are small integers: see GENE_DTYPES)"
        )
    return compact


def _frame_values(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    values = frame[list(columns)].to_numpy()
    if values.dtype == object:  # nullable integer columns: missing values become NaN
        values = frame[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    return values


@dataclass(frozen=True)
class ArchBatch:
    """``n`` subnets: ``ks``/``e`` of shape (n, 20), ``d`` (n, 5), ``r`` and ``width_mult`` (n,).

    Instances hold valid values: they come from validated `Arch` objects or from a search
    space's sampling, mutation and crossover, which stay inside the space by construction.
    Genes are stored as `GENE_DTYPES`, ``width_mult`` as float64, whatever was passed.
    """

    ks: np.ndarray
    e: np.ndarray
    d: np.ndarray
    r: np.ndarray
    width_mult: np.ndarray

    def __post_init__(self) -> None:
        for name, dtype in GENE_DTYPES.items():
            values = getattr(self, name)
            if not isinstance(values, np.ndarray) or values.dtype != dtype:
                object.__setattr__(self, name, _compact(name, values, dtype))
        object.__setattr__(self, "width_mult", np.asarray(self.width_mult, dtype=np.float64))
        if self.r.ndim != 1:
            raise ValueError(f"ArchBatch.r has shape {self.r.shape}, expected (n,)")
        n = len(self.r)
        shapes = {
            "ks": (n, NUM_BLOCKS),
            "e": (n, NUM_BLOCKS),
            "d": (n, NUM_STAGES),
            "width_mult": (n,),
        }
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(
                    f"ArchBatch.{name} has shape {getattr(self, name).shape}, expected {shape}"
                )

    @classmethod
    def from_archs(cls, archs: Iterable[ArchLike], *, width_mult: float | None = None) -> ArchBatch:
        """Parse and stack archs given in any form `Arch.parse` accepts, a whole list at once
        (`bulk.read_genes`): the same values as `Arch.parse` of each, and for a bad one the
        same `ArchError`, with ``item`` its position."""
        genes, widths = read_genes(archs if isinstance(archs, list) else list(archs), width_mult)
        return cls(
            ks=genes[:, :NUM_BLOCKS].astype(np.int8),
            e=genes[:, NUM_BLOCKS : 2 * NUM_BLOCKS].astype(np.int8),
            d=genes[:, 2 * NUM_BLOCKS : 2 * NUM_BLOCKS + NUM_STAGES].astype(np.int8),
            r=genes[:, -1].copy(),
            width_mult=widths,
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ArchBatch:
        """The batch held in a table's `ARCH_COLUMNS` (no per-row parsing)."""
        missing = [c for c in ARCH_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(
                f"table has no arch columns {', '.join(missing[:5])}"
                f"{' ...' if len(missing) > 5 else ''}; build it with ArchBatch.to_frame"
            )
        return cls(
            ks=_frame_values(frame, ARCH_COLUMNS[:NUM_BLOCKS]),
            e=_frame_values(frame, ARCH_COLUMNS[NUM_BLOCKS : 2 * NUM_BLOCKS]),
            d=_frame_values(frame, ARCH_COLUMNS[2 * NUM_BLOCKS : 2 * NUM_BLOCKS + NUM_STAGES]),
            r=_frame_values(frame, ["r"])[:, 0],
            width_mult=frame["width_mult"].to_numpy(dtype=np.float64),
        )

    def to_frame(self) -> pd.DataFrame:
        """The batch as `ARCH_COLUMNS` of a table, one row per subnet, in `GENE_DTYPES`."""
        return pd.DataFrame(
            np.concatenate([self.ks, self.e, self.d], axis=1),
            columns=list(ARCH_COLUMNS[: 2 * NUM_BLOCKS + NUM_STAGES]),
        ).assign(r=self.r, width_mult=self.width_mult)

    @classmethod
    def concatenate(cls, batches: Sequence[ArchBatch]) -> ArchBatch:
        return cls(
            ks=np.concatenate([b.ks for b in batches]),
            e=np.concatenate([b.e for b in batches]),
            d=np.concatenate([b.d for b in batches]),
            r=np.concatenate([b.r for b in batches]),
            width_mult=np.concatenate([b.width_mult for b in batches]),
        )

    def __len__(self) -> int:
        return len(self.r)

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int]) -> ArchBatch:
        """Rows by slice, integer array or boolean mask (an int gives a batch of one)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return ArchBatch(
            ks=self.ks[index],
            e=self.e[index],
            d=self.d[index],
            r=self.r[index],
            width_mult=self.width_mult[index],
        )

    def at_width(self, width_mult: float) -> ArchBatch:
        """The same genes on the network of another width multiplier."""
        return ArchBatch(self.ks, self.e, self.d, self.r, np.full(len(self), float(width_mult)))

    def to_archs(self) -> list[Arch]:
        return [
            Arch(ks=tuple(k), e=tuple(e), d=tuple(d), r=int(r), width_mult=float(w))
            for k, e, d, r, w in zip(
                self.ks.tolist(),
                self.e.tolist(),
                self.d.tolist(),
                self.r.tolist(),
                self.width_mult.tolist(),
                strict=True,
            )
        ]

    @property
    def active_mask(self) -> np.ndarray:
        """(n, 20) bool: block j of stage s runs when j < d[s]."""
        return _BLOCK_POSITION[None, :] < self.d[:, _BLOCK_STAGE]

    def canonical_codes(self) -> np.ndarray:
        """(n, 47) int16 rows equal exactly when the subnets are the same (inactive blocks 0)."""
        mask = self.active_mask
        width_code = np.rint(self.width_mult * 10).astype(np.int16)
        return np.concatenate(
            [
                np.where(mask, self.ks, 0),
                np.where(mask, self.e, 0),
                self.d,
                self.r[:, None],
                width_code[:, None],
            ],
            axis=1,
            dtype=np.int16,
        )

    def _packed_halves(self) -> tuple[np.ndarray, np.ndarray]:
        """The two int64 halves of `packed_keys` (computed in int64 throughout: the genes'
        own types would overflow at the first shift)."""
        mask = self.active_mask
        kernel = np.where(mask, choice_positions(self.ks, KERNEL_CHOICES) + 1, 0)
        expand = np.where(mask, choice_positions(self.e, EXPAND_CHOICES) + 1, 0)
        high = kernel @ _BLOCK_SHIFT + (self.d.astype(np.int64) - 2) @ _STAGE_SHIFT
        high += ((self.r.astype(np.int64) - 128) // 4) << 50
        high += (np.rint(self.width_mult * 10).astype(np.int64) == 12).astype(np.int64) << 55
        return high, expand @ _BLOCK_SHIFT

    def packed_keys(self) -> list[int]:
        """One int per row, equal exactly when the subnets are the same (a compact
        `canonical_key` for caches): 2 bits per block kernel and expand (0 when inactive),
        2 per stage depth, 5 for the resolution, 1 for the width."""
        high, low = self._packed_halves()
        return [(h << 40) | lo for h, lo in zip(high.tolist(), low.tolist(), strict=True)]

    def canonical_keys(self) -> list[str]:
        """`Arch.canonical_key` of every row."""
        return [arch.canonical_key for arch in self.to_archs()]

    def unique_index(self) -> np.ndarray:
        """Indices of the first occurrence of each distinct subnet, in batch order."""
        high, low = self._packed_halves()
        order = np.lexsort((low, high))  # stable: equal keys stay in batch order
        high, low = high[order], low[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (high[1:] != high[:-1]) | (low[1:] != low[:-1])
        return np.sort(order[first])
