"""Few-shot adaptation to a new device: the Tesla P40 from K of its measurements.

The source predictor is this project's default predictor trained on the seed's RTX 2080 Ti
OFA dataset; the calibration methods also blend in the predictor trained on the seed's Note10
OFA dataset (no P40 row anywhere). K subnets are drawn at random from the first 70% of the
P40 file (the seed's training part); MAPE and Spearman are measured on the seed's test rows
(last 15%), as the mean of 3 draws. Every adaptation method is run alone and through
``auto`` (chosen by cross-validation inside the K samples), with and without the blend, and
for the generalized predictor trained on the RTX and Note10 training rows (its embedding).

    python benchmarks/adaptation_benchmark.py [--shared ../shared] [--ks 5 10 20 50 100 700]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ofa_latency_kedro.encoding import load_latency_csv, split_table
from ofa_latency_kedro.predictors import (
    ADAPTATION_METHODS,
    adapt_predictor,
    regression_metrics,
    train_predictor,
)
from ofa_latency_kedro.predictors.adaptation import applies
from ofa_latency_kedro.predictors.generalization import train_generalized

RESULTS = Path(__file__).resolve().parent / "results"
DRAWS = (0, 1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20, 50, 100, 700])
    args = parser.parse_args()
    folder = args.shared / "seed_data" / "latency"
    source_table = split_table(load_latency_csv(folder / "RTX_2080_Ti_GPU_ofa.csv"), "seed")
    source = train_predictor(source_table)
    note10_table = split_table(
        load_latency_csv(
            folder / "note10_lookuptable_ofa.csv", width_mult={"note10_lookuptable": 1.2}
        ),
        "seed",
    )
    note10 = train_predictor(note10_table)
    target = split_table(load_latency_csv(folder / "Tesla_P40_GPU_ofa.csv", merge=False), "seed")
    pool = target[target["split"] == "train"].reset_index(drop=True)
    test = target[target["split"] == "test"]
    truth = test["latency"].to_numpy()
    zero_shot = regression_metrics(truth, source.predict(test["child_arch"]))
    print(
        f"Zero-shot (RTX predictor on P40 test rows): MAPE {zero_shot['mape']:.2f}%, "
        f"Spearman {zero_shot['spearman']:.4f}"
    )
    rows = []
    generalized = train_generalized(
        pd.concat([source_table, note10_table], ignore_index=True).query("split == 'train'")
    )
    per_device = tuple(m for m in ADAPTATION_METHODS if applies(source, m))
    variants = [
        ("rtx+note10", source, [note10], ("auto", *per_device)),
        ("rtx", source, [], ("auto", "calibrate", "calibrate_features")),
        ("generalized", generalized, [], ("auto", "embedding", "calibrate_features")),
    ]
    for k in args.ks:
        for variant, adapted_source, sources, methods in variants:
            for method in methods:
                figures = []
                for draw in DRAWS:
                    few = pool.sample(k, random_state=draw)
                    started = time.perf_counter()
                    adapted = adapt_predictor(
                        adapted_source, few, method=method, seed=draw, sources=sources
                    )
                    seconds = time.perf_counter() - started
                    metrics = regression_metrics(truth, adapted.predict(test["child_arch"]))
                    figures.append(
                        {
                            "mape": metrics["mape"],
                            "spearman": metrics["spearman"],
                            "seconds": seconds,
                            "chosen": adapted.metadata.adaptation.method,
                        }
                    )
                row = {
                    "k": k,
                    "sources": variant,
                    "method": method,
                    "mape": float(np.mean([f["mape"] for f in figures])),
                    "spearman": float(np.mean([f["spearman"] for f in figures])),
                    "seconds": float(np.mean([f["seconds"] for f in figures])),
                    "chosen": [f["chosen"] for f in figures],
                }
                rows.append(row)
                print(
                    f"K={k:4d} {variant:11s} {method:19s} MAPE {row['mape']:5.2f}%  "
                    f"Spearman {row['spearman']:.4f}  "
                    f"{row['seconds']:5.2f} s  chosen {row['chosen']}",
                    flush=True,
                )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "adaptation_benchmark.json").write_text(
        json.dumps({"zero_shot": zero_shot, "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
