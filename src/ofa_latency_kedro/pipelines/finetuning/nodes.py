"""Finetuning nodes: learning curves of few-shot adaptation to a new device, and the adapted
predictor. (Their MLflow records are written by `ofa_latency_kedro.hooks`.)"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ofa_latency_kedro.datasets import PredictorFolder
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.experiments import learning_curve
from ofa_latency_kedro.mlflow_models import with_registered_models
from ofa_latency_kedro.pipelines.common import select_datasets
from ofa_latency_kedro.pipelines.finetuning.settings import FinetuningSettings
from ofa_latency_kedro.predictors import LatencyPredictor, adapt_predictor
from ofa_latency_kedro.predictors.plots import learning_curve_plot
from ofa_latency_kedro.search_space.selection import pick_subnets
from ofa_latency_kedro.search_space.table import dataset_names

logger = logging.getLogger(__name__)


def _sources(predictors: PredictorFolder, hardware: str, space: str, wanted: Any) -> list[str]:
    """The source predictors' names, the one adapted first, the others blended in: as given,
    or (``auto``) every predictor of the target's space trained on other hardware."""
    if wanted == "auto":
        names = sorted(
            name
            for name in predictors
            if name.endswith(f"_{space}") and not name.startswith(f"{hardware}_")
        )
        if not names:
            raise ParameterError(
                "finetuning.sources",
                f"is auto, and no predictor of space {space!r} was trained on other hardware "
                f"than {hardware}: {predictors.describe()}",
            )
        return names
    for name in wanted:
        if name.startswith(f"{hardware}_"):
            raise ParameterError(
                "finetuning.sources",
                f"names {name!r}, which was trained on the target device itself",
            )
    return select_datasets(predictors, wanted, "finetuning.sources", str(predictors.path))


def finetuning_curves(
    model_input: pd.DataFrame,
    latency_predictors: PredictorFolder,
    generalized_predictors: PredictorFolder,
    finetuning: dict[str, Any],
) -> tuple[pd.DataFrame, Figure, dict[str, LatencyPredictor]]:
    """Adapt a predictor of other hardware to the target device from K of its training
    subnets, for every K, method, sampler and draw; score on the target's test subnets.
    The generalized predictor that never saw the target's hardware (from the
    generalization pipeline), when there is one, is adapted the same way (its methods
    named ``generalized/<method>``)."""
    settings = FinetuningSettings.from_dict(finetuning)
    names = dataset_names(model_input)
    select_datasets(names.unique(), [settings.target], "finetuning.target", "the model input")
    target = model_input[names == settings.target]
    hardware, space = str(target["hardware"].iloc[0]), str(target["space"].iloc[0])
    latency_predictors, sources = with_registered_models(
        latency_predictors, settings.sources, "finetuning.sources"
    )
    source_names = _sources(latency_predictors, hardware, space, sources)
    source = latency_predictors[source_names[0]]()
    blended = [latency_predictors[name]() for name in source_names[1:]]
    pool = target[target["split"] == "train"]
    test = target[target["split"] == "test"]
    too_many = [k for k in settings.ks if k > len(pool)]
    if too_many:
        logger.warning(
            "Leaving out K=%s: %s has %d training subnets", too_many, settings.target, len(pool)
        )
    curve_settings = {
        "ks": [k for k in settings.ks if k <= len(pool)],
        "draws": settings.draws,
        "methods": settings.methods,
        "samplers": settings.samplers,
    }
    curves = learning_curve(source, pool, test, sources=blended, **curve_settings)
    curves.insert(0, "sources", "+".join(source_names))
    generalized_name = f"without_{hardware}"
    if generalized_name in generalized_predictors:
        generalized = generalized_predictors[generalized_name]()
        extra = learning_curve(generalized, pool, test, **curve_settings)
        extra.insert(0, "sources", "generalized:" + "+".join(generalized.devices))
        curves = pd.concat([curves, extra], ignore_index=True)
    else:
        logger.info(
            "No generalized predictor %s (%s; run the generalization pipeline): comparing "
            "per-device sources only",
            generalized_name,
            generalized_predictors.describe(),
        )
    curves.insert(0, "target", settings.target)
    figure = learning_curve_plot(curves, f"{' + '.join(source_names)} adapted to {settings.target}")
    adapted = adapt_predictor(
        source,
        pick_subnets(pool, settings.adapt_k, sampler=settings.adapt_sampler, seed=0),
        sources=blended,
        hardware=hardware,
    )
    saved = {f"{settings.target}_from_{source.hardware}_k{settings.adapt_k}": adapted}
    summary = curves.groupby(["method", "sampler", "k"])[["mape", "spearman"]].mean()
    logger.info(
        "Few-shot adaptation of %s to %s (test rows), adapted predictor %s:\n%s",
        " + ".join(source_names),
        settings.target,
        next(iter(saved)),
        summary.to_string(),
    )
    return curves, figure, saved
