"""Generalization nodes, one per stage: select the devices, score leave-one-hardware-out,
train on every device, pick the reference subnets, report. (Their MLflow records are written
by `ofa_latency_kedro.hooks`.)"""

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


def select_devices(
    model_input: pd.DataFrame, encoding_report: dict[str, Any], generalization: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows of the chosen datasets (``generalization.datasets``) and the registry entry
    of each device (from the encoding report)."""
    settings = GeneralizationSettings.from_dict(generalization)
    names = dataset_names(model_input)
    chosen = select_datasets(
        names.unique(), settings.datasets, "generalization.datasets", "the model input"
    )
    return model_input[names.isin(chosen)], encoding_report.get("hardware") or {}


def leave_one_out(
    table: pd.DataFrame, descriptors: dict[str, Any], generalization: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, LatencyPredictor]]:
    """Zero-shot scores of the generalized predictor on each held-out device, per
    descriptor, and the models (``without_<hardware>``) that never saw it."""
    settings = GeneralizationSettings.from_dict(generalization)
    return leave_one_hardware_out(
        table,
        descriptors,
        reference_count=settings.reference_count,
        held_out=None if settings.held_out == "all" else list(settings.held_out),
        config=settings.model,
    )


def train_on_every_device(
    table: pd.DataFrame,
    descriptors: dict[str, Any],
    held_out_models: dict[str, LatencyPredictor],
    generalization: dict[str, Any],
) -> dict[str, LatencyPredictor]:
    """The held-out models and ``all_devices``, fitted on every device's training subnets."""
    settings = GeneralizationSettings.from_dict(generalization)
    models = {
        **held_out_models,
        "all_devices": train_generalized(
            table[table["split"] == "train"], descriptors=descriptors, config=settings.model
        ),
    }
    logger.info("Generalized predictors %s", ", ".join(sorted(models)))
    return models


def pick_reference_subnets(table: pd.DataFrame, generalization: dict[str, Any]) -> pd.DataFrame:
    """The reference subnets of each space, which a new device measures to describe itself."""
    settings = GeneralizationSettings.from_dict(generalization)
    return pd.concat(
        [
            _reference_table(rows, settings.reference_count, str(space))
            for space, rows in table.groupby("space")
        ],
        ignore_index=True,
    )


def report_leave_one_out(scores: pd.DataFrame) -> tuple[pd.DataFrame, Figure]:
    """The leave-one-hardware-out scores as reported (the table and its plot), logged."""
    logger.info(
        "Leave-one-hardware-out (zero-shot, test rows)\n%s",
        scores[["held_out", "descriptor", "mape", "spearman", "kendall"]].to_string(index=False),
    )
    return scores, leave_one_out_plot(scores)
