"""How far the one-call few-shot calibration can go at K=20 (or ``--k``): variants of its fit
and of `auto`'s choice, side by side on the leave-one-device-out cases of
`adaptation_benchmark.ONE_CALL` (the same draws: K subnets from the held-out device's first
85%, or with ``--from-train-only`` its first 70% as the adaptation table draws them; figures
on its last 15%).

Per case, ``train_predictor`` on the known devices' files once (and, for the ensemble
variant, each device's default predictor twice more, training seeds 1 and 2); the columns
the calibrations read (the carried predictors' log predictions, the generalized model's,
the cost features) are computed once for every row, then each draw fits in numpy.

Fits (``calibrate_devices``' design unless named):

``today``              the library's `fit_calibration` (ridge 1 on the standardised costs)
``ridge x``            the ridge at x
``huber``              Huber's loss (1.345 robust standard deviations) instead of squares
``residual ridge x``   the costs standardised after removing what the unpenalised columns
                       explain in 2,000 unmeasured subnets of the space (the pool's
                       subnets), ridge x: the ridge acts on what the costs add
``ensemble``           each carried predictor the log-mean of three trained with seeds 0-2
``with heads``         each carried predictor log-averaged with the generalized model's head
                       of its device

Choices among ``calibrate_devices``, ``calibrate_features`` and ``calibrate`` (today's fits;
``embedding`` left out) by held-out residuals inside the K samples: ``5-fold MAPE``
(today's `auto`), ``leave-one-out MAPE``, ``5-fold squared log error``, and ``1-SE``: the
lowest 5-fold MAPE unless ``calibrate_devices`` is within one standard error of it (paired
over the samples). For the first 3 draws `adapt_predictor`'s own ``auto`` runs too: its
choice must be the ``5-fold MAPE`` one. ``one fit by evidence`` chooses nothing: every
column in one fit, the log predictions (carried and generalized) and the costs as two
groups, each with its own ridge, the ridges set by the marginal likelihood of the samples.

    python benchmarks/calibration_limits.py [--shared ../shared] [--draws 48] [--k 20]
        [--from-train-only]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from adaptation_benchmark import ONE_CALL, ONE_CALL_K, RESULTS, seed_table
from scipy.optimize import minimize
from sklearn.model_selection import KFold

from ofa_latency_kedro import adapt_predictor, train_predictor
from ofa_latency_kedro.encoding import split_table
from ofa_latency_kedro.encoding.splits import DEFAULT_SPLIT
from ofa_latency_kedro.predictors import regression_metrics
from ofa_latency_kedro.predictors.adaptation import (
    Target,
    _device_predictors,
    _on_target,
    few_shot_samples,
)
from ofa_latency_kedro.predictors.calibration import (
    FEATURE_RIDGE,
    apply_calibration,
    calibration_features,
    fit_calibration,
)
from ofa_latency_kedro.predictors.config import TrainingConfig
from ofa_latency_kedro.predictors.fitting import penalised_least_squares
from ofa_latency_kedro.predictors.training import fit_prepared, prepare_data
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.table import dataset_names

ENSEMBLE_SEEDS = (1, 2)
POPULATION = 2000
METHODS = ("calibrate_devices", "calibrate_features", "calibrate")
LETTER = {"calibrate_devices": "d", "calibrate_features": "f", "calibrate": "c"}


def columns(generalized, ensemble, batch: ArchBatch, space: str) -> dict[str, np.ndarray]:
    """The log predictions and costs the calibrations read, for every subnet of ``batch``."""
    target = Target(batch, np.ones(len(batch)), None, space, (), 0)
    ordered = _device_predictors(generalized, target)

    def member_logs(members) -> np.ndarray:
        first, *others = members
        return np.log(
            np.stack(
                [_on_target(first, target).predict_batch(batch)]
                + [other.predict_on_own_network(batch) for other in others],
                axis=1,
            )
        )

    keys = [(member.hardware, member.space) for member in ordered]
    logs = [member_logs(ordered)]
    for members in ensemble:
        by_key = {(member.hardware, member.space): member for member in members}
        logs.append(member_logs([by_key[key] for key in keys]))
    heads = generalized.device_log_latency(batch)
    head_of = [generalized.devices.index(f"{hardware}_{space}") for hardware, space in keys]
    return {
        "members": logs[0],
        "ensemble": np.mean(logs, axis=0),
        "with heads": (logs[0] + heads[:, head_of]) / 2,
        "generalized": np.log(_on_target(generalized, target).predict_batch(batch))[:, None],
        "costs": calibration_features(batch),
        "batch": batch,
    }


def fit_linear(
    free: np.ndarray,
    costs: np.ndarray | None,
    y: np.ndarray,
    *,
    ridge: float = FEATURE_RIDGE,
    huber: bool = False,
    residual: tuple[np.ndarray, np.ndarray] | None = None,
) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    """``log y`` on an intercept and the ``free`` log predictions (unpenalised) plus ridge on
    the standardised ``costs`` (``residual``: standardised after removing what the free
    columns explain in those (free, costs) of unmeasured subnets); the fitted map from
    (free, costs) to log latency."""
    if costs is None:
        design = np.hstack([np.ones((len(y), 1)), free])
        weights = penalised_least_squares(design, y, np.zeros(design.shape[1]))
        return lambda f, c: np.hstack([np.ones((len(f), 1)), f]) @ weights
    if residual is None:
        mean, std = costs.mean(0), costs.std(0) + 1e-6
        explained = np.zeros((free.shape[1] + 1, costs.shape[1]))
        scale = np.ones(costs.shape[1])
    else:
        pop_free, pop_costs = residual
        mean, std = pop_costs.mean(0), pop_costs.std(0)
        pop_design = np.hstack([np.ones((len(pop_free), 1)), pop_free])
        explained = np.linalg.lstsq(pop_design, (pop_costs - mean) / std, rcond=None)[0]
        scale = ((pop_costs - mean) / std - pop_design @ explained).std(0)

    def design_of(f: np.ndarray, c: np.ndarray) -> np.ndarray:
        base = np.hstack([np.ones((len(f), 1)), f])
        return np.hstack([base, ((c - mean) / std - base @ explained) / scale])

    design = design_of(free, costs)
    penalty = [0.0] * (free.shape[1] + 1) + [ridge] * costs.shape[1]
    sample_weight = np.ones(len(y))
    for _ in range(30 if huber else 1):  # Huber's loss: iteratively reweighted least squares
        root = np.sqrt(sample_weight)
        weights = penalised_least_squares(design * root[:, None], y * root, penalty)
        residuals = y - design @ weights
        cut = 1.345 * 1.4826 * np.median(np.abs(residuals - np.median(residuals))) + 1e-12
        sample_weight = np.minimum(1.0, cut / np.maximum(np.abs(residuals), 1e-12))
    return lambda f, c: design_of(f, c) @ weights


def fit_by_evidence(cols: dict[str, np.ndarray], y: np.ndarray):
    """One fit instead of a choice: log latency on an intercept, the carried predictors' and
    the generalized model's log predictions (one group) and the standardised costs (another),
    each group shrunk by its own ridge, the ridges and the noise chosen by the marginal
    likelihood of the K samples (empirical Bayes); the fitted map from columns to log
    latency."""
    predictions = np.hstack([cols["members"], cols["generalized"]])
    centre, mean, std = predictions.mean(0), cols["costs"].mean(0), cols["costs"].std(0) + 1e-6

    def groups_of(c: dict[str, np.ndarray]) -> list[np.ndarray]:
        own = np.hstack([c["members"], c["generalized"]])
        return [own - centre, (c["costs"] - mean) / std]

    groups = groups_of(cols)
    n = len(y)
    # the evidence of what the free intercept leaves: the samples in a basis orthogonal to it
    basis = np.linalg.qr(np.hstack([np.ones((n, 1)), np.eye(n)[:, : n - 1]]))[0][:, 1:]
    projected = [basis.T @ group for group in groups]
    goal = basis.T @ y

    def negative_log_evidence(theta: np.ndarray) -> float:
        covariance = np.eye(n - 1) / np.exp(theta[0])
        for group, log_precision in zip(projected, theta[1:], strict=True):
            covariance += group @ group.T / np.exp(log_precision)
        root = np.linalg.cholesky(covariance)
        z = np.linalg.solve(root, goal)
        return 0.5 * z @ z + np.log(np.diag(root)).sum()

    starts = ([4.0, 0.0, 0.0], [6.0, 2.0, 2.0], [6.0, -2.0, -2.0])
    bounds = [(-5, 15), (-8, 12), (-8, 12)]
    best = min(
        (
            minimize(negative_log_evidence, np.array(x0), method="L-BFGS-B", bounds=bounds)
            for x0 in starts
        ),
        key=lambda result: result.fun,
    )
    noise, *precisions = np.exp(best.x)
    design = np.hstack([np.ones((n, 1)), *groups])
    penalty = np.concatenate(
        [[0.0]] + [np.full(g.shape[1], p / noise) for g, p in zip(groups, precisions, strict=True)]
    )
    weights = penalised_least_squares(design, y, penalty)
    return lambda c: np.hstack([np.ones((len(c["costs"]), 1)), *groups_of(c)]) @ weights


def method_inputs(cols: dict[str, np.ndarray], method: str):
    """The free columns and the costs (None for ``calibrate``) of a method's fit."""
    free = cols["members"] if method == "calibrate_devices" else cols["generalized"]
    return free, None if method == "calibrate" else cols["costs"]


def held_out(cols, y: np.ndarray, method: str, folds) -> np.ndarray:
    """Log residual of every sample, predicted by the method fitted on the other folds."""
    free, costs = method_inputs(cols, method)
    out = np.empty(len(y))
    for keep, held in folds:
        fitted = fit_linear(free[keep], None if costs is None else costs[keep], y[keep])
        out[held] = y[held] - fitted(free[held], None if costs is None else costs[held])
    return out


def one_draw(cols, test, population, latency, truth, *, draw: int) -> dict[str, object]:
    """Test MAPE of every fit and choice for one draw (``cols``: its K samples)."""
    y = np.log(latency)

    def scored(log_predicted: np.ndarray) -> float:
        return regression_metrics(truth, np.exp(log_predicted))["mape"]

    forced = {}
    for method in METHODS:  # today's fits: the library's own, which fit_linear reproduces
        free, costs = method_inputs(cols, method)
        test_free, test_costs = method_inputs(test, method)
        calibration = fit_calibration(
            np.exp(free[:, 0]), latency, costs, list(np.exp(free[:, 1:].T))
        )
        forced[method] = np.log(
            apply_calibration(
                calibration,
                test["batch"],
                np.exp(test_free[:, 0]),
                list(np.exp(test_free[:, 1:].T)),
            )
        )
        replica = fit_linear(free, costs, y)(test_free, test_costs)
        np.testing.assert_allclose(replica, forced[method], atol=1e-6)
    free, costs = method_inputs(cols, "calibrate_devices")
    test_free, test_costs = method_inputs(test, "calibrate_devices")
    figures: dict[str, object] = {
        "today": scored(forced["calibrate_devices"]),
        "calibrate_features (generalized)": scored(forced["calibrate_features"]),
    }
    variants = {
        "ridge 0.3": fit_linear(free, costs, y, ridge=0.3),
        "ridge 3": fit_linear(free, costs, y, ridge=3.0),
        "huber": fit_linear(free, costs, y, huber=True),
        "residual ridge 1": fit_linear(free, costs, y, ridge=1.0, residual=population),
        "residual ridge 3": fit_linear(free, costs, y, ridge=3.0, residual=population),
    }
    for name, fitted in variants.items():
        figures[name] = scored(fitted(test_free, test_costs))
    for members in ("ensemble", "with heads"):
        fitted = fit_linear(cols[members], costs, y)
        figures[members] = scored(fitted(test[members], test_costs))
    five = list(KFold(5, shuffle=True, random_state=draw).split(y))
    loo = list(KFold(len(y)).split(y))
    res5 = {m: held_out(cols, y, m, five) for m in METHODS}
    resloo = {m: held_out(cols, y, m, loo) for m in METHODS}
    ape5 = {m: np.abs(np.exp(-r) - 1) for m, r in res5.items()}
    rules = {
        "5-fold MAPE": min(METHODS, key=lambda m: ape5[m].mean()),
        "leave-one-out MAPE": min(METHODS, key=lambda m: np.abs(np.exp(-resloo[m]) - 1).mean()),
        "5-fold squared log error": min(METHODS, key=lambda m: np.mean(res5[m] ** 2)),
    }
    gap = ape5["calibrate_devices"] - ape5[rules["5-fold MAPE"]]
    within = not gap.any() or gap.mean() <= gap.std(ddof=1) / np.sqrt(len(gap))
    rules["1-SE"] = "calibrate_devices" if within else rules["5-fold MAPE"]
    for rule, method in rules.items():
        figures[f"choice: {rule}"] = scored(forced[method])
        figures[f"chosen: {rule}"] = method
    figures["one fit by evidence"] = scored(fit_by_evidence(cols, y)(test))
    figures["cv_mape"] = {m: float(ape5[m].mean() * 100) for m in METHODS}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    parser.add_argument("--draws", type=int, default=48)
    parser.add_argument("--k", type=int, default=ONE_CALL_K, help="samples per draw")
    parser.add_argument(
        "--from-train-only",
        action="store_true",
        help="draw the K samples from the first 70%% (the adaptation table's protocol), not 85%%",
    )
    args = parser.parse_args()
    folder = args.shared / "seed_data" / "latency"

    def table(name: str, space: str, merge: bool = True) -> pd.DataFrame:
        return seed_table(folder, name, space, merge)

    report = {}
    for space, held_out_device, known in ONE_CALL:
        known_rows = pd.concat([table(name, space) for name in known], ignore_index=True)
        generalized = train_predictor(known_rows)
        split = split_table(known_rows, DEFAULT_SPLIT)  # as train_predictor splits it
        names = dataset_names(split)
        ensemble = [
            [
                fit_prepared(prepare_data(split[names == device]), TrainingConfig(seed=seed))
                for device in generalized.devices
            ]
            for seed in ENSEMBLE_SEEDS
        ]
        target = split_table(table(held_out_device, space, merge=False), "seed")
        drawn = ["train"] if args.from_train_only else ["train", "val"]
        pool, rows = target[target["split"].isin(drawn)], target[target["split"] == "test"]
        name = str(rows["space"].iloc[0])
        test = columns(generalized, ensemble, ArchBatch.from_frame(rows), name)
        unmeasured = columns(
            generalized, ensemble, ArchBatch.from_frame(pool.iloc[:POPULATION]), name
        )
        population = (unmeasured["members"], unmeasured["costs"])
        truth = rows["latency"].to_numpy(float)
        per_draw = []
        for draw in range(args.draws):
            few = pool.sample(args.k, random_state=draw)
            batch, latency, _, _ = few_shot_samples(few)
            cols = columns(generalized, ensemble, batch, name)
            figures = one_draw(cols, test, population, latency, truth, draw=draw)
            if draw < 3:
                adapted = adapt_predictor(generalized, few, seed=draw)
                figures["adapt_predictor auto"] = regression_metrics(
                    truth, adapted.predict_batch(test["batch"])
                )["mape"]
                figures["adapt_predictor chose"] = adapted.metadata.adaptation.method
            per_draw.append(figures)
        report[held_out_device] = summarise(held_out_device, known, per_draw, args.k)
    RESULTS.mkdir(exist_ok=True)
    suffix = "_train_only" if args.from_train_only else ""
    (RESULTS / f"calibration_limits_k{args.k}{suffix}.json").write_text(
        json.dumps(report, indent=2)
    )


def summarise(device: str, known, per_draw: list[dict[str, object]], k: int) -> dict[str, object]:
    """Print and return, per fit or choice, the mean MAPE of the first 3 draws and of all,
    and the mean paired difference against today (``today`` / ``5-fold MAPE``) with its
    standard error."""
    print(f"\n{device} from {'+'.join(known)}, K={k}, {len(per_draw)} draws:")
    first = per_draw[:3]
    print(
        "    adapt_predictor auto (first 3 draws): "
        + ", ".join(f"{f['adapt_predictor chose']} {f['adapt_predictor auto']:.3f}%" for f in first)
        + "; 5-fold MAPE rule here: "
        + ", ".join(f"{f['chosen: 5-fold MAPE']} {f['choice: 5-fold MAPE']:.3f}%" for f in first)
    )
    print(
        "    per draw (first 3): today "
        + ", ".join(f"{f['today']:.3f}%" for f in first)
        + "; cross-validated MAPE inside the samples: "
        + "; ".join(", ".join(f"{m} {v:.2f}%" for m, v in f["cv_mape"].items()) for f in first)
    )
    summary = {}
    for key in per_draw[0]:
        if not isinstance(per_draw[0][key], float) or key.startswith("adapt_predictor"):
            continue
        by_choice = key.startswith("choice:") or key == "one fit by evidence"
        baseline = "choice: 5-fold MAPE" if by_choice else "today"
        values = np.array([f[key] for f in per_draw])
        gap = values - np.array([f[baseline] for f in per_draw])
        se = gap.std(ddof=1) / np.sqrt(len(gap)) if len(gap) > 1 else float("nan")
        chosen = key.replace("choice:", "chosen:", 1) if key.startswith("choice:") else None
        picks = "".join(LETTER[f[chosen]] for f in per_draw) if chosen else ""
        summary[key] = {
            "mape_3": float(values[:3].mean()),
            "mape": float(values.mean()),
            "vs_baseline": float(gap.mean()),
            "vs_baseline_se": float(se),
        }
        print(
            f"    {key:36s} {values[:3].mean():6.3f}%  {values.mean():6.3f}%  "
            f"{gap.mean():+.3f} ({se:.3f})  {picks}"
        )
    return summary


if __name__ == "__main__":
    main()
