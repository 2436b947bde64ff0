"""Measurement noise, throughput and dataset cost, side by side with the seed's protocol.

Noise: the same subnets are measured twice, one pass after the other; the figure is the
median (and 90th percentile) over subnets of |second - first| / first. The plain and the
reference-paired figures of this project's protocol come from the same timed passes.
Throughput counts everything per subnet (build, export, warm-up, timing).

    python benchmarks/sampling_benchmark.py [--subnets 30] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ofa_latency_kedro.measurement import LatencyLookupTable, Protocol, get_backend
from ofa_latency_kedro.measurement.backends import BackendUnavailable
from ofa_latency_kedro.measurement.protocol import Timing, relative_differences
from ofa_latency_kedro.search_space import Arch, build_subnet, get_space

RESULTS = Path(__file__).resolve().parent / "results"


def seed_protocol_latency(arch: Arch) -> float:
    """OFA's ``measure_net_latency(net, 'cpu', fast=True)``, as the seed used it: BatchNorm
    removed, zeros input, 5 warm-up passes, then the wall-clock mean of 10 passes, on
    PyTorch's default thread count."""
    net = build_subnet(arch).eval()
    for name, module in list(net.named_modules()):
        if isinstance(module, torch.nn.BatchNorm2d):
            parent = net.get_submodule(name.rsplit(".", 1)[0])
            setattr(parent, name.rsplit(".", 1)[1], torch.nn.Identity())
    images = torch.zeros(1, 3, arch.r, arch.r)
    with torch.no_grad():
        for _ in range(5):
            net(images)
        start = time.time()
        for _ in range(10):
            net(images)
        return (time.time() - start) * 1e3 / 10


def noise(first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    diffs = relative_differences(first, second)
    return {
        "median_rel_diff": float(np.median(diffs)),
        "p90_rel_diff": float(np.percentile(diffs, 90)),
    }


def bench_seed(archs: list[Arch]) -> dict[str, Any]:
    started = time.perf_counter()
    first = np.array([seed_protocol_latency(a) for a in archs])
    second = np.array([seed_protocol_latency(a) for a in archs])
    seconds = time.perf_counter() - started
    return {
        "protocol": f"seed: OFA measure_net_latency (5 warm-up + 10 timed, mean, {torch.get_num_threads()} threads)",
        "backend": "torch-cpu",
        **noise(first, second),
        "subnets_per_minute": 2 * len(archs) / seconds * 60,
        "mean_latency_ms": float(first.mean()),
    }


def bench_backend(name: str, archs: list[Arch], protocol: Protocol) -> list[dict[str, Any]]:
    """Two passes over ``archs``; plain and reference-paired figures from the same passes."""
    with get_backend(name, protocol) as backend:
        settled = backend.resolve_protocol()
        started = time.perf_counter()
        passes = []
        for _ in range(2):
            samples, references = [], []
            for start in range(0, len(archs), settled.interleave):
                group_samples, group_refs = backend.sample_subnets(
                    archs[start : start + settled.interleave]
                )
                samples += group_samples
                references += group_refs or [None] * len(group_samples)
            passes.append((samples, references))
        seconds = time.perf_counter() - started
    rate = 2 * len(archs) / seconds * 60
    variants = [("plain median", False)]
    if settled.reference:
        variants.append(("median, paired with the reference (default)", True))
    results = []
    for label, paired in variants:
        latencies = [
            np.array(
                [
                    Timing.from_samples(
                        s, "median", r if paired else None, settled.reference_ms
                    ).latency
                    for s, r in zip(samples, references, strict=True)
                ]
            )
            for samples, references in passes
        ]
        results.append(
            {
                "protocol": f"this project: {settled.rounds}x{settled.runs_per_round} passes, {label}, "
                f"{settled.threads} thread(s)",
                "backend": name,
                "batch_size": settled.batch_size,
                **noise(*latencies),
                "subnets_per_minute": rate,
                "mean_latency_ms": float(latencies[0].mean()),
            }
        )
    return results


def bench_lut(lut_dir: Path, n: int) -> dict[str, Any]:
    table = LatencyLookupTable.from_dir(lut_dir)
    archs = get_space("ofa", width_mult=table.width_mult).sample(n, seed=0)
    started = time.perf_counter()
    with get_backend("lut", Protocol(), lut_dir=lut_dir) as backend:
        backend.time_subnets(archs)
    seconds = time.perf_counter() - started
    return {
        "subnets": n,
        "seconds": seconds,
        "subnets_per_minute": n / seconds * 60,
        "device_time_s": table.device_time_ms() / 1000,
        "table_entries": sum(len(t) for t in table.tables.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subnets", type=int, default=30)
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared"
    )
    parser.add_argument("--dataset-size", type=int, default=10_000)
    args = parser.parse_args()

    archs = get_space("ofa").sample_distinct(args.subnets, seed=2026)
    rows = [bench_seed(archs)]
    for backend in ("torch-cpu", "onnxruntime-cpu"):
        rows += bench_backend(backend, archs, Protocol())
    for backend in ("torch-cuda", "torch-cuda-graph"):
        try:
            rows += bench_backend(backend, archs, Protocol(batch_size=64))
        except BackendUnavailable as exc:
            print(f"skipped {backend}: {exc}")
    lut = bench_lut(args.shared / "seed_data" / "latency_table@note10", args.dataset_size)

    print(
        f"\nMeasurement noise and throughput, {args.subnets} OFA subnets measured twice, batch 1 unless noted"
    )
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}\n")
    print("| protocol | backend | noise (median) | noise (p90) | subnets/min | hours per 10,000 |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        hours = args.dataset_size / row["subnets_per_minute"] / 60
        print(
            f"| {row['protocol']} | {row['backend']} | {row['median_rel_diff']:.2%} | "
            f"{row['p90_rel_diff']:.2%} | {row['subnets_per_minute']:.1f} | {hours:.2f} |"
        )
    print(
        f"| lookup table (Note10) | lut | 0 (exact) | 0 | {lut['subnets_per_minute']:.0f} | "
        f"{args.dataset_size / lut['subnets_per_minute'] / 60:.4f} |"
    )
    print(
        f"\nThe Note10 lookup tables ({lut['table_entries']} entries) stand for "
        f"{lut['device_time_s']:.0f} s of device time (sum of count x mean); summing them for "
        f"{lut['subnets']:,} subnets took {lut['seconds']:.1f} s here."
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "sampling_benchmark.json"
    out.write_text(json.dumps({"rows": rows, "lut": lut, "subnets": args.subnets}, indent=2))
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
