"""``params:nas``: which latency predictors are searched, under which budgets and objective,
how the evolution runs, and how the winners are verified."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.nas.search import SearchSettings
from ofa_latency_kedro.nas.verify import ROUNDS
from ofa_latency_kedro.pipelines.common import names_or_all
from ofa_latency_kedro.settings_dict import from_settings


@dataclass(frozen=True)
class NasSettings(SearchSettings):
    """The search of every chosen latency predictor: the `SearchSettings` (budgets
    ``constraints_ms``, ``objective``, ``space``, ``resolutions``) with their
    `EvolutionSettings` (``population_size``, ``generations``, ``parent_ratio``,
    ``mutation_ratio``, ``mutate_prob``, ``oversample``, ``prefer_headroom``,
    ``max_rounds``, ``seed``), and

    - ``predictors``: ``all``, or the names (``<hardware>_<space>``) of the latency
      predictors to search with; a name may be a registered MLflow model,
      ``models:/<name>@<alias>`` or ``models:/<name>/<version>``, searched in place of the
      checkpoint of the dataset it predicts.
    - ``progress``: a bar over generations with rate and ETA (None: only on a terminal).
    - ``verify``: measure each winner when its device is this machine (or a lookup table),
      and search again, ``verify_rounds`` times at most, under a budget scaled by how far it
      missed while it measures more than 3% from its budget.
    """

    predictors: str | tuple[str, ...] = "all"
    progress: bool | None = True
    verify: bool = True
    verify_rounds: int = ROUNDS

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "predictors", names_or_all(self.predictors))
        if not self.predictors:
            raise ParameterError("predictors", "names no predictor; give all or predictor names")
        if self.verify_rounds < 0:
            raise ParameterError("verify_rounds", f"must be at least 0, got {self.verify_rounds!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | NasSettings | None) -> NasSettings:
        return from_settings(cls, values, "nas")
