"""``params:encoding``: which latency CSVs become model input, how bad rows and repeated
measurements are handled, and how the subnets split."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ofa_latency_kedro.encoding.loading import ON_BAD_ROWS
from ofa_latency_kedro.encoding.splits import DEFAULT_FRACTIONS, DEFAULT_SPLIT, SPLITS
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.pipelines.common import names_or_all
from ofa_latency_kedro.settings_dict import from_settings


@dataclass(frozen=True)
class EncodingSettings:
    """The model input built from the latency folder.

    - ``datasets``: ``all``, or the dataset names (``<hardware>_<space>``, the CSVs' names)
      to use.
    - ``on_bad_rows``: ``raise`` stops at the first bad row, naming file, line and field;
      ``skip`` leaves bad rows out and counts them in the encoding report.
    - ``merge_repeats``: one row per distinct subnet (the median latency of its repeats).
    - ``split``: ``key`` splits distinct subnets at random, none on two sides; ``seed`` is
      the seed's file-order split (for side-by-side comparison).
    - ``fractions``: train, validation and test shares (summing to 1); ``seed``: the
      ``key`` split's shuffle.
    """

    datasets: str | tuple[str, ...] = "all"
    on_bad_rows: Literal[ON_BAD_ROWS] = ON_BAD_ROWS[0]
    merge_repeats: bool = True
    split: Literal[SPLITS] = DEFAULT_SPLIT
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", names_or_all(self.datasets))
        if not self.datasets:
            raise ParameterError("datasets", "names no dataset; give all or dataset names")
        for name, known in (("on_bad_rows", ON_BAD_ROWS), ("split", SPLITS)):
            if getattr(self, name) not in known:
                raise ParameterError(
                    name, f"must be one of {', '.join(known)}, got {getattr(self, name)!r}"
                )
        fractions = self.fractions
        if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1):
            raise ParameterError(
                "fractions",
                f"must be three non-negative numbers (train, val, test) summing to 1, "
                f"got {list(fractions)}",
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | EncodingSettings | None) -> EncodingSettings:
        return from_settings(cls, values, "encoding")
