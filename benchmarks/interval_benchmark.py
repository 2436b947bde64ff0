"""Calibrated intervals on the seed's files: train on the first 85% of rows (the seed's split:
70% training, 15% validation), score the 90% intervals on the last 15%, side by side:

- split conformal on the validation residuals, alike in weight,
- the same weighted by recency (`Conformal.recent`, what `train_predictor` stores),

for the RTX 2080 Ti and the Tesla P40; few rows (the first 150 or 400 of the P40 file): the
validation rows alone against cross-validation over training and validation rows (what
`train_predictor` stores below 200 validation rows); then an adapted predictor (the RTX predictor carried to
the P40 from 20 samples, `auto`, Note10 blended in) whose interval comes from its
cross-validation, ``--draws`` draws (10) each of random and informative picks: with 20 samples
one draw's coverage varies by several points, so the mean over draws is the figure.

    python benchmarks/interval_benchmark.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ofa_latency_kedro import adapt_predictor, load_latency_csv, train_predictor
from ofa_latency_kedro.encoding import split_table
from ofa_latency_kedro.predictors import prepare_data
from ofa_latency_kedro.predictors.metadata import Conformal
from ofa_latency_kedro.predictors.training import validation_conformal
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.selection import pick_subnets

RESULTS = Path(__file__).resolve().parent / "results"


def scored(predicted: np.ndarray, measured: np.ndarray, conformal: Conformal) -> dict[str, float]:
    low, high = conformal.bounds(0.9)
    inside = (measured >= predicted * np.exp(low)) & (measured <= predicted * np.exp(high))
    return {
        "coverage": float(inside.mean() * 100),
        "halfwidth": float(np.median((np.exp(high) - np.exp(low)) / 2) * 100),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    parser.add_argument("--draws", type=int, default=10)
    args = parser.parse_args()
    folder = args.shared / "seed_data" / "latency"
    figures: dict[str, dict] = {}
    print("| dataset | calibration | coverage of 90% intervals | median half-width | test MAPE |")
    print("|---|---|---|---|---|")
    predictors = {}
    for name in ("RTX_2080_Ti_GPU_ofa", "Tesla_P40_GPU_ofa"):
        table = split_table(load_latency_csv(folder / f"{name}.csv", merge=False), "seed")
        predictor = train_predictor(table)
        predictors[name] = predictor
        data = prepare_data(table)
        residuals = np.log(data.val.latency) - np.log(predictor.predict_batch(data.val.batch))
        test = data.test
        predicted = predictor.predict_batch(test.batch)
        mape = float(np.mean(np.abs(predicted / test.latency - 1)) * 100)
        for label, conformal in (
            ("split conformal, alike", Conformal(tuple(residuals), "validation", None)),
            ("split conformal, by recency (stored)", predictor.metadata.conformal),
        ):
            result = scored(predicted, test.latency, conformal)
            figures[f"{name}: {label}"] = result | {"mape": mape}
            print(
                f"| {name} | {label} | {result['coverage']:.1f}% | {result['halfwidth']:.2f}% "
                f"| {mape:.2f}% |"
            )
    print(
        "\nFew rows: trained on the first N rows of the P40 file (70/15/15), scored on every later"
    )
    print("row; the validation rows alone against cross-validation (what is stored below 200):")
    print("| rows | calibration | coverage | median half-width |")
    print("|---|---|---|---|")
    p40_rows = load_latency_csv(folder / "Tesla_P40_GPU_ofa.csv", merge=False)
    for rows in (150, 400):
        head = split_table(p40_rows.iloc[:rows], "seed")
        later = p40_rows.iloc[rows:]
        predictor = train_predictor(head)
        data = prepare_data(head)
        predicted = predictor.predict_batch(ArchBatch.from_frame(later))
        measured = later["latency"].to_numpy()
        for label, conformal in (
            ("validation rows", validation_conformal(predictor, data.val)),
            ("cross-validation (stored)", predictor.metadata.conformal),
        ):
            result = scored(predicted, measured, conformal)
            figures[f"P40 first {rows} rows: {label}"] = result
            print(f"| {rows} | {label} | {result['coverage']:.1f}% | {result['halfwidth']:.2f}% |")
    note10 = train_predictor(
        load_latency_csv(
            folder / "note10_lookuptable_ofa.csv", width_mult={"note10_lookuptable": 1.2}
        )
    )
    p40 = split_table(load_latency_csv(folder / "Tesla_P40_GPU_ofa.csv", merge=False), "seed")
    pool = p40[p40["split"] == "train"].reset_index(drop=True)
    test = p40[p40["split"] == "test"]
    batch, measured = ArchBatch.from_frame(test), test["latency"].to_numpy()
    rows = []
    for sampler in ("random", "informative"):
        for draw in range(args.draws):
            few = pick_subnets(pool, 20, sampler=sampler, seed=draw)
            adapted = adapt_predictor(
                predictors["RTX_2080_Ti_GPU_ofa"], few, sources=[note10], seed=draw
            )
            result = scored(adapted.predict_batch(batch), measured, adapted.metadata.conformal)
            rows.append(
                {
                    "sampler": sampler,
                    "draw": draw,
                    "method": adapted.metadata.adaptation.method,
                    **result,
                }
            )
    adapted_rows = pd.DataFrame(rows)
    print(
        "\nRTX predictor adapted to the P40 from 20 samples (Note10 blended), its interval from its"
    )
    print("cross-validation, scored on the P40's last 15%:")
    print(adapted_rows.round(2).to_string(index=False))
    print(
        adapted_rows.groupby("sampler")[["coverage", "halfwidth"]]
        .agg(["mean", "min", "max"])
        .round(2)
        .to_string()
    )
    figures["adapted"] = adapted_rows.to_dict("records")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "interval_benchmark.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
