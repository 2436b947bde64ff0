"""Generalization nodes: one predictor across devices, scored leave-one-hardware-out and
recorded in MLflow."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ofa_latency_kedro.predictors import LatencyPredictor
from ofa_latency_kedro.predictors.generalization import (
    leave_one_hardware_out,
    reference_subnets,
    train_generalized,
)
from ofa_latency_kedro.predictors.plots import leave_one_out_plot
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.table import dataset_names
from ofa_latency_kedro.tracking import log_generalization_run

logger = logging.getLogger(__name__)


def _selected(model_input: pd.DataFrame, wanted: Any) -> pd.DataFrame:
    if wanted in (None, "all"):
        return model_input
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    names = dataset_names(model_input)
    missing = sorted(set(wanted) - set(names))
    if missing:
        raise ValueError(
            f"generalization.datasets names {missing}; the model input holds "
            f"{', '.join(sorted(names.unique()))}"
        )
    return model_input[names.isin(wanted)]


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
    table = _selected(model_input, generalization.get("datasets", "all"))
    descriptors = encoding_report.get("hardware") or {}
    held_out = generalization.get("held_out", "all")
    training = dict(generalization.get("model") or {})
    count = int(generalization.get("reference_count", 10))
    results, models = leave_one_hardware_out(
        table,
        descriptors,
        reference_count=count,
        held_out=None if held_out in (None, "all") else list(held_out),
        **training,
    )
    models["all_devices"] = train_generalized(
        table[table["split"] == "train"], descriptors=descriptors, **training
    )
    references = pd.concat(
        [_reference_table(rows, count, str(space)) for space, rows in table.groupby("space")],
        ignore_index=True,
    )
    figure = leave_one_out_plot(results)
    log_generalization_run(results, figure, models)
    logger.info(
        "Leave-one-hardware-out (zero-shot, test rows) -> "
        "data/08_reporting/generalization_leave_one_out.{csv,png}; models %s in "
        "data/06_models/generalized/; reference subnets to measure on a new device in "
        "data/08_reporting/reference_subnets.csv\n%s",
        ", ".join(sorted(models)),
        results[["held_out", "descriptor", "mape", "spearman", "kendall"]].to_string(index=False),
    )
    return results, figure, models, references
