"""Memory under load: predicting 1,000,000 subnets in one call, and a NAS sweep of 20
budgets, each in a fresh process whose peak RSS is reported beside a baseline process that
only imports, loads the predictors and predicts 1,000 subnets.

The latency predictor is the project's default one, trained on the seed's RTX 2080 Ti OFA
file (kept small: 30 epochs); the accuracy predictor is OFA's (../shared/seed_data).

    python benchmarks/load_benchmark.py [--shared ../shared] [--subnets 1000000] [--budgets 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ofa_latency_kedro import load_latency_csv, train_predictor

RESULTS = Path(__file__).resolve().parent / "results"

CHILD = """
import json, resource, sys, time
import numpy as np
from ofa_latency_kedro import LatencyPredictor, get_space, load_accuracy_predictor, run_nas

task, predictor_path, accuracy_path, amount = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
latency = LatencyPredictor.load(predictor_path)
accuracy = load_accuracy_predictor(accuracy_path)
started = time.perf_counter()
extra = {}
if task == "baseline":
    latency.predict(get_space("ofa").sample_batch(1_000, seed=0))
elif task == "predict":
    batch = get_space("ofa").sample_batch(amount, seed=0)
    extra["batch_mb"] = sum(a.nbytes for a in (batch.ks, batch.e, batch.d, batch.r, batch.width_mult)) / 2**20
    predicted = latency.predict(batch)
    extra["finite"] = bool(np.isfinite(predicted).all())
else:
    budgets = list(np.linspace(14, 33, amount).round(2))
    result = run_nas(latency, accuracy, budgets, space="ofa", seed=0)
    extra["ok"] = int((result["status"] == "ok").sum())
print(json.dumps({
    "task": task,
    "seconds": time.perf_counter() - started,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    **extra,
}))
"""


def child(task: str, predictor: Path, accuracy: Path, amount: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, task, str(predictor), str(accuracy), str(amount)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    parser.add_argument("--subnets", type=int, default=1_000_000)
    parser.add_argument("--budgets", type=int, default=20)
    args = parser.parse_args()
    seed = args.shared / "seed_data"
    predictor = train_predictor(
        load_latency_csv(seed / "latency" / "RTX_2080_Ti_GPU_ofa.csv"), config={"epochs": 30}
    )
    with tempfile.TemporaryDirectory() as folder:
        path = predictor.save(Path(folder) / "rtx.pt")
        accuracy = seed / "acc_predictor.pth"
        baseline = child("baseline", path, accuracy, 0)
        predict = child("predict", path, accuracy, args.subnets)
        sweep = child("sweep", path, accuracy, args.budgets)
    print(
        f"Baseline (imports, predictors, 1,000 predictions): peak RSS {baseline['peak_rss_mb']:.0f} MB"
    )
    print(
        f"Predict {args.subnets:,} subnets in one call: peak RSS {predict['peak_rss_mb']:.0f} MB "
        f"(+{predict['peak_rss_mb'] - baseline['peak_rss_mb']:.0f} MB over the baseline, of "
        f"which the input batch itself is {predict['batch_mb']:.0f} MB), "
        f"{predict['seconds']:.1f} s, all finite: {predict['finite']}"
    )
    print(
        f"NAS sweep of {args.budgets} budgets (P=100, N=500): peak RSS "
        f"{sweep['peak_rss_mb']:.0f} MB (+{sweep['peak_rss_mb'] - baseline['peak_rss_mb']:.0f} MB), "
        f"{sweep['seconds']:.1f} s, {sweep['ok']} winners"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "load_benchmark.json").write_text(
        json.dumps({"baseline": baseline, "predict": predict, "sweep": sweep}, indent=2)
    )


if __name__ == "__main__":
    main()
