"""Zero-shot generalization across devices: leave-one-hardware-out on the seed's OFA datasets.

The generalized predictor is trained on the other devices' training rows (key split, as the
encoding pipeline makes it) and scored on the held-out device's test rows, described by its
latency of 10 reference subnets (HELP-style) or by its hardware.yml entry alone. Printed
beside it, in the same run: the per-device predictor of one GPU applied to the other (the
baseline a user has without this model), and the best any fixed blend of the training
devices' columns could reach on the test rows (an oracle ceiling, chosen with the answers).

    python benchmarks/generalization_benchmark.py [--shared ../shared] [--epochs 30]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ofa_latency_kedro.encoding import load_latency_csv, split_table
from ofa_latency_kedro.experiments import leave_one_hardware_out
from ofa_latency_kedro.predictors import regression_metrics, train_predictor
from ofa_latency_kedro.search_space import ArchBatch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = {
    "RTX_2080_Ti_GPU": "RTX_2080_Ti_GPU_ofa.csv",
    "Tesla_P40_GPU": "Tesla_P40_GPU_ofa.csv",
    "note10_lookuptable": "note10_lookuptable_ofa.csv",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    registry = yaml.safe_load((ROOT / "conf" / "base" / "hardware.yml").read_text())["hardware"]
    folder = args.shared / "seed_data" / "latency"
    frames = [
        load_latency_csv(folder / file, width_mult={name: registry[name].get("width_mult") or 1.0})
        for name, file in DATASETS.items()
    ]
    table = split_table(pd.concat(frames, ignore_index=True), "key")
    started = time.perf_counter()
    results, models = leave_one_hardware_out(table, registry, config={"epochs": args.epochs})
    print(f"Leave-one-hardware-out, {len(models)} models in {time.perf_counter() - started:.1f} s")
    print(results.drop(columns=["trained_on", "seconds"]).round(4).to_string(index=False))

    print("\nOracle ceiling: best fixed blend of the training devices' columns on the test rows")
    ceilings = {}
    for name, model in models.items():
        held = name.removeprefix("without_")
        test = table[(table["hardware"] == held) & (table["split"] == "test")]
        columns = model.device_log_latency(ArchBatch.from_frame(test))
        truth = test["latency"].to_numpy()
        best = max(
            (
                regression_metrics(truth, np.exp(columns @ np.array([a, 1 - a])))["spearman"],
                a,
            )
            for a in np.linspace(0, 1, 21)
        )
        ceilings[held] = {"spearman": best[0], "weight_of_first": best[1]}
        print(f"  {held:20s} Spearman {best[0]:.4f} (weights {best[1]:.2f} / {1 - best[1]:.2f})")

    print("\nBaseline: one GPU's per-device predictor applied to the other GPU's test rows")
    baselines = {}
    for source, target in (
        ("RTX_2080_Ti_GPU", "Tesla_P40_GPU"),
        ("Tesla_P40_GPU", "RTX_2080_Ti_GPU"),
    ):
        predictor = train_predictor(table[table["hardware"] == source])
        test = table[(table["hardware"] == target) & (table["split"] == "test")]
        metrics = regression_metrics(
            test["latency"].to_numpy(), predictor.predict_batch(ArchBatch.from_frame(test))
        )
        baselines[f"{source}->{target}"] = metrics["spearman"]
        print(f"  {source} predictor on {target}: Spearman {metrics['spearman']:.4f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "generalization_benchmark.json").write_text(
        json.dumps(
            {
                "leave_one_out": results.to_dict(orient="records"),
                "oracle_blend": ceilings,
                "per_device_baseline": baselines,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
