"""The GPU backends measured on a GPU: repeat noise, throughput, agreement between backends,
and how latency grows with resolution.

``--subnets`` OFA subnets (seed ``--seed``) are measured by every backend at every batch
size, ``--passes`` times over, with the project's own backends and `Protocol` (defaults unless
``--protocol KEY=VALUE`` overrides a field). Printed, and written to ``--out`` as JSON:

- repeat noise per backend and batch size: median and p90 over subnets of
  |second - first| / first (every pair of consecutive passes);
- subnets per minute per backend and batch size: measurements of the sampled subnets / seconds
  spent on them, build, warm-up and timing included;
- the Spearman correlation between every two backends at each batch size, over the subnets
  both measured (each subnet's mean over its passes);
- the latency of one fixed mid-size subnet (`REFERENCE_ARCH`: kernel 5, expand 4, depth 3)
  at each of ``--resolutions``, its ratio to the smallest, and the growth exponent k of
  latency ~ resolution^k (k = 2 when the time follows the pixels);
- the device: GPU, driver, torch, CUDA and cuDNN versions, with the project's descriptor.

Work is done in groups of ``protocol.interleave`` subnets, each group by every backend and
batch size in turn; pass 2 repeats the groups of pass 1 in the same order. The resolution
curve and the first group (all passes) always run; after that no group is started once the
run would pass ``--budget-minutes`` by the pace so far, and the JSON's ``skipped`` says what
was left out. A backend that fails is reported with its error (exit status 1) while the
others go on. A CUDA backend on a machine without CUDA stops the script before any work,
naming the backend.

It imports only torch, numpy, pandas, tqdm and pyyaml besides the standard library (and
onnxruntime for its backend; no Kedro, MLflow or Ray), so it runs from a plain checkout with
``PYTHONPATH=src``. On a lent GPU machine (nvidia-h100-x1 or nvidia-h200), from the
repository root, with timeout_s=540; the figures go to $OUT/gpu_benchmark.json and the
printed tables to $OUT/gpu_benchmark.log:

    set -o pipefail; PYTHONPATH=src PYTHONUNBUFFERED=1 python3 benchmarks/gpu_benchmark.py --out $OUT/gpu_benchmark.json 2>&1 | tee $OUT/gpu_benchmark.log

The CPU self-check (seconds; what tests/benchmarks/test_gpu_benchmark.py runs, there with
Kedro, MLflow and Ray made unimportable):

    PYTHONPATH=src python benchmarks/gpu_benchmark.py --backends torch-cpu onnxruntime-cpu \
        --subnets 4 --batch-sizes 1 2 --resolutions 128 160 176 \
        --protocol warmup_runs=1 --protocol rounds=1 --protocol runs_per_round=2 \
        --protocol interleave=2 --protocol reference=false --out /tmp/gpu_benchmark.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ofa_latency_kedro.atomic import atomic_write_json
from ofa_latency_kedro.measurement.backends import BACKENDS, BackendUnavailable
from ofa_latency_kedro.measurement.measurers import LocalMeasurer
from ofa_latency_kedro.measurement.protocol import REFERENCE_ARCH, Protocol, relative_differences
from ofa_latency_kedro.search_space import Arch, ArchError, get_space

RESULTS = Path(__file__).resolve().parent / "results"
SPACE = "ofa"
DEFAULT_BACKENDS = ("torch-cuda", "torch-cuda-graph")
DEFAULT_BATCH_SIZES = (1, 64)
DEFAULT_RESOLUTIONS = tuple(range(128, 225, 16))
#: Backends whose timings vary: the lookup table is exact and needs tables, so it is left out.
TIMED_BACKENDS = tuple(name for name, cls in BACKENDS.items() if cls.kind != "lut")
CPU_CHECK = "--backends torch-cpu onnxruntime-cpu --subnets 4 --batch-sizes 1 --resolutions 128 160"


@dataclass(frozen=True)
class Config:
    """One backend at one batch size."""

    backend: str
    batch_size: int

    @property
    def label(self) -> str:
        return f"{self.backend}@{self.batch_size}"


@dataclass
class Run:
    """The measurements so far: per configuration, a (passes, subnets) array of latencies
    (NaN where not measured), the seconds and measurements it took, and its failure if any."""

    configs: list[Config]
    measurers: dict[Config, LocalMeasurer]
    passes: int
    subnets: int
    latencies: dict[Config, np.ndarray] = field(init=False)
    seconds: dict[Config, float] = field(init=False)
    measurements: dict[Config, int] = field(init=False)
    failures: dict[Config, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.latencies = {c: np.full((self.passes, self.subnets), np.nan) for c in self.configs}
        self.seconds = dict.fromkeys(self.configs, 0.0)
        self.measurements = dict.fromkeys(self.configs, 0)

    def measure(
        self, config: Config, archs: list[Arch], *, counted: bool = True
    ) -> list[float] | None:
        """Latencies (ms) of ``archs`` by one configuration, or None once it has failed;
        ``counted`` measurements go into its throughput."""
        if config in self.failures:
            return None
        measurer = self.measurers[config]
        started = time.perf_counter()
        try:
            rows = [
                row
                for group in measurer.iter_groups(
                    archs, hardware=measurer.default_hardware_name(), space=SPACE, progress=False
                )
                for row in group
            ]
        except Exception as exc:  # one backend's failure must not cost the others' figures
            self.failures[config] = f"{type(exc).__name__}: {exc}"
            print(f"FAILED {config.label}: {self.failures[config]}", file=sys.stderr)
            return None
        finally:
            if counted:
                self.seconds[config] += time.perf_counter() - started
        if counted:
            self.measurements[config] += len(rows)
        return [float(row["latency"]) for row in rows]


# -- arguments -------------------------------------------------------------------------------
def _protocol_setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--backends", nargs="+", choices=TIMED_BACKENDS, default=DEFAULT_BACKENDS)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=DEFAULT_BATCH_SIZES)
    parser.add_argument("--subnets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument(
        "--resolutions",
        nargs="+",
        type=int,
        default=DEFAULT_RESOLUTIONS,
        help="resolutions of the growth curve (OFA's: 128..224 in steps of 4)",
    )
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=7.5,
        help="start no group of subnets that would end the run past this",
    )
    parser.add_argument(
        "--protocol",
        action="append",
        type=_protocol_setting,
        default=[],
        metavar="KEY=VALUE",
        help="override a Protocol field (JSON value), e.g. rounds=2; repeatable",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "gpu_benchmark.json")
    args = parser.parse_args(argv)

    for name, values in (("--backends", args.backends), ("--batch-sizes", args.batch_sizes)):
        if len(set(values)) != len(values):
            parser.error(f"{name} names a value twice: {' '.join(map(str, values))}")
    for name, minimum in (("subnets", 1), ("passes", 2), ("budget_minutes", 0)):
        if getattr(args, name) < minimum:
            parser.error(f"--{name.replace('_', '-')} must be >= {minimum}")
    args.protocol = dict(args.protocol)
    if "batch_size" in args.protocol:
        parser.error("set batch sizes with --batch-sizes, not --protocol batch_size")
    try:
        for batch_size in args.batch_sizes:
            Protocol.from_dict({**args.protocol, "batch_size": batch_size})
        args.curve_archs = [Arch.parse(REFERENCE_ARCH).replace(r=r) for r in args.resolutions]
    except (ValueError, ArchError) as exc:
        parser.error(str(exc))
    if len(set(args.resolutions)) != len(args.resolutions):
        parser.error(f"--resolutions names a value twice: {args.resolutions}")
    return args


# -- the device ------------------------------------------------------------------------------
def nvidia_driver() -> str | None:
    """The NVIDIA driver version nvidia-smi reports, or None where it cannot be asked."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if lines else None


def device_descriptor(descriptor: dict[str, Any]) -> dict[str, Any]:
    """The project's hardware descriptor plus the versions that move GPU latency."""
    return {
        **descriptor,
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "driver": nvidia_driver() if descriptor.get("gpu") else None,
    }


def device_line(device: dict[str, Any]) -> str:
    gpu = device.get("gpu") or {}
    what = (
        f"{gpu.get('name')} ({gpu.get('memory_gb')} GB, {gpu.get('sms')} SMs), "
        f"driver {device.get('driver')}"
        if gpu
        else f"CPU {device.get('cpu_model')}, {device.get('threads_used')} thread(s)"
    )
    return (
        f"{what}; torch {device.get('torch')}, CUDA {device.get('cuda_runtime')}, "
        f"cuDNN {device.get('cudnn')}, Python {device.get('python')}"
    )


# -- figures ---------------------------------------------------------------------------------
def repeat_noise(latencies: np.ndarray) -> dict[str, Any]:
    """Median and p90 of |later - earlier| / earlier over consecutive passes of each subnet."""
    pairs = []
    for earlier, later in itertools.pairwise(latencies):
        both = np.isfinite(earlier) & np.isfinite(later)
        pairs.append(relative_differences(earlier[both], later[both]))
    diffs = np.concatenate(pairs)
    if diffs.size == 0:
        return {"pairs": 0, "median_rel_diff": None, "p90_rel_diff": None}
    return {
        "pairs": int(diffs.size),
        "median_rel_diff": float(np.median(diffs)),
        "p90_rel_diff": float(np.percentile(diffs, 90)),
    }


def mean_over_passes(latencies: np.ndarray) -> np.ndarray:
    """Each subnet's mean over the passes that measured it (NaN where none did)."""
    measured = np.isfinite(latencies)
    counts = measured.sum(axis=0)
    totals = np.where(measured, latencies, 0.0).sum(axis=0)
    return np.divide(totals, counts, out=np.full(counts.shape, np.nan), where=counts > 0)


def spearman(first: np.ndarray, second: np.ndarray) -> float | None:
    """Rank correlation (average ranks for ties); None with under two subnets or no spread."""
    if first.size < 2:
        return None
    ranks = [pd.Series(values).rank().to_numpy() for values in (first, second)]
    if np.ptp(ranks[0]) == 0 or np.ptp(ranks[1]) == 0:
        return None
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1])


def growth(resolutions: list[int], latencies: list[float] | None) -> dict[str, Any]:
    if latencies is None:
        return {"latency_ms": None, "ratio_to_smallest": None, "exponent": None}
    lat = np.asarray(latencies)
    exponent = float(np.polyfit(np.log(resolutions), np.log(lat), 1)[0]) if len(lat) >= 2 else None
    return {
        "latency_ms": lat.tolist(),
        "ratio_to_smallest": (lat / lat[int(np.argmin(resolutions))]).tolist(),
        "exponent": exponent,
    }


def _listed(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def summary(run: Run, args: argparse.Namespace, context: dict[str, Any]) -> dict[str, Any]:
    """Everything the script reports, as written to ``--out``."""
    results = []
    for config in run.configs:
        latencies = run.latencies[config]
        seconds = run.seconds[config]
        first = latencies[0][np.isfinite(latencies[0])]
        results.append(
            {
                "backend": config.backend,
                "batch_size": config.batch_size,
                "subnets": int(first.size),
                "measurements": run.measurements[config],
                "seconds": seconds,
                "subnets_per_minute": run.measurements[config] / seconds * 60
                if seconds > 0
                else None,
                **repeat_noise(latencies),
                "latency_ms": {
                    "min": float(first.min()) if first.size else None,
                    "median": float(np.median(first)) if first.size else None,
                    "max": float(first.max()) if first.size else None,
                },
                "failure": run.failures.get(config),
            }
        )
    correlations = []
    for batch_size in args.batch_sizes:
        for a, b in itertools.combinations(args.backends, 2):
            x = mean_over_passes(run.latencies[Config(a, batch_size)])
            y = mean_over_passes(run.latencies[Config(b, batch_size)])
            both = np.isfinite(x) & np.isfinite(y)
            correlations.append(
                {
                    "batch_size": batch_size,
                    "backends": [a, b],
                    "subnets": int(both.sum()),
                    "spearman": spearman(x[both], y[both]),
                }
            )
    curve = context.get("curve", {})
    return {
        "complete": context.get("complete", False),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "device": context["device"],
        "settings": {
            "space": SPACE,
            "backends": list(args.backends),
            "batch_sizes": list(args.batch_sizes),
            "subnets": args.subnets,
            "seed": args.seed,
            "passes": args.passes,
            "resolutions": list(args.resolutions),
            "budget_minutes": args.budget_minutes,
            "protocol_overrides": args.protocol,
        },
        "protocols": {c.label: run.measurers[c].protocol.to_dict() for c in run.configs},
        "results": results,
        "spearman": correlations,
        "resolution_curve": {
            "arch": {k: v for k, v in args.curve_archs[0].to_dict().items() if k != "r"},
            "resolutions": list(args.resolutions),
            "rows": [
                {
                    "backend": c.backend,
                    "batch_size": c.batch_size,
                    **growth(list(args.resolutions), curve.get(c)),
                }
                for c in run.configs
                if c in curve
            ],
        },
        "throughput": {
            "wall_seconds": context.get("wall_seconds"),
            "subnets_measured_by_all": int(
                np.all(
                    [np.isfinite(run.latencies[c]).all(axis=0) for c in run.configs], axis=0
                ).sum()
            ),
        },
        "skipped": list(run.skipped),
        "failures": {c.label: error for c, error in run.failures.items()},
        "subnet_archs": context["archs"],
        "latencies_ms": {c.label: [_listed(p) for p in run.latencies[c]] for c in run.configs},
    }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def print_tables(report: dict[str, Any]) -> None:
    settings = report["settings"]
    print(f"\ndevice: {device_line(report['device'])}")
    print(
        f"{settings['subnets']} {settings['space'].upper()} subnets (seed {settings['seed']}), "
        f"{settings['passes']} passes; protocol overrides: {settings['protocol_overrides'] or 'none'}\n"
    )
    print("| backend | batch | subnets | noise (median) | noise (p90) | subnets/min | median ms |")
    print("|---|---|---|---|---|---|---|")
    for row in report["results"]:
        print(
            f"| {row['backend']} | {row['batch_size']} | {row['subnets']} | "
            f"{_percent(row['median_rel_diff'])} | {_percent(row['p90_rel_diff'])} | "
            f"{_number(row['subnets_per_minute'], 1)} | {_number(row['latency_ms']['median'], 3)} |"
        )
    if report["spearman"]:
        print("\nSpearman between backends (each subnet's mean over its passes)\n")
        print("| batch | backends | subnets | Spearman |")
        print("|---|---|---|---|")
        for row in report["spearman"]:
            print(
                f"| {row['batch_size']} | {' vs '.join(row['backends'])} | {row['subnets']} | "
                f"{_number(row['spearman'], 4)} |"
            )
    curve = report["resolution_curve"]
    print(
        "\nLatency (ms) against resolution, one subnet (kernel 5, expand 4, depth 3, width 1.0); "
        "k: latency ~ resolution^k\n"
    )
    print(f"| backend | batch | {' | '.join(map(str, curve['resolutions']))} | k |")
    print(f"|---|---|{'---|' * len(curve['resolutions'])}---|")
    for row in curve["rows"]:
        cells = row["latency_ms"] or [None] * len(curve["resolutions"])
        print(
            f"| {row['backend']} | {row['batch_size']} | "
            f"{' | '.join(_number(v, 3) for v in cells)} | {_number(row['exponent'])} |"
        )
    print(
        f"\n{report['throughput']['subnets_measured_by_all']} subnets measured by every "
        f"backend and batch size in every pass, in {report['throughput']['wall_seconds']:.0f} s"
    )
    for line in report["skipped"]:
        print(f"skipped: {line}")
    for label, error in report["failures"].items():
        print(f"FAILED {label}: {error}")


# -- the run ---------------------------------------------------------------------------------
def open_measurers(stack: ExitStack, args: argparse.Namespace) -> dict[Config, LocalMeasurer]:
    """One entered measurer per backend and batch size; stops, naming the backend, when one
    cannot run here."""
    measurers = {}
    for backend in args.backends:
        for batch_size in args.batch_sizes:
            protocol = Protocol.from_dict({**args.protocol, "batch_size": batch_size})
            try:
                measurer = LocalMeasurer(backend, protocol)
            except BackendUnavailable as exc:
                raise SystemExit(
                    f"gpu_benchmark: {exc}. Run it on a machine with a CUDA GPU, or check the "
                    f"script on this CPU with: {CPU_CHECK}"
                ) from None
            measurers[Config(backend, batch_size)] = stack.enter_context(measurer)
    return measurers


def measure_all(
    run: Run, archs: list[Arch], chunk: int, deadline: float, save: Callable[[], None]
) -> None:
    """All passes over ``archs`` in groups of ``chunk``, within the deadline (see above),
    saving the figures after every group (a run killed early still leaves them)."""
    groups = [range(s, min(s + chunk, len(archs))) for s in range(0, len(archs), chunk)]
    first_pass_seconds = 0.0
    done: list[range] = []
    for index, group in enumerate(groups):
        now = time.perf_counter()
        if done:
            per_group = first_pass_seconds / len(done)
            predicted_end = now + per_group + (run.passes - 1) * (first_pass_seconds + per_group)
            if predicted_end > deadline:
                run.skipped.append(
                    f"subnets {group.start + 1}..{len(archs)} of {len(archs)}: by the pace so "
                    f"far ({per_group:.1f} s a group of {chunk} per pass) they would end the run "
                    f"{predicted_end - deadline:.0f} s past the budget"
                )
                break
        _measure_group(run, archs, group, 0)
        first_pass_seconds += time.perf_counter() - now
        done.append(group)
        save()
        print(f"pass 1: group {index + 1}/{len(groups)} done", flush=True)
    per_group = first_pass_seconds / len(done)
    for pass_index in range(1, run.passes):
        for index, group in enumerate(done):
            if index and time.perf_counter() + per_group > deadline:
                run.skipped.append(
                    f"pass {pass_index + 1} of subnets {group.start + 1}..{done[-1].stop}: "
                    f"the budget ran out (their noise is left out)"
                )
                break
            _measure_group(run, archs, group, pass_index)
            save()
            print(f"pass {pass_index + 1}: group {index + 1}/{len(done)} done", flush=True)


def _measure_group(run: Run, archs: list[Arch], group: range, pass_index: int) -> None:
    for config in run.configs:
        latencies = run.measure(config, [archs[i] for i in group])
        if latencies is not None:
            run.latencies[config][pass_index, group.start : group.stop] = latencies


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    deadline = started + args.budget_minutes * 60
    archs = get_space(SPACE).sample_distinct(args.subnets, seed=args.seed)
    context: dict[str, Any] = {"archs": [a.to_seed_string() for a in archs], "curve": {}}
    with ExitStack() as stack:
        measurers = open_measurers(stack, args)
        configs = list(measurers)
        descriptors = {c: m.start() for c, m in measurers.items()}
        gpu_configs = [c for c in configs if descriptors[c].get("gpu")]
        context["device"] = device_descriptor(descriptors[(gpu_configs or configs)[0]])
        print(f"device: {device_line(context['device'])}", flush=True)
        run = Run(configs, measurers, args.passes, len(archs))

        def save() -> None:
            context["wall_seconds"] = time.perf_counter() - started
            atomic_write_json(args.out, summary(run, args, context))

        for config in configs:
            context["curve"][config] = run.measure(config, args.curve_archs, counted=False)
        print("resolution curve done", flush=True)
        save()
        chunk = measurers[configs[0]].protocol.interleave
        measure_all(run, archs, chunk, deadline, save)
        context["complete"] = True
        save()
    report = summary(run, args, context)
    print_tables(report)
    print(f"\nsaved {args.out}")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
