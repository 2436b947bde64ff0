"""Do search winners meet their budget on the first measurement? A fresh project copy on this
machine, as a user runs it: 150 OFA subnets measured with torch-cpu, the default predictor,
auto budgets (the 25th, 50th and 75th percentile of the training latencies), then the `nas`
pipeline with NAS seeds 0, 1, 2 (objective: MACs), verification on (it measures each winner
and searches again when one misses its budget by more than 3%), side by side in one run:

- ``nas.safety=none`` (a winner's predicted latency within the budget: the behaviour before),
- ``nas.safety=interval`` (the upper bound of its 90% interval within the budget),

and, after the verification rows the runs appended are in the training data (the closed
loop: `kedro run --pipelines encoding,training`), ``interval`` again.

Per configuration: winners within +3% of their budget on the first measurement (of 9),
mean and worst first measured latency / budget, mean MACs of the first winners, and of the
final winners after verification.

    python benchmarks/budget_benchmark.py [--shared ../shared] [--subnets 150] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
KEDRO = str(Path(sys.executable).with_name("kedro"))
TOLERANCE = 0.03


def project_copy(folder: Path) -> Path:
    """The project's configuration and data layout in ``folder`` (the package is installed)."""
    root = folder / "project"
    root.mkdir()
    shutil.copy(ROOT / "pyproject.toml", root)
    (root / "src").mkdir()
    shutil.copytree(ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    for layer in (ROOT / "data").iterdir():
        if layer.is_dir():
            (root / "data" / layer.name).mkdir(parents=True)
    (root / "data" / "01_raw" / "latency").mkdir(exist_ok=True)
    return root


def kedro_run(project: Path, *args: str) -> float:
    started = time.perf_counter()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    result = subprocess.run(
        [KEDRO, "run", *args], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(
            f"kedro run {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return time.perf_counter() - started


def nas_round(project: Path, seed: int, safety: str) -> pd.DataFrame:
    params = f"nas.seed={seed},nas.safety={safety},nas.objective=macs,nas.progress=false"
    kedro_run(project, "--pipelines", "nas", "--params", params)
    results = pd.read_csv(project / "data" / "07_model_output" / "nas_results.csv")
    return results.assign(nas_seed=seed, configuration=safety)


def summary(rows: pd.DataFrame) -> dict[str, Any]:
    first = rows["first_measured_latency_ms"] / rows["budget_ms"]
    final = rows["measured_latency_ms"] / rows["budget_ms"]
    return {
        "winners": len(rows),
        "first_within_3pct": int((first <= 1 + TOLERANCE).sum()),
        "first_mean_ratio": float(first.mean()),
        "first_worst_ratio": float(first.max()),
        "final_within_3pct": int((final <= 1 + TOLERANCE).sum()),
        "final_mean_ratio": float(final.mean()),
        "searched_again": int((rows["verify_rounds"] > 0).sum()),
        "first_mmacs": float(rows["first_mmacs"].mean()),
        "final_mmacs": float((rows["macs"] / 1e6).mean()),
        "median_prediction_error": float(
            (rows["predicted_latency_ms"] / rows["measured_latency_ms"] - 1).abs().median()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--subnets", type=int, default=150)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = project_copy(Path(folder))
        seconds = kedro_run(
            project,
            "--pipelines",
            "sampling,encoding,training",
            "--params",
            f"sampling.num_subnets={args.subnets},sampling.progress=false,training.progress=false",
        )
        print(f"sampling, encoding, training of {args.subnets} subnets: {seconds:.0f} s")
        frames = []
        for configuration, safety, retrain in (
            ("none", "none", False),
            ("interval", "interval", False),
            ("interval, retrained on verified winners", "interval", True),
        ):
            if retrain:
                kedro_run(
                    project,
                    "--pipelines",
                    "encoding,training",
                    "--params",
                    "training.progress=false",
                )
            for seed in args.seeds:
                started = time.perf_counter()
                rows = nas_round(project, seed, safety).assign(configuration=configuration)
                print(f"{configuration}, NAS seed {seed}: {time.perf_counter() - started:.0f} s")
                frames.append(rows)
        table = pd.concat(frames, ignore_index=True)
        table["first_mmacs"] = table["first_macs"] / 1e6
        metrics = pd.read_csv(project / "data" / "08_reporting" / "predictor_metrics.csv")
        sidecar = json.loads(
            next((project / "data" / "01_raw" / "latency").glob("*.json")).read_text()
        )
    figures = {name: summary(rows) for name, rows in table.groupby("configuration", sort=False)}
    print()
    print(
        "| configuration | within +3% on first measurement | mean first measured / budget "
        "| worst first | searched again | final within +3% | final mean / budget | mean MMACs, "
        "first winners | mean MMACs, final winners |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, f in figures.items():
        print(
            f"| {name} | {f['first_within_3pct']} of {f['winners']} | {f['first_mean_ratio']:.3f} "
            f"| {f['first_worst_ratio']:.3f} | {f['searched_again']} | {f['final_within_3pct']} "
            f"| {f['final_mean_ratio']:.3f} | {f['first_mmacs']:.0f} | {f['final_mmacs']:.0f} |"
        )
    print(
        f"\npredictor: test MAPE {metrics['test_mape'].iloc[-1]:.2f}%, 90% interval coverage "
        f"{metrics['test_interval_coverage'].iloc[-1]:.1f}%, half-width "
        f"{metrics['test_interval_halfwidth'].iloc[-1]:.2f}%; dataset sessions: "
        f"{[s.get('kind', 'sampling') for s in sidecar['sessions']]}"
    )
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "budget_benchmark_rows.csv", index=False)
    (RESULTS / "budget_benchmark.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
