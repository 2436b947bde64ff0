"""Predictors against the seed's own checkpoints, side by side in one run.

1. Accuracy on the seed's split (file order 70/15/15) of the RTX 2080 Ti, Tesla P40 and Note10
   OFA datasets: this project's default predictor, trained on the train rows with the
   validation rows for early stopping (never the test rows), against the seed's checkpoint.
2. Training time of the default predictor on 7,000 rows, and a Ray Tune search of 16 trials
   with ASHA.
3. Prediction of 10,000 parsed subnets in one call against the seed's per-subnet path
   (Python one-hot encoding + one forward of its MLP per subnet).
4. The seed's "inference time analysis": time per predicted vs per measured subnet.

    python benchmarks/training_benchmark.py [--shared ../shared] [--skip-tune]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from seed_baseline import seed_per_subnet
from timing import timed

from ofa_latency_kedro.encoding import load_latency_csv, split_table
from ofa_latency_kedro.measurement import Protocol, get_backend
from ofa_latency_kedro.measurement.protocol import available_cpus
from ofa_latency_kedro.predictors import (
    LatencyPredictor,
    prepare_data,
    regression_metrics,
    train_predictor,
)
from ofa_latency_kedro.predictors.tuning import TuneSettings, tune_predictor
from ofa_latency_kedro.search_space import get_space

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = {
    "RTX_2080_Ti_GPU_ofa": "checkpoint_RTX_2080_Ti_GPU_ofa.pt",
    "Tesla_P40_GPU_ofa": "checkpoint_Tesla_P40_GPU_ofa.pt",
    "note10_lookuptable_ofa": "checkpoint_note10_ofa.pt",
}


def accuracy(shared: Path) -> tuple[list[dict[str, Any]], dict[str, LatencyPredictor]]:
    rows, predictors = [], {}
    for name, checkpoint in DATASETS.items():
        width = {"note10_lookuptable": 1.2}
        table = split_table(
            load_latency_csv(
                shared / "seed_data" / "latency" / f"{name}.csv", merge=False, width_mult=width
            ),
            "seed",
        )
        test = table[table["split"] == "test"]
        seed = LatencyPredictor.load(shared / "seed_data" / "checkpoints" / checkpoint)
        seed_metrics = regression_metrics(
            test["latency"].to_numpy(), seed.predict(test["child_arch"])
        )
        started = time.perf_counter()
        ours = train_predictor(table)
        seconds = time.perf_counter() - started
        predictors[name] = ours
        rows.append(
            {
                "dataset": name,
                "seed": seed_metrics,
                "ours": ours.metrics["test"],
                "train_rows": ours.metadata.training["rows"]["train"],
                "train_seconds": seconds,
                "mae_ratio": ours.metrics["test"]["mae"] / seed_metrics["mae"],
                "depth": ours.metadata.architecture["depth"],
            }
        )
    return rows, predictors


def prediction_speed(shared: Path, ours: LatencyPredictor) -> dict[str, float]:
    archs = get_space("ofa").sample(10_000, seed=0)
    seed_model = LatencyPredictor.load(
        shared / "seed_data" / "checkpoints" / "checkpoint_RTX_2080_Ti_GPU_ofa.pt"
    )
    seed_path_s, seed_values = timed(seed_per_subnet, seed_model.module, archs)
    ours_s, _ = timed(ours.predict, archs)
    seed_batched_s, batched_values = timed(seed_model.predict, archs)
    assert np.allclose(seed_values, batched_values, rtol=1e-4, atol=1e-4)
    return {
        "subnets": len(archs),
        "seed_per_subnet_s": seed_path_s,
        "default_batched_s": ours_s,
        "seed_mlp_batched_s": seed_batched_s,
        "speedup_default": seed_path_s / ours_s,
        "speedup_seed_mlp": seed_path_s / seed_batched_s,
    }


def measurement_time(n: int = 10) -> float:
    """Seconds per subnet measured with the default torch-cpu protocol (everything included)."""
    archs = get_space("ofa").sample(n, seed=1)
    with get_backend("torch-cpu", Protocol()) as backend:
        backend.resolve_protocol()
        started = time.perf_counter()
        for start in range(0, n, 8):
            backend.time_subnets(archs[start : start + 8])
        return (time.perf_counter() - started) / n


def tuning(shared: Path) -> dict[str, Any]:
    table = split_table(
        load_latency_csv(shared / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv", merge=False),
        "seed",
    )
    data = prepare_data(table)
    with tempfile.TemporaryDirectory() as storage:
        settings = TuneSettings(
            num_samples=16, time_budget_s=600, storage_path=storage, cpus_per_trial=1
        )
        started = time.perf_counter()
        outcome = tune_predictor(data, settings, experiment="benchmark")
        seconds = time.perf_counter() - started
    return {
        "trials": len(outcome.trials),
        "completed": int((outcome.trials["status"] == "completed").sum()),
        "stopped_by_asha": int((outcome.trials["status"] == "stopped").sum()),
        "seconds": seconds,
        "best_config": outcome.best_config,
        "test": outcome.predictor.metrics["test"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared"
    )
    parser.add_argument("--skip-tune", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(available_cpus())

    rows, predictors = accuracy(args.shared)
    print(f"\nAccuracy on the seed's test split (last 15%), {available_cpus()} CPU cores\n")
    print(
        "| dataset | predictor | MAE ms | MAPE | within +-10% | Spearman | MAE vs seed | train s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        for label, m in (("seed checkpoint", row["seed"]), ("this project (default)", row["ours"])):
            ratio = f"{row['mae_ratio']:.2f}x" if label.startswith("this") else "1.00x"
            seconds = f"{row['train_seconds']:.1f}" if label.startswith("this") else "-"
            print(
                f"| {row['dataset']} | {label} | {m['mae']:.3f} | {m['mape']:.2f}% | {m['within_10']:.1f}% | "
                f"{m['spearman']:.4f} | {ratio} | {seconds} |"
            )
    speed = prediction_speed(args.shared, predictors["RTX_2080_Ti_GPU_ofa"])
    print(
        f"\nPredicting {speed['subnets']:,} parsed subnets: seed per-subnet path {speed['seed_per_subnet_s']:.2f} s; "
        f"default predictor in one call {speed['default_batched_s']:.3f} s ({speed['speedup_default']:.0f}x); "
        f"the seed's MLP in one call {speed['seed_mlp_batched_s']:.3f} s ({speed['speedup_seed_mlp']:.0f}x)"
    )
    per_measured = measurement_time()
    per_predicted = speed["default_batched_s"] / speed["subnets"]
    print("\n| way to get a subnet's latency | time per subnet |")
    print("|---|---|")
    print(f"| measured, torch-cpu backend, default protocol | {per_measured * 1e3:.0f} ms |")
    print(
        f"| predicted, seed's per-subnet path | {speed['seed_per_subnet_s'] / speed['subnets'] * 1e6:.0f} us |"
    )
    print(f"| predicted, default predictor, batched | {per_predicted * 1e6:.1f} us |")
    print(f"| ratio measured / predicted (default) | {per_measured / per_predicted:,.0f}x |")
    result = {
        "accuracy": rows,
        "prediction_speed": speed,
        "seconds_per_measured_subnet": per_measured,
    }
    if not args.skip_tune:
        tune = tuning(args.shared)
        result["tuning"] = tune
        print(
            f"\nRay Tune, Tesla_P40_GPU_ofa, 16 trials with ASHA: {tune['seconds']:.0f} s "
            f"({tune['completed']} completed, {tune['stopped_by_asha']} stopped early); best test MAE "
            f"{tune['test']['mae']:.3f} ms, MAPE {tune['test']['mape']:.2f}%; best config {tune['best_config']}"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "training_benchmark.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
