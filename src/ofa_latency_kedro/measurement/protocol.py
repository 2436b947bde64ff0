"""The measurement protocol and the robust statistics it reports.

Shared machines slow a run down for seconds at a time (another process, a noisy neighbour on
the host), which moves every plain timing of a subnet by up to 20%. With ``reference`` on, the
protocol pairs every timed pass of a subnet with a pass of one fixed reference subnet just
before it, and reports the subnet's time relative to the reference's, scaled by the
reference's latency measured once per dataset (``reference_ms``): a slowdown that lasts longer
than two passes cancels out. ``benchmarks/sampling_benchmark.py`` measures the effect (plain
and paired figures from the same timed passes; its table is in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.settings_dict import from_settings

STATISTICS = ("median", "min", "mean")

#: The fixed subnet every timed pass is paired with when ``reference`` is on: a mid-sized
#: OFA subnet (depth 3, kernel 5, expand 4 everywhere, resolution 192, width 1.0).
REFERENCE_ARCH = {"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5, "r": [192], "width_mult": 1.0}
#: How far (relative) the reference subnet may measure now from a dataset's ``reference_ms``
#: before sampling and verification warn that this machine's speed has drifted.
REFERENCE_DRIFT_WARNING = 0.05


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Protocol:
    """How subnets are timed (``sampling.protocol``; a dataset's sidecar keeps it).

    Every subnet is built with random weights, in inference mode, and fed one fixed input of
    its own resolution, drawn with ``input_seed``:

    - ``batch_size``: images per forward pass.
    - ``warmup_runs``: untimed passes per subnet before timing.
    - ``rounds`` x ``runs_per_round``: the timed passes; the rounds of ``interleave``
      subnets take turns (and those subnets' rows are written together).
    - ``threads``: intra-op threads (None: every CPU the process may use; 1, the default, is
      the most repeatable on shared machines and matches single-core mobile deployment).
    - ``fold_bn``: fold BatchNorm into the convolutions (else BatchNorm runs in eval mode).
    - ``statistic``: ``median``, ``min`` or ``mean`` of the timed passes is ``latency``,
      reported with the passes' 10th and 90th percentiles.
    - ``reference`` (None: on for CPU backends): pair each pass with one of `REFERENCE_ARCH`
      and report ``time / reference time * reference_ms``; ``reference_ms`` (None: measured
      at the start of a dataset) is kept with the dataset.
    - ``repeat_probe``: subnets measured again at the end of a run, so that every run
      reports its own noise.
    """

    batch_size: int = 1
    warmup_runs: int = 10
    rounds: int = 4
    runs_per_round: int = 10
    interleave: int = 8
    threads: int | None = 1
    fold_bn: bool = True
    statistic: Literal[STATISTICS] = "median"
    reference: bool | None = None
    reference_ms: float | None = None
    repeat_probe: int = 5
    input_seed: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (
            ("batch_size", 1),
            ("warmup_runs", 0),
            ("rounds", 1),
            ("runs_per_round", 1),
            ("interleave", 1),
            ("repeat_probe", 0),
            ("input_seed", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ParameterError(name, f"must be an integer >= {minimum}, got {value!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ParameterError(
                "threads", f"must be a positive integer or null, got {self.threads!r}"
            )
        if self.reference not in (None, True, False):
            raise ParameterError(
                "reference", f"must be true, false or null, got {self.reference!r}"
            )
        if self.reference_ms is not None and (
            isinstance(self.reference_ms, bool)
            or not isinstance(self.reference_ms, (int, float))
            or not self.reference_ms > 0
        ):
            raise ParameterError(
                "reference_ms", f"must be a positive number or null, got {self.reference_ms!r}"
            )
        if self.statistic not in STATISTICS:
            raise ParameterError(
                "statistic", f"must be one of {', '.join(STATISTICS)}, got {self.statistic!r}"
            )

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any] | Protocol | None, what: str = "protocol"
    ) -> Protocol:
        """The protocol of a settings dict; ``what`` names it in errors (``sampling.protocol``)."""
        return from_settings(cls, values, what)

    @property
    def resolved_threads(self) -> int:
        return self.threads or available_cpus()

    @property
    def timed_runs(self) -> int:
        return self.rounds * self.runs_per_round

    def to_dict(self) -> dict[str, Any]:
        """The protocol as stored beside the data (threads resolved to a number)."""
        return {**asdict(self), "threads": self.resolved_threads}


@dataclass(frozen=True)
class Timing:
    """One subnet's latency in milliseconds per forward pass: the protocol's statistic, the
    10th and 90th percentiles of the timed passes, and how many passes there were."""

    latency: float
    p10: float
    p90: float
    runs: int

    @classmethod
    def from_samples(
        cls,
        samples_ms: np.ndarray,
        statistic: Literal[STATISTICS] = "median",
        reference_samples_ms: np.ndarray | None = None,
        reference_ms: float | None = None,
    ) -> Timing:
        """Summarise per-pass times; with reference passes (paired, same shape) each pass is
        first expressed as ``time / reference time * reference_ms``."""
        values = _checked(samples_ms)
        if reference_samples_ms is not None:
            if reference_ms is None:
                raise ValueError("reference passes need reference_ms to scale them")
            references = _checked(reference_samples_ms)
            if references.shape != values.shape:
                raise ValueError(
                    f"reference passes {references.shape} do not pair with passes {values.shape}"
                )
            values = values / references * reference_ms
        return cls(
            latency=summarize(values, statistic),
            p10=float(np.percentile(values, 10)),
            p90=float(np.percentile(values, 90)),
            runs=int(values.size),
        )

    @classmethod
    def exact(cls, value_ms: float) -> Timing:
        """A value that is not sampled (a lookup-table sum): no spread, one "run"."""
        return cls(latency=value_ms, p10=value_ms, p90=value_ms, runs=1)


@dataclass(frozen=True)
class ReferenceCheck:
    """The reference subnet measured now, as a calibration measures it (``now_ms``), against
    the dataset's calibration (``dataset_ms``, its ``reference_ms``). ``calibrated``: the two
    are one measurement, this session's calibration of a new dataset.

    A dataset keeps its own scale whatever the check says: every row is a time relative to
    the reference's, scaled by ``dataset_ms``; the check only makes a drift of this machine
    visible."""

    now_ms: float
    dataset_ms: float
    calibrated: bool = False

    @property
    def drift(self) -> float:
        """How much slower (positive) or faster the machine runs the reference now."""
        return self.now_ms / self.dataset_ms - 1

    @property
    def drifted(self) -> bool:
        return abs(self.drift) > REFERENCE_DRIFT_WARNING

    def record(self) -> dict[str, Any]:
        """The check's fields of a sampling session (the sidecar's session log)."""
        how = (
            "this session calibrated the dataset's reference"
            if self.calibrated
            else "measured at the session's start"
        )
        return {
            "reference_now_ms": self.now_ms,
            "reference_drift": self.drift,
            "reference_check": how,
        }

    def warning(self, what: str) -> str:
        """What a drift beyond `REFERENCE_DRIFT_WARNING` means, for ``what`` (a dataset)."""
        return (
            f"{what}: this machine's reference subnet now measures {self.now_ms:.2f} ms, the "
            f"dataset's calibration {self.dataset_ms:.2f} ms ({self.drift:+.1%}): the machine "
            f"runs {'slower' if self.drift > 0 else 'faster'} than when the dataset was "
            f"calibrated, by more than {REFERENCE_DRIFT_WARNING:.0%}; the dataset keeps its "
            "own scale (rows are reported relative to the reference and scaled by "
            f"{self.dataset_ms:.2f} ms)"
        )


def _checked(samples_ms: np.ndarray) -> np.ndarray:
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"timing samples must be positive and finite, got {values!r}")
    return values


def summarize(samples_ms: np.ndarray, statistic: str) -> float:
    """One latency from per-pass times, by the named statistic."""
    values = np.asarray(samples_ms, dtype=np.float64)
    if statistic == "median":
        return float(np.median(values))
    if statistic == "min":
        return float(values.min())
    if statistic == "mean":
        return float(values.mean())
    raise ParameterError("statistic", f"must be one of {', '.join(STATISTICS)}, got {statistic!r}")


def relative_differences(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """|second - first| / first, elementwise: the noise measure of repeated measurements."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    return np.abs(second - first) / first
