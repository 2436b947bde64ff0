"""How far this machine's speed drifts, and what the reference pairing keeps of it.

First, the reference subnet timed as the first network this process builds, against its
calibration (which builds and drops one network first, see `drop_first_network`). Then every
``--every`` seconds, ``--samples`` times: the reference is calibrated as a new dataset's is
(``resolve_protocol`` on a fresh torch-cpu backend: the same warm-up and passes), and
``--subnets`` fixed subnets are measured under the default protocol; their latency is
reported twice from the same timed passes: plain medians, and paired with the reference and
scaled by the FIRST sample's calibration (as every row of a dataset is). Prints one line per
sample, then the spread of each over the samples (largest |value / first - 1|).

    python benchmarks/reference_drift.py [--samples 20] [--every 60] [--subnets 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ofa_latency_kedro.measurement import Protocol, fold_batch_norms, get_backend
from ofa_latency_kedro.measurement.hardware import cpu_model
from ofa_latency_kedro.measurement.protocol import REFERENCE_ARCH, Timing
from ofa_latency_kedro.search_space import Arch, build_subnet, get_space

RESULTS = Path(__file__).resolve().parent / "results"


def first_network_ms() -> float:
    """The reference timed as a calibration times it, built as this process's first network
    (as calibrations were before `drop_first_network`); call it before anything is built."""
    protocol = Protocol()
    torch.set_num_threads(protocol.resolved_threads)
    arch = Arch.parse(REFERENCE_ARCH)
    net = fold_batch_norms(build_subnet(arch).eval())
    x = torch.randn(1, 3, arch.r, arch.r, generator=torch.Generator().manual_seed(0))
    passes = []
    with torch.inference_mode():
        for _ in range(protocol.warmup_runs):
            net(x)
        for _ in range(max(60, 2 * protocol.timed_runs)):
            started = time.perf_counter()
            net(x)
            passes.append((time.perf_counter() - started) * 1e3)
    return float(np.median(passes))


def sample(archs: list, first_reference_ms: float | None) -> dict[str, Any]:
    """One calibration of the reference, and the subnets' plain and paired latency."""
    with get_backend("torch-cpu", Protocol()) as backend:
        calibrated = backend.resolve_protocol().reference_ms
    scale = first_reference_ms or calibrated
    with get_backend("torch-cpu", Protocol(reference_ms=scale)) as backend:
        samples, references = backend.sample_subnets(archs)
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_1min": os.getloadavg()[0],
        "reference_ms": calibrated,
        "plain_ms": [float(np.median(s)) for s in samples],
        "paired_ms": [
            Timing.from_samples(s, "median", r, scale).latency
            for s, r in zip(samples, references, strict=True)
        ],
    }


def spread(values: list[float]) -> float:
    """The largest |value / first - 1| of a series."""
    series = np.asarray(values, dtype=float)
    return float(np.max(np.abs(series / series[0] - 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--subnets", type=int, default=2)
    args = parser.parse_args()

    archs = get_space("ofa").sample_distinct(args.subnets, seed=2026)
    first = first_network_ms()
    with get_backend("torch-cpu", Protocol()) as backend:
        calibrated = backend.resolve_protocol().reference_ms
    print(
        f"machine: {cpu_model() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}; default protocol (1 thread)\nreference subnet as the process's "
        f"first network: {first:.2f} ms; calibrated (one network built and dropped before): "
        f"{calibrated:.2f} ms ({first / calibrated - 1:+.1%})\n"
    )
    print("| UTC | load (1 min) | reference ms | plain ms | paired ms |")
    print("|---|---|---|---|---|")
    rows: list[dict[str, Any]] = []
    for index in range(args.samples):
        started = time.monotonic()
        row = sample(archs, rows[0]["reference_ms"] if rows else None)
        rows.append(row)
        print(
            f"| {row['at']} | {row['load_1min']:.2f} | {row['reference_ms']:.2f} | "
            f"{', '.join(f'{v:.2f}' for v in row['plain_ms'])} | "
            f"{', '.join(f'{v:.2f}' for v in row['paired_ms'])} |",
            flush=True,
        )
        if index + 1 < args.samples:
            time.sleep(max(0.0, args.every - (time.monotonic() - started)))

    reference = [r["reference_ms"] for r in rows]
    plain = [spread([r["plain_ms"][i] for r in rows]) for i in range(args.subnets)]
    paired = [spread([r["paired_ms"][i] for r in rows]) for i in range(args.subnets)]
    summary = {
        "samples": len(rows),
        "from": rows[0]["at"],
        "to": rows[-1]["at"],
        "reference_ms": {"min": min(reference), "max": max(reference)},
        "reference_max_over_min": max(reference) / min(reference) - 1,
        "reference_spread": spread(reference),
        "plain_spread": max(plain),
        "paired_spread": max(paired),
    }
    print(
        f"\n{len(rows)} samples {summary['from']} .. {summary['to']}: reference "
        f"{min(reference):.2f}-{max(reference):.2f} ms (max/min {summary['reference_max_over_min']:+.1%}, "
        f"largest change from the first {summary['reference_spread']:.1%}); plain latency moved "
        f"up to {summary['plain_spread']:.1%}, paired latency (first calibration's scale) up to "
        f"{summary['paired_spread']:.1%}"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "reference_drift.json"
    summary["first_network_ms"], summary["calibrated_ms"] = first, calibrated
    out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
