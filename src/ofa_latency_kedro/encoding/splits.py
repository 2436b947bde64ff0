"""Train/validation/test splits of latency tables.

``seed``  the seed's split: each file in file order, first 70% train, next 15% validation,
          last 15% test (floors as the seed computed them). It puts repeats of one subnet on
          both sides when a file measures a subnet more than once.
``key``   the default: distinct subnets (canonical keys) shuffled with a seed and cut
          70/15/15, per dataset, so no subnet is on two sides.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SPLITS = ("seed", "key")
#: The default split: distinct subnets at random, 70% train, 15% validation, 15% test.
DEFAULT_SPLIT = "key"
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
SPLIT_NAMES = ("train", "val", "test")


def _cuts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    """Ends of the train and validation parts (floors, as the seed computed them; with no
    test fraction, validation takes the rest)."""
    train = math.floor(fractions[0] * n)
    val = n - train if fractions[2] == 0 else math.floor(fractions[1] * n)
    return train, train + val


def _check(fractions: tuple[float, float, float]) -> tuple[float, float, float]:
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1, got {fractions}"
        )
    return fractions  # type: ignore[return-value]


def seed_split(
    table: pd.DataFrame, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
) -> pd.Series:
    """The seed's file-order split of every source file."""
    fractions = _check(fractions)
    labels = pd.Series(index=table.index, dtype=object)
    for _, rows in table.groupby("source", sort=False):
        order = rows.sort_values("line").index
        train, val = _cuts(len(order), fractions)
        labels[order[:train]] = "train"
        labels[order[train:val]] = "val"
        labels[order[val:]] = "test"
    return labels


def key_split(
    table: pd.DataFrame, seed: int = 0, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
) -> pd.Series:
    """Split distinct subnets (canonical keys) of every (hardware, space) dataset at random."""
    fractions = _check(fractions)
    labels = pd.Series(index=table.index, dtype=object)
    rng = np.random.default_rng(seed)
    for _, rows in table.groupby(["hardware", "space"], sort=False, dropna=False):
        keys = pd.unique(rows["canonical_key"])
        shuffled = keys[rng.permutation(len(keys))]
        train, val = _cuts(len(keys), fractions)
        side = {key: "train" for key in shuffled[:train]}
        side.update({key: "val" for key in shuffled[train:val]})
        side.update({key: "test" for key in shuffled[val:]})
        labels[rows.index] = rows["canonical_key"].map(side)
    return labels


def split_table(
    table: pd.DataFrame,
    method: str = DEFAULT_SPLIT,
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> pd.DataFrame:
    """The table with a ``split`` column (train / val / test)."""
    if method == "seed":
        labels = seed_split(table, fractions)
    elif method == "key":
        labels = key_split(table, seed, fractions)
    else:
        raise ValueError(f"unknown split {method!r}; use one of {', '.join(SPLITS)}")
    return table.assign(split=labels.astype(str))


def leaked_subnets(table: pd.DataFrame) -> int:
    """How many subnets of a split table appear on more than one side."""
    sides = table.groupby(["hardware", "space", "canonical_key"], dropna=False)["split"].nunique()
    return int((sides > 1).sum())
