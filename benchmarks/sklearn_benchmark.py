"""scikit-learn where it is the tool, measured against the hand-written code it replaced,
side by side in one run (the hand-written versions are kept here, as references):

1. The wide part's two ridge fits with the penalty chosen on the validation rows, on the
   seed's RTX 2080 Ti OFA file (key split): normal equations solved per penalty (before)
   against ``sklearn.linear_model.Ridge`` on the sparse one-hot matrix (now), time and the
   largest difference of the coefficients.
2. The folds of few-shot cross-validation (K = 20): a seeded permutation cut in 5 (before)
   against ``sklearn.model_selection.KFold`` (now).
3. Regression metrics of 1,500 predictions: NumPy formulas (before) against
   ``sklearn.metrics`` (now), alone and inside `regression_metrics` (with the rank
   correlations, which dominate).

    python benchmarks/sklearn_benchmark.py [--shared ../shared] [--repeat 10]

Each pair runs in turn and the best of ``--repeat`` times of each is kept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold
from timing import side_by_side

from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.encoding.encoders import joint_width
from ofa_latency_kedro.predictors import prepare_data, regression_metrics
from ofa_latency_kedro.predictors.kinds.wide_deep import RIDGE_GRID, fit_wide
from ofa_latency_kedro.predictors.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    root_mean_squared_error,
)

RESULTS = Path(__file__).resolve().parent / "results"


# -- before: the hand-written ridge path (normal equations, penalty chosen on validation) ----
def _ridge_path(gram: np.ndarray, moment: np.ndarray, penalised: np.ndarray) -> list[np.ndarray]:
    solutions = []
    for penalty in RIDGE_GRID:
        system = gram.copy()
        system[np.diag_indices(len(gram))] += penalty * penalised
        solutions.append(np.linalg.solve(system, moment))
    return solutions


def _onehot(index: np.ndarray, n_wide: int) -> np.ndarray:
    onehot = np.zeros((len(index), n_wide))
    rows, columns = np.nonzero(index >= 0)
    onehot[rows, index[rows, columns]] = 1.0
    return onehot


def _best(solutions, predict, latency) -> np.ndarray:
    errors = [np.mean(np.abs(predict(w) - latency) / latency) for w in solutions]
    return solutions[int(np.argmin(errors))]


def fit_wide_by_hand(train, val, n_wide, mean, std):
    train_index, train_deep = train.inputs
    val_index, val_deep = val.inputs
    features = np.c_[(train_deep - mean) / std, np.ones(len(train))]
    val_features = np.c_[(val_deep - mean) / std, np.ones(len(val))]
    penalised = np.r_[np.ones(features.shape[1] - 1), 0.0]
    linear = _best(
        _ridge_path(features.T @ features, features.T @ train.latency, penalised),
        lambda w: val_features @ w,
        val.latency,
    )
    residual = train.latency - features @ linear
    gram, moment = np.zeros((n_wide, n_wide)), np.zeros(n_wide)
    for start in range(0, len(train), 4096):
        onehot = _onehot(train_index[start : start + 4096], n_wide)
        gram += onehot.T @ onehot
        moment += onehot.T @ residual[start : start + 4096]
    val_onehot = _onehot(val_index, n_wide)
    val_prior = val_features @ linear
    table = _best(
        _ridge_path(gram, moment, np.ones(n_wide)),
        lambda t: val_prior + val_onehot @ t,
        val.latency,
    )
    return linear[:-1], float(linear[-1]), table


def ridge(shared: Path, repeat: int) -> dict[str, float]:
    table = load_latency_csv(shared / "seed_data" / "latency" / "RTX_2080_Ti_GPU_ofa.csv")
    data = prepare_data(table)
    n_wide = joint_width(len(data.resolutions))
    deep = data.train.inputs[1]
    mean, std = deep.mean(axis=0).astype(float), deep.std(axis=0).astype(float) + 1e-6
    by_hand_s, by_hand, sklearn_s, ours = side_by_side(
        lambda: fit_wide_by_hand(data.train, data.val, n_wide, mean, std),
        lambda: fit_wide(data.train, data.val, n_wide, mean, std),
        repeat,
    )
    return {
        "rows": len(data.train),
        "columns": n_wide,
        "by_hand_s": by_hand_s,
        "sklearn_s": sklearn_s,
        "max_weight_difference": float(np.abs(by_hand[0] - ours[0]).max()),
        "max_table_difference": float(np.abs(by_hand[2] - ours[2]).max()),
    }


def folds(repeat: int, k: int = 20) -> dict[str, float]:
    def by_hand() -> list[np.ndarray]:
        order = np.random.default_rng(0).permutation(k)
        return [order[i::5] for i in range(5)]

    def sklearn() -> list[np.ndarray]:
        return [held for _, held in KFold(5, shuffle=True, random_state=0).split(np.zeros(k))]

    rounds = 1000
    by_hand_s, _, sklearn_s, _ = side_by_side(
        lambda: [by_hand() for _ in range(rounds)],
        lambda: [sklearn() for _ in range(rounds)],
        repeat,
    )
    return {"k": k, "by_hand_us": by_hand_s / rounds * 1e6, "sklearn_us": sklearn_s / rounds * 1e6}


def metrics(repeat: int, n: int = 1500) -> dict[str, float]:
    rng = np.random.default_rng(0)
    y = rng.uniform(5, 50, n)
    p = y * rng.normal(1, 0.03, n)

    def by_hand() -> tuple[float, float, float]:
        error = p - y
        return np.mean(np.abs(error)), np.sqrt(np.mean(error**2)), np.mean(np.abs(error) / y)

    def sklearn() -> tuple[float, float, float]:
        return (
            mean_absolute_error(y, p),
            root_mean_squared_error(y, p),
            mean_absolute_percentage_error(y, p),
        )

    rounds = 200
    by_hand_s, hand, sklearn_s, ours = side_by_side(
        lambda: [by_hand() for _ in range(rounds)],
        lambda: [sklearn() for _ in range(rounds)],
        repeat,
    )
    whole_s, _, _, _ = side_by_side(
        lambda: [regression_metrics(y, p) for _ in range(rounds)], lambda: None, repeat
    )
    return {
        "n": n,
        "by_hand_us": by_hand_s / rounds * 1e6,
        "sklearn_us": sklearn_s / rounds * 1e6,
        "regression_metrics_us": whole_s / rounds * 1e6,
        "max_difference": float(np.max(np.abs(np.array(hand[-1]) - np.array(ours[-1])))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    figures = {"ridge": ridge(args.shared, args.repeat), "folds": folds(args.repeat)}
    figures["metrics"] = metrics(args.repeat)
    r, f, m = figures["ridge"], figures["folds"], figures["metrics"]
    print("| what | hand-written | scikit-learn | ratio |\n|---|---|---|---|")
    print(
        f"| wide ridge fits, {r['rows']:,} rows x {r['columns']} one-hot columns, "
        f"{len(RIDGE_GRID)} penalties each | {r['by_hand_s'] * 1e3:.0f} ms | "
        f"{r['sklearn_s'] * 1e3:.0f} ms | {r['by_hand_s'] / r['sklearn_s']:.2f}x |"
    )
    print(
        f"| 5 folds of K={f['k']} samples | {f['by_hand_us']:.1f} us | {f['sklearn_us']:.1f} us | "
        f"{f['by_hand_us'] / f['sklearn_us']:.2f}x |"
    )
    print(
        f"| MAE + RMSE + MAPE of {m['n']:,} rows | {m['by_hand_us']:.0f} us | "
        f"{m['sklearn_us']:.0f} us | {m['by_hand_us'] / m['sklearn_us']:.2f}x |"
    )
    print(
        f"\nregression_metrics (with Spearman and Kendall) of {m['n']:,} rows: "
        f"{m['regression_metrics_us'] / 1e3:.2f} ms per call"
    )
    print(
        f"largest coefficient difference, ridge: weights {r['max_weight_difference']:.1e}, "
        f"table {r['max_table_difference']:.1e}; MAPE {m['max_difference']:.1e}"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sklearn_benchmark.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
