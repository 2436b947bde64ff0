"""Generalization nodes: one predictor across devices, scored leave-one-hardware-out. (Its
MLflow records are written by `ofa_latency_kedro.hooks`.)"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ofa_latency_kedro.experiments import leave_one_hardware_out
from ofa_latency_kedro.pipelines.common import select_datasets
from ofa_latency_kedro.pipelines.generalization.settings import GeneralizationSettings
from ofa_latency_kedro.predictors import LatencyPredictor
from ofa_latency_kedro.predictors.generalization import reference_subnets, train_generalized
from ofa_latency_kedro.predictors.plots import leave_one_out_plot
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.table import dataset_names

logger = logging.getLogger(__name__)


def _reference_table(rows: pd.DataFrame, count: int, space: str) -> pd.DataFrame:
    """The reference subnets of one space, in the latency-CSV ``child_arch`` form (at width
    1.0; measure the same genes on a device of another width)."""
    archs = ArchBatch.from_frame(reference_subnets(rows, count)).at_width(1.0).to_archs()
    return pd.DataFrame(
        {
            "space": space,
            "canonical_key": [arch.canonical_key for arch in archs],
            "child_arch": [arch.to_seed_string() for arch in archs],
        }
    )


def generalize(
    model_input: pd.DataFrame, encoding_report: dict[str, Any], generalization: dict[str, Any]
) -> tuple[pd.DataFrame, Figure, dict[str, LatencyPredictor], pd.DataFrame]:
    """Leave-one-hardware-out scores of the generalized predictor, the models (one without
    each device, one on every device) and the reference subnets a new device measures."""
    settings = GeneralizationSettings.from_dict(generalization)
    names = dataset_names(model_input)
    chosen = select_datasets(
        names.unique(), settings.datasets, "generalization.datasets", "the model input"
    )
    table = model_input[names.isin(chosen)]
    descriptors = encoding_report.get("hardware") or {}
    results, models = leave_one_hardware_out(
        table,
        descriptors,
        reference_count=settings.reference_count,
        held_out=None if settings.held_out == "all" else list(settings.held_out),
        config=settings.model,
    )
    models["all_devices"] = train_generalized(
        table[table["split"] == "train"], descriptors=descriptors, config=settings.model
    )
    references = pd.concat(
        [
            _reference_table(rows, settings.reference_count, str(space))
            for space, rows in table.groupby("space")
        ],
        ignore_index=True,
    )
    figure = leave_one_out_plot(results)
    logger.info(
        "Leave-one-hardware-out (zero-shot, test rows); models %s\n%s",
        ", ".join(sorted(models)),
        results[["held_out", "descriptor", "mape", "spearman", "kendall"]].to_string(index=False),
    )
    return results, figure, models, references
