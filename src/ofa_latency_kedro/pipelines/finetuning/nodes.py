"""Finetuning nodes, one per stage: select the target device's subnets, load the source
predictors, score learning curves of few-shot adaptation, report them, adapt the predictor.
(Their MLflow records are written by `ofa_latency_kedro.hooks`.)"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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


@dataclass(frozen=True)
class FinetuningTarget:
    """The new device's dataset: its training subnets (the pool the K samples are drawn
    from) and its test subnets (where every adaptation is scored)."""

    name: str
    hardware: str
    space: str
    pool: pd.DataFrame
    test: pd.DataFrame


def select_target(model_input: pd.DataFrame, finetuning: dict[str, Any]) -> FinetuningTarget:
    """The rows of ``finetuning.target`` in the model input, split into pool and test."""
    settings = FinetuningSettings.from_dict(finetuning)
    names = dataset_names(model_input)
    select_datasets(names.unique(), [settings.target], "finetuning.target", "the model input")
    rows = model_input[names == settings.target]
    return FinetuningTarget(
        name=settings.target,
        hardware=str(rows["hardware"].iloc[0]),
        space=str(rows["space"].iloc[0]),
        pool=rows[rows["split"] == "train"],
        test=rows[rows["split"] == "test"],
    )


def load_sources(
    target: FinetuningTarget, latency_predictors: PredictorFolder, finetuning: dict[str, Any]
) -> dict[str, LatencyPredictor]:
    """The source predictors by name, the one adapted first, the others blended in."""
    settings = FinetuningSettings.from_dict(finetuning)
    latency_predictors, sources = with_registered_models(
        latency_predictors, settings.sources, "finetuning.sources"
    )
    names = _sources(latency_predictors, target.hardware, target.space, sources)
    return {name: latency_predictors[name]() for name in names}


def score_learning_curves(
    target: FinetuningTarget,
    sources: dict[str, LatencyPredictor],
    generalized_predictors: PredictorFolder,
    finetuning: dict[str, Any],
) -> pd.DataFrame:
    """Adapt the first source to the target device from K of its training subnets (the
    other sources blended in), for every K, method, sampler and draw; score on the target's
    test subnets. The generalized predictor that never saw the target's hardware (from the
    generalization pipeline), when there is one, is adapted the same way (its methods named
    ``generalized/<method>``)."""
    settings = FinetuningSettings.from_dict(finetuning)
    too_many = [k for k in settings.ks if k > len(target.pool)]
    if too_many:
        logger.warning(
            "Leaving out K=%s: %s has %d training subnets", too_many, target.name, len(target.pool)
        )
    curve_settings = {
        "ks": [k for k in settings.ks if k <= len(target.pool)],
        "draws": settings.draws,
        "methods": settings.methods,
        "samplers": settings.samplers,
    }
    source, *blended = sources.values()
    curves = learning_curve(source, target.pool, target.test, sources=blended, **curve_settings)
    curves.insert(0, "sources", "+".join(sources))
    generalized_name = f"without_{target.hardware}"
    if generalized_name in generalized_predictors:
        generalized = generalized_predictors[generalized_name]()
        extra = learning_curve(generalized, target.pool, target.test, **curve_settings)
        extra.insert(0, "sources", "generalized:" + "+".join(generalized.devices))
        curves = pd.concat([curves, extra], ignore_index=True)
    else:
        logger.info(
            "No generalized predictor %s (%s; run the generalization pipeline): comparing "
            "per-device sources only",
            generalized_name,
            generalized_predictors.describe(),
        )
    curves.insert(0, "target", target.name)
    return curves


def report_learning_curves(
    curves: pd.DataFrame, target: FinetuningTarget, sources: dict[str, LatencyPredictor]
) -> tuple[pd.DataFrame, Figure]:
    """The learning curves as reported (the table and its plot), their means logged."""
    summary = curves.groupby(["method", "sampler", "k"])[["mape", "spearman"]].mean()
    logger.info(
        "Few-shot adaptation of %s to %s (test rows):\n%s",
        " + ".join(sources),
        target.name,
        summary.to_string(),
    )
    return curves, learning_curve_plot(curves, f"{' + '.join(sources)} adapted to {target.name}")


def adapt_to_target(
    target: FinetuningTarget, sources: dict[str, LatencyPredictor], finetuning: dict[str, Any]
) -> dict[str, LatencyPredictor]:
    """The first source adapted to the target device from ``adapt_k`` of its training
    subnets picked by ``adapt_sampler``, as ``<target>_from_<source hardware>_k<K>``."""
    settings = FinetuningSettings.from_dict(finetuning)
    source, *blended = sources.values()
    adapted = adapt_predictor(
        source,
        pick_subnets(target.pool, settings.adapt_k, sampler=settings.adapt_sampler, seed=0),
        sources=blended,
        hardware=target.hardware,
    )
    name = f"{settings.target}_from_{source.hardware}_k{settings.adapt_k}"
    logger.info("Adapted predictor %s", name)
    return {name: adapted}
