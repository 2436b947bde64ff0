"""``params:sampling``: which subnets to measure, on which device, with which backend and
protocol, here or on a Ray cluster."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.measurement.backends import BACKENDS, DEFAULT_BACKEND
from ofa_latency_kedro.measurement.log import ON_DAMAGED_ROWS
from ofa_latency_kedro.measurement.protocol import Protocol
from ofa_latency_kedro.nas.frontier import FrontierSettings
from ofa_latency_kedro.search_space import SearchSpace, get_space
from ofa_latency_kedro.settings_dict import from_settings

_BACKEND_NAMES = tuple(BACKENDS)
#: How a run chooses the subnets it adds: uniformly at random, or near the search budgets.
STRATEGIES = ("random", "frontier")


@dataclass(frozen=True)
class SamplingRaySettings:
    """``sampling.ray``: ``address`` None measures in this process; ``auto``, ``host:port``
    or ``ray://host:port`` sends every measurement to the node of that Ray cluster that
    offers the custom resource ``resource`` (None: ``hw:<hardware>``), each task reserving
    ``num_cpus`` CPUs there."""

    address: str | None = None
    resource: str | None = None
    num_cpus: float = 1.0

    def __post_init__(self) -> None:
        if not self.num_cpus > 0:
            raise ParameterError("num_cpus", f"must be positive, got {self.num_cpus!r}")


@dataclass(frozen=True)
class SamplingSettings:
    """One sampling run, which measures into ``<hardware>_<space>.csv`` of the latency folder.

    - ``hardware``: the device's name in the dataset's file name; ``auto`` names this
      machine's device (e.g. ``AMD_EPYC_CPU``, or ``note10_lookuptable`` for the Note10
      lookup tables); required with Ray.
    - ``space``: ``ofa``, ``compofa`` or ``compofa-elastic``; ``resolutions``: ``seed``
      (160..224 step 16), ``ofa`` (128..224 step 4) or a list; ``width_mult``: 1.0 or 1.2.
    - ``num_subnets``: distinct subnets (by canonical key) the dataset holds after the run;
      ``seed``: the same seed draws the same subnets, and a larger ``num_subnets`` extends
      the dataset.
    - ``strategy``: ``random`` draws the subnets uniformly from the space; ``frontier``
      keeps the subnets the dataset holds (an initial random set, measured first with
      ``random``), trains a predictor on them and adds new subnets, up to ``num_subnets`` in
      all, from the populations of evolutionary searches near the latency budgets
      (`FrontierSettings`, under ``frontier``).
    - ``backend``: ``torch-cpu``, ``torch-cuda``, ``torch-cuda-graph``, ``onnxruntime-cpu``
      or ``lut`` (OFA's lookup tables in the folder ``lut_dir``, which only ``lut`` takes).
    - ``progress``: a bar with rate and ETA (None: only on a terminal).
    - ``on_damaged_rows``: what a resumed run does with lines of the dataset that are not
      rows (e.g. two writes merged into one line): ``raise`` stops naming file and line;
      ``reject`` moves them to ``<hardware>_<space>.rejected.csv`` (appended, with their line
      numbers), rewrites the dataset without them, warns with the count and measures their
      subnets again.
    - ``protocol``: how subnets are timed (`Protocol`); ``ray``: where
      (`SamplingRaySettings`).
    """

    hardware: str = "auto"
    space: str = "ofa"
    resolutions: str | tuple[int, ...] = "seed"
    width_mult: float = 1.0
    num_subnets: int = 200
    seed: int = 0
    strategy: Literal[STRATEGIES] = STRATEGIES[0]
    frontier: FrontierSettings = field(default_factory=FrontierSettings)
    backend: Literal[_BACKEND_NAMES] = DEFAULT_BACKEND
    lut_dir: str | None = None
    progress: bool | None = True
    on_damaged_rows: Literal[ON_DAMAGED_ROWS] = ON_DAMAGED_ROWS[0]
    protocol: Protocol = field(default_factory=Protocol)
    ray: SamplingRaySettings = field(default_factory=SamplingRaySettings)

    def __post_init__(self) -> None:
        if self.num_subnets < 1:
            raise ParameterError("num_subnets", f"must be at least 1, got {self.num_subnets!r}")
        if not self.hardware or any(c in self.hardware for c in '/\\:*?"<>|'):
            raise ParameterError(
                "hardware", f"must be a file-name-safe name or auto, got {self.hardware!r}"
            )
        if self.ray.address and self.hardware == "auto":
            raise ParameterError(
                "hardware",
                "must name the device when measuring on Ray (sampling.ray.address is set): "
                "tasks go to the node that offers the resource 'hw:<hardware>'",
            )
        if self.strategy not in STRATEGIES:
            raise ParameterError(
                "strategy", f"must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        if self.backend not in BACKENDS:
            raise ParameterError(
                "backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        if self.backend == "lut" and self.lut_dir is None:
            raise ParameterError(
                "lut_dir",
                "must be given for the 'lut' backend: a folder of OFA "
                "'<resolution>_lookup_table.yaml' files",
            )
        if self.backend != "lut" and self.lut_dir is not None:
            raise ParameterError(
                "lut_dir", f"only applies to the 'lut' backend, not {self.backend!r}"
            )
        for name, arguments in (
            ("space", {"name": self.space}),
            ("resolutions", {"name": "ofa", "resolutions": self.resolutions}),
            ("width_mult", {"name": "ofa", "width_mult": self.width_mult}),
        ):
            try:
                get_space(**arguments)
            except ValueError as exc:
                raise ParameterError(name, f"is not usable: {exc}") from None

    @property
    def search_space(self) -> SearchSpace:
        return get_space(self.space, resolutions=self.resolutions, width_mult=self.width_mult)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | SamplingSettings | None) -> SamplingSettings:
        return from_settings(cls, values, "sampling")
