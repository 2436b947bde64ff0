"""Finetuning nodes: learning curves of few-shot adaptation to a new device, and the adapted
predictor, recorded in MLflow."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ofa_latency_kedro.predictors import LatencyPredictor, adapt_predictor
from ofa_latency_kedro.predictors.adaptation import learning_curve, pick_subnets
from ofa_latency_kedro.predictors.plots import learning_curve_plot
from ofa_latency_kedro.search_space.table import dataset_names
from ofa_latency_kedro.tracking import log_finetuning_run

logger = logging.getLogger(__name__)


def _sources(
    predictors: dict[str, Callable[[], LatencyPredictor]], target: pd.DataFrame, wanted: Any
) -> list[str]:
    """The source predictors' names, the one adapted first, the others blended in: as given,
    or (``auto``) every predictor of the target's space trained on other hardware."""
    hardware, space = str(target["hardware"].iloc[0]), str(target["space"].iloc[0])
    if wanted in (None, "auto"):
        names = sorted(
            name
            for name in predictors
            if name.endswith(f"_{space}") and not name.startswith(f"{hardware}_")
        )
        if not names:
            raise ValueError(
                f"no predictor of space {space!r} trained on other hardware than {hardware}; "
                f"data/06_models/predictors holds {', '.join(sorted(predictors)) or 'nothing'}"
            )
        return names
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    for name in names:
        if name.startswith(f"{hardware}_"):
            raise ValueError(f"finetuning.sources {name!r} was trained on the target device itself")
        if name not in predictors:
            raise ValueError(
                f"finetuning.sources names {name!r}; data/06_models/predictors holds "
                f"{', '.join(sorted(predictors)) or 'nothing (run the training pipeline)'}"
            )
    return names


def finetuning_curves(
    model_input: pd.DataFrame,
    latency_predictors: dict[str, Callable[[], LatencyPredictor]],
    generalized_predictors: dict[str, Callable[[], LatencyPredictor]],
    finetuning: dict[str, Any],
) -> tuple[pd.DataFrame, Figure, dict[str, LatencyPredictor]]:
    """Adapt a predictor of other hardware to the target device from K of its training
    subnets, for every K, method, sampler and draw; score on the target's test subnets.
    The generalized predictor that never saw the target's hardware (from the
    generalization pipeline), when there is one, is adapted the same way (its methods
    named ``generalized/<method>``)."""
    target_name = finetuning["target"]
    names = dataset_names(model_input)
    target = model_input[names == target_name]
    if target.empty:
        raise ValueError(
            f"finetuning.target {target_name!r} is not in the model input; it holds "
            f"{', '.join(sorted(names.unique()))}"
        )
    names = _sources(latency_predictors, target, finetuning.get("sources", "auto"))
    source_name = names[0]
    source = latency_predictors[source_name]()
    blended = [latency_predictors[name]() for name in names[1:]]
    pool = target[target["split"] == "train"]
    test = target[target["split"] == "test"]
    ks = [int(k) for k in finetuning.get("ks", [5, 10, 20, 50, 100, 700])]
    too_many = [k for k in ks if k > len(pool)]
    if too_many:
        logger.warning(
            "Leaving out K=%s: %s has %d training subnets", too_many, target_name, len(pool)
        )
    settings = {
        "ks": [k for k in ks if k <= len(pool)],
        "draws": [int(d) for d in finetuning.get("draws", [0, 1, 2])],
        "methods": finetuning.get("methods", ["auto"]),
        "samplers": finetuning.get("samplers", ["random"]),
    }
    curves = learning_curve(source, pool, test, sources=blended, **settings)
    curves.insert(0, "sources", "+".join(names))
    hardware = str(target["hardware"].iloc[0])
    generalized_name = f"without_{hardware}"
    if generalized_name in generalized_predictors:
        generalized = generalized_predictors[generalized_name]()
        extra = learning_curve(generalized, pool, test, **settings)
        extra.insert(0, "sources", "generalized:" + "+".join(generalized.devices))
        curves = pd.concat([curves, extra], ignore_index=True)
    else:
        logger.info(
            "No generalized predictor without %s in data/06_models/generalized (run the "
            "generalization pipeline): comparing per-device sources only",
            hardware,
        )
    curves.insert(0, "target", target_name)
    figure = learning_curve_plot(curves, f"{' + '.join(names)} adapted to {target_name}")
    adapt_k = int(finetuning.get("adapt_k", 20))
    sampler = finetuning.get("adapt_sampler", "informative")
    adapted = adapt_predictor(
        source,
        pick_subnets(pool, adapt_k, sampler=sampler, seed=0),
        sources=blended,
        hardware=hardware,
    )
    saved = {f"{target_name}_from_{source.hardware}_k{adapt_k}": adapted}
    log_finetuning_run(curves, figure, saved)
    summary = curves.groupby(["method", "sampler", "k"])[["mape", "spearman"]].mean()
    logger.info(
        "Few-shot adaptation of %s to %s (test rows) -> data/08_reporting/finetuning_curves."
        "{csv,png}, adapted predictor data/06_models/adapted/%s.pt\n%s",
        " + ".join(names),
        target_name,
        next(iter(saved)),
        summary.to_string(),
    )
    return curves, figure, saved
