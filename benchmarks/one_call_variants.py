"""What might bring the one-call few-shot path to the best method's figure: ways of choosing
or combining the adaptation methods inside K samples, measured side by side on the
leave-one-device-out cases of `adaptation_benchmark.ONE_CALL` (K=20, the same draws).

Per case, ``train_predictor`` on the known devices' files once; per draw (K subnets from the
held-out device's first 85%, figures on its last 15%), each applicable method forced, with its
held-out residuals of the cross-validation inside the K samples (the adapted predictor's
`Conformal`), then:

``auto``          today: the method of the lowest cross-validated MAPE;
``average``       the log-average of ``calibrate_devices`` and ``calibrate_features``;
``stack``         Breiman's stacking: convex weights over every method minimising the squared
                  sum of their held-out log residuals, the log predictions so weighted;
``stack pair``    the same over ``calibrate_devices`` and ``calibrate_features`` only;
``ridge x``       ``calibrate_devices`` with the ridge of its cost features at x (default 1).

The first 3 draws are `adaptation_benchmark`'s; with more draws (``--draws``, 24) the mean
and the paired difference against ``auto`` (with its standard error) say what is noise.

    python benchmarks/one_call_variants.py [--shared ../shared] [--draws 24]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from adaptation_benchmark import ONE_CALL, ONE_CALL_K, RESULTS, seed_table
from scipy.optimize import nnls

from ofa_latency_kedro import adapt_predictor, train_predictor
from ofa_latency_kedro.encoding import split_table
from ofa_latency_kedro.predictors import calibration, regression_metrics
from ofa_latency_kedro.predictors.adaptation import METHODS, applies
from ofa_latency_kedro.search_space import ArchBatch

PAIR = ("calibrate_devices", "calibrate_features")
RIDGES = (0.3, 3.0)


def convex_weights(residuals: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 minimising ``|residuals @ w|^2`` (the sum imposed
    by a heavy extra row of non-negative least squares)."""
    heavy = 1e3
    design = np.vstack([residuals, np.full(residuals.shape[1], heavy)])
    goal = np.append(np.zeros(len(residuals)), heavy)
    weights = nnls(design, goal)[0]
    return weights / weights.sum()


def draw_figures(
    generalized, few: pd.DataFrame, draw: int, test: ArchBatch, truth: np.ndarray
) -> dict[str, tuple[float, float]]:
    """MAPE and Spearman on the test rows of every variant for one draw."""
    methods = [m for m in METHODS if applies(generalized, m)]
    log_predictions, residuals = {}, {}
    for method in methods:
        adapted = adapt_predictor(generalized, few, method=method, seed=draw)
        log_predictions[method] = np.log(adapted.predict_batch(test))
        residuals[method] = np.asarray(adapted.metadata.conformal.log_residuals)
    cv_mape = {m: float(np.mean(np.abs(np.exp(-r) - 1))) for m, r in residuals.items()}
    variants = {"auto": log_predictions[min(cv_mape, key=cv_mape.get)]}
    variants.update({f"{m} forced": log_predictions[m] for m in methods})
    variants["average"] = np.mean([log_predictions[m] for m in PAIR], axis=0)
    for name, members in (("stack", methods), ("stack pair", PAIR)):
        weights = convex_weights(np.stack([residuals[m] for m in members], axis=1))
        variants[name] = sum(w * log_predictions[m] for w, m in zip(weights, members, strict=True))
    default = calibration.FEATURE_RIDGE
    for ridge in RIDGES:
        calibration.FEATURE_RIDGE = ridge
        try:
            adapted = adapt_predictor(generalized, few, method="calibrate_devices", seed=draw)
        finally:
            calibration.FEATURE_RIDGE = default
        variants[f"ridge {ridge:g}"] = np.log(adapted.predict_batch(test))
    figures = {}
    for name, log_predicted in variants.items():
        metrics = regression_metrics(truth, np.exp(log_predicted))
        figures[name] = (metrics["mape"], metrics["spearman"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    parser.add_argument("--draws", type=int, default=24)
    args = parser.parse_args()
    folder = args.shared / "seed_data" / "latency"

    def table(name: str, space: str, merge: bool = True) -> pd.DataFrame:
        return seed_table(folder, name, space, merge)

    report = {}
    for space, held_out, known in ONE_CALL:
        generalized = train_predictor(
            pd.concat([table(name, space) for name in known], ignore_index=True)
        )
        target = split_table(table(held_out, space, merge=False), "seed")
        pool, rows = target[target["split"] != "test"], target[target["split"] == "test"]
        test, truth = ArchBatch.from_frame(rows), rows["latency"].to_numpy()
        per_draw = [
            draw_figures(generalized, pool.sample(ONE_CALL_K, random_state=draw), draw, test, truth)
            for draw in range(args.draws)
        ]
        print(f"\n{held_out} ({space}) from {'+'.join(known)}, K={ONE_CALL_K}:")
        print(f"    {'variant':28s} 3 draws (Spearman)   {args.draws} draws   vs auto (se)")
        auto = np.array([figures["auto"][0] for figures in per_draw])
        report[held_out] = {}
        for name in per_draw[0]:
            mape = np.array([figures[name][0] for figures in per_draw])
            spearman = np.array([figures[name][1] for figures in per_draw])
            gain = mape - auto
            se = gain.std(ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else float("nan")
            report[held_out][name] = {
                "mape_3": float(mape[:3].mean()),
                "spearman_3": float(spearman[:3].mean()),
                "mape": float(mape.mean()),
                "spearman": float(spearman.mean()),
                "vs_auto": float(gain.mean()),
                "vs_auto_se": float(se),
            }
            print(
                f"    {name:28s} {mape[:3].mean():5.2f}% ({spearman[:3].mean():.4f})"
                f"     {mape.mean():5.2f}%    {gain.mean():+.3f} ({se:.3f})",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "one_call_variants.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
