"""Few-shot adaptation to a new device: the Tesla P40 from K of its measurements.

The source predictor is this project's default predictor trained on the seed's RTX 2080 Ti
OFA dataset; the calibration methods also blend in the predictor trained on the seed's Note10
OFA dataset (no P40 row anywhere). K subnets are drawn at random from the first 70% of the
P40 file (the seed's training part); MAPE and Spearman are measured on the seed's test rows
(last 15%), as the mean of 3 draws. Every adaptation method is run alone and through
``auto`` (chosen by cross-validation inside the K samples), with and without the blend, and
for the generalized predictor trained on the RTX and Note10 training rows (its embedding).

Then the one-call path, leave-one-device-out (`ONE_CALL`): ``train_predictor`` on the other
devices' files, ``adapt_predictor`` on what it gives, K=20 subnets drawn from the held-out
device's first 85%, figures on its last 15%, mean of 3 draws; side by side: before (the
generalized model alone: ``auto`` without ``calibrate_devices``), now (``auto``), and the best
per-device path (the carried predictor of the target's width, the others blended, ``auto``).

    python benchmarks/adaptation_benchmark.py [--shared ../shared] [--ks 5 10 20 50 100 700]
    python benchmarks/adaptation_benchmark.py --one-call-only
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
from ofa_latency_kedro.predictors import (
    ADAPTATION_METHODS,
    LatencyPredictor,
    adapt_predictor,
    regression_metrics,
    train_predictor,
)
from ofa_latency_kedro.predictors.adaptation import METHODS, applies
from ofa_latency_kedro.predictors.generalization import train_generalized

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DRAWS = (0, 1, 2)
#: Leave-one-device-out cases of the one-call path: (space, held-out device, known devices).
ONE_CALL = (
    ("ofa", "Tesla_P40_GPU", ("RTX_2080_Ti_GPU", "note10_lookuptable")),
    ("ofa", "RTX_2080_Ti_GPU", ("Tesla_P40_GPU", "note10_lookuptable")),
    (
        "fixedkernelcompofa",
        "Intel_Xeon_CPU",
        ("RTX_2080_Ti_GPU", "Tesla_P40_GPU", "note10_lookuptable"),
    ),
)
ONE_CALL_K = 20


def _scored(
    source: LatencyPredictor, options: dict, pool: pd.DataFrame, test: pd.DataFrame
) -> dict[str, object]:
    """Mean test MAPE and Spearman of ``adapt_predictor(source, few, **options)`` over
    `DRAWS`, with the methods it chose."""
    truth = test["latency"].to_numpy()
    figures = []
    for draw in DRAWS:
        few = pool.sample(ONE_CALL_K, random_state=draw)
        adapted = adapt_predictor(source, few, seed=draw, **options)
        metrics = regression_metrics(truth, adapted.predict(test["child_arch"]))
        figures.append((metrics["mape"], metrics["spearman"], adapted.metadata.adaptation.method))
    return {
        "mape": float(np.mean([f[0] for f in figures])),
        "spearman": float(np.mean([f[1] for f in figures])),
        "chosen": [f[2] for f in figures],
    }


def seed_table(folder: Path, name: str, space: str, merge: bool = True) -> pd.DataFrame:
    """The seed's latency file of a device and space, at the device's width (the hardware
    registry's)."""
    registry = yaml.safe_load((ROOT / "conf" / "base" / "hardware.yml").read_text())["hardware"]
    width = {name: registry[name].get("width_mult") or 1.0}
    return load_latency_csv(folder / f"{name}_{space}.csv", merge=merge, width_mult=width)


def one_call(folder: Path) -> list[dict[str, object]]:
    """The one-call path against today's and the best per-device path, per held-out device."""

    def table(name: str, space: str, merge: bool = True) -> pd.DataFrame:
        return seed_table(folder, name, space, merge)

    before = tuple(m for m in METHODS if m != "calibrate_devices")
    rows = []
    print(f"\nOne call, K={ONE_CALL_K}, mean of {len(DRAWS)} draws (MAPE, Spearman, chosen):")
    for space, held_out, known in ONE_CALL:
        started = time.perf_counter()
        generalized = train_predictor(
            pd.concat([table(name, space) for name in known], ignore_index=True)
        )
        seconds = time.perf_counter() - started
        target = split_table(table(held_out, space, merge=False), "seed")
        pool, test = target[target["split"] != "test"], target[target["split"] == "test"]
        width = float(pool["width_mult"].iloc[0])
        first = next((m for m in generalized.sources if m.width_mult == width), None)
        first = first or generalized.sources[0]
        others = [m for m in generalized.sources if m is not first]
        paths = {
            "before": (generalized, {"methods": before}),
            "now": (generalized, {}),
            "best per-device": (first, {"sources": others}),
        }
        row: dict[str, object] = {
            "space": space,
            "held_out": held_out,
            "known": list(known),
            "train_seconds": seconds,
        }
        for name, (source, options) in paths.items():
            row[name] = _scored(source, options, pool, test)
        rows.append(row)
        print(
            f"{held_out:16s} {space:19s} from {'+'.join(known)} (trained in {seconds:.0f} s)\n"
            + "\n".join(
                f"    {name:16s} MAPE {row[name]['mape']:5.2f}%  Spearman "
                f"{row[name]['spearman']:.4f}  chosen {row[name]['chosen']}"
                for name in paths
            ),
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20, 50, 100, 700])
    parser.add_argument(
        "--one-call-only", action="store_true", help="only the one-call table (a few minutes)"
    )
    args = parser.parse_args()
    folder = args.shared / "seed_data" / "latency"
    RESULTS.mkdir(exist_ok=True)
    one_call_rows = one_call(folder)
    (RESULTS / "adaptation_one_call.json").write_text(json.dumps(one_call_rows, indent=2))
    if args.one_call_only:
        return
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
    (RESULTS / "adaptation_benchmark.json").write_text(
        json.dumps({"zero_shot": zero_shot, "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
