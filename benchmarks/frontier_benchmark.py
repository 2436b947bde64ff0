"""Does ``sampling.strategy: frontier`` give winners that meet their budget on the first
measurement more often than random sampling? Two fresh project copies on this machine, side
by side in one run:

- A: 150 OFA subnets drawn at random (``sampling.strategy random``, torch-cpu, the default),
- B: the same first 100 random subnets (A's dataset after 100, copied: same seed, same
  subnets, same measurements and reference calibration), then 50 frontier subnets
  (``sampling.strategy frontier``, its defaults).

Then in both: encoding and training (the default predictor), and the `nas` pipeline with NAS
seeds 0, 1, 2 (objective MACs, ``nas.safety`` interval, verification on), both copies under
the same explicit budgets, A's auto budgets (B's percentiles are skewed by the frontier rows),
the copies' rounds interleaved so that both meet the same drift of this machine.

Per copy: winners within +3% of their budget on the first measurement, mean and worst first
measured latency / budget, winners searched again, mean MMACs of the first and final winners,
and the predictor's test MAPE (on its own random test split: B's holds frontier rows too).

    python benchmarks/frontier_benchmark.py [--initial 100] [--subnets 150] [--seeds 0 1 2]
        [--params "sampling.protocol.rounds=1,nas.generations=50"]   # extra, for quick tries
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from budget_benchmark import RESULTS, kedro_run, project_copy, summary

from ofa_latency_kedro.nas.search import auto_budgets
from ofa_latency_kedro.predictors import LatencyPredictor

COPIES = ("A: random", "B: random + frontier")


def sampling(project: Path, subnets: int, strategy: str, extra: str) -> float:
    params = f"sampling.num_subnets={subnets},sampling.strategy={strategy},sampling.progress=false"
    return kedro_run(project, "--pipelines", "sampling", "--params", _joined(params, extra))


def nas_round(project: Path, seed: int, budgets: list[float], extra: str) -> pd.DataFrame:
    params = (
        f"nas.seed={seed},nas.safety=interval,nas.objective=macs,nas.progress=false,"
        f"nas.constraints_ms=[{','.join(f'{b:g}' for b in budgets)}]"
    )
    kedro_run(project, "--pipelines", "nas", "--params", _joined(params, extra))
    return pd.read_csv(project / "data" / "07_model_output" / "nas_results.csv").assign(
        nas_seed=seed
    )


def _joined(params: str, extra: str) -> str:
    return f"{params},{extra}" if extra else params


def latency_dir(project: Path) -> Path:
    return project / "data" / "01_raw" / "latency"


def trained(project: Path) -> LatencyPredictor:
    (checkpoint,) = (project / "data" / "06_models" / "predictors").glob("*.pt")
    return LatencyPredictor.load(checkpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--initial", type=int, default=100)
    parser.add_argument("--subnets", type=int, default=150)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--params", default="", help="extra --params for every kedro run")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        projects = {}
        for name, sub in zip(COPIES, ("a", "b"), strict=True):
            (Path(folder) / sub).mkdir()
            projects[name] = project_copy(Path(folder) / sub)
        a, b = projects.values()
        seconds = sampling(a, args.initial, "random", args.params)
        print(f"A: {args.initial} random subnets measured in {seconds:.0f} s")
        for file in latency_dir(a).iterdir():
            if file.suffix in (".csv", ".json"):
                shutil.copy(file, latency_dir(b) / file.name)
        seconds = sampling(a, args.subnets, "random", args.params)
        print(f"A: extended to {args.subnets} random subnets in {seconds:.0f} s")
        seconds = sampling(b, args.subnets, "frontier", args.params)
        print(f"B: extended to {args.subnets} with frontier subnets in {seconds:.0f} s")
        for name, project in projects.items():
            seconds = kedro_run(
                project,
                "--pipelines",
                "encoding,training",
                "--params",
                _joined("training.progress=false", args.params),
            )
            print(f"{name}: encoding and training in {seconds:.0f} s")
        budgets = auto_budgets(trained(a))
        print(f"budgets (A's auto budgets): {budgets} ms")
        frames = []
        for seed in args.seeds:
            for name, project in projects.items():
                round_started = time.perf_counter()
                frames.append(nas_round(project, seed, budgets, args.params).assign(copy=name))
                print(f"{name}, NAS seed {seed}: {time.perf_counter() - round_started:.0f} s")
        figures: dict[str, Any] = {}
        frames_by_copy: dict[str, pd.DataFrame] = {}
        for name, project in projects.items():
            rows = pd.concat([f for f in frames if f["copy"].iloc[0] == name], ignore_index=True)
            rows["first_mmacs"] = rows["first_macs"] / 1e6
            metrics = pd.read_csv(project / "data" / "08_reporting" / "predictor_metrics.csv")
            (sidecar_file,) = latency_dir(project).glob("*.json")
            sessions = json.loads(sidecar_file.read_text())["sessions"]
            figures[name] = {
                **summary(rows),
                "predictor_test_mape": float(metrics["test_mape"].iloc[-1]),
                "sampling_sessions": [
                    {k: s.get(k) for k in ("strategy", "budgets_ms", "measured", "kind")}
                    for s in sessions
                ],
            }
            frames_by_copy[name] = rows
    figures["budgets_ms"] = budgets
    figures["seconds"] = round(time.perf_counter() - started)
    print()
    print(
        "| copy | within +3% on first measurement | mean first measured / budget | worst first "
        "| searched again | mean MMACs, first winners | mean MMACs, final winners "
        "| predictor test MAPE |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in COPIES:
        f = figures[name]
        print(
            f"| {name} | {f['first_within_3pct']} of {f['winners']} | {f['first_mean_ratio']:.3f} "
            f"| {f['first_worst_ratio']:.3f} | {f['searched_again']} | {f['first_mmacs']:.0f} "
            f"| {f['final_mmacs']:.0f} | {f['predictor_test_mape']:.2f}% |"
        )
    for name in COPIES:
        print(f"{name}: sampling sessions {figures[name]['sampling_sessions']}")
    RESULTS.mkdir(exist_ok=True)
    pd.concat(frames_by_copy.values(), ignore_index=True).to_csv(
        RESULTS / "frontier_benchmark_rows.csv", index=False
    )
    (RESULTS / "frontier_benchmark.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
