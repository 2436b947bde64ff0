"""Experiment harnesses that score the predictors the way the figures of the docs do:
learning curves of few-shot adaptation over K (the ``finetuning`` pipeline, the adaptation
benchmark) and leave-one-hardware-out zero-shot scores of the generalized model (the
``generalization`` pipeline). They only call the public predictor API."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ofa_latency_kedro.encoding.loading import LatencyDataError
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.predictors import (
    ADAPTATION_METHODS,
    DeviceEmbedding,
    GeneralizedConfig,
    LatencyPredictor,
    PredictorError,
    adapt_predictor,
    regression_metrics,
    train_generalized,
)
from ofa_latency_kedro.predictors.adaptation import applies
from ofa_latency_kedro.predictors.embedding import blended_devices, fit_embedding
from ofa_latency_kedro.predictors.generalization import genes, reference_subnets, registry_embedding
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.selection import pick_subnets
from ofa_latency_kedro.search_space.table import as_latency_table, dataset_names

logger = logging.getLogger(__name__)


def learning_curve(
    source: LatencyPredictor,
    pool: pd.DataFrame,
    test: pd.DataFrame,
    *,
    ks: Sequence[int],
    draws: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] = ("auto", *ADAPTATION_METHODS),
    samplers: Sequence[str] = ("random",),
    sources: Sequence[LatencyPredictor] = (),
) -> pd.DataFrame:
    """Test error of every method after adaptation from K samples of ``pool``, for every K,
    draw and sampler: one row each (k, method, sampler, draw, chosen method, MAPE, MAE,
    Spearman, seconds). Methods that do not adapt ``source`` are left out; a generalized
    source's methods are named ``generalized/<method>``."""
    methods = [m for m in methods if m == "auto" or applies(source, m)]
    label = "generalized/" if source.kind == "generalized" else ""
    truth = test["latency"].to_numpy(dtype=float)
    test_batch = ArchBatch.from_frame(as_latency_table(test))
    rows = []
    for k in ks:
        for sampler in samplers:
            for draw in draws:
                few = pick_subnets(pool, k, sampler=sampler, seed=draw)
                for method in methods:
                    started = time.perf_counter()
                    adapted = adapt_predictor(
                        source, few, method=method, seed=draw, sources=sources
                    )
                    seconds = time.perf_counter() - started
                    metrics = regression_metrics(truth, adapted.predict_batch(test_batch))
                    rows.append(
                        {
                            "k": k,
                            "method": label + method,
                            "sampler": sampler,
                            "draw": draw,
                            "chosen": label + adapted.metadata.adaptation.method,
                            "mape": metrics["mape"],
                            "mae": metrics["mae"],
                            "spearman": metrics["spearman"],
                            "seconds": seconds,
                        }
                    )
    return pd.DataFrame(rows)


def _rows_with_genes(table: pd.DataFrame, wanted: pd.Series) -> pd.DataFrame:
    """One row of ``table`` per subnet whose genes are among ``wanted``."""
    own = genes(table)
    return table[own.isin(set(wanted)) & ~own.duplicated()]


def leave_one_hardware_out(
    table: pd.DataFrame,
    descriptors: Mapping[str, Mapping[str, Any] | None],
    *,
    reference_count: int = 10,
    held_out: Sequence[str] | None = None,
    config: GeneralizedConfig | Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, LatencyPredictor]]:
    """For every held-out hardware (default: all of ``table``'s): train on the other
    devices' training rows, then score each of its datasets' test rows zero-shot with each
    descriptor, and with each training device's own head for comparison. Returns the table
    (one row per held-out dataset and descriptor) and the models (``without_<hardware>``)."""
    hardware_names = sorted(table["hardware"].astype(str).unique())
    if len(hardware_names) < 2:
        raise LatencyDataError(
            f"leave-one-hardware-out needs datasets of two devices or more, got {hardware_names}"
        )
    held_out = list(held_out) if held_out else hardware_names
    unknown = [h for h in held_out if h not in hardware_names]
    if unknown:
        raise ParameterError(
            "held_out", f"cannot hold out {unknown}: the table holds {', '.join(hardware_names)}"
        )
    names = dataset_names(table)
    references = {
        space: reference_subnets(rows, reference_count)
        for space, rows in table.groupby(table["space"].astype(str))
    }
    rows: list[dict[str, Any]] = []
    models: dict[str, LatencyPredictor] = {}
    for hardware in held_out:
        others = table["hardware"].astype(str) != hardware
        train = table[others & (table["split"] == "train")]
        model = train_generalized(train, descriptors=descriptors, config=config)
        models[f"without_{hardware}"] = model
        logger.info(
            "Generalized predictor without %s: trained on %s in %.1f s",
            hardware,
            ", ".join(model.devices),
            model.metadata.training["seconds"],
        )
        for dataset in sorted(names[~others].unique()):
            space = str(table.loc[names == dataset, "space"].iloc[0])
            rows += _zero_shot_rows(
                model,
                table[names == dataset],
                hardware=hardware,
                space=space,
                descriptor=descriptors.get(hardware),
                references=references[space],
            )
    return pd.DataFrame(rows), models


def _zero_shot_rows(
    model: LatencyPredictor,
    device: pd.DataFrame,
    *,
    hardware: str,
    space: str,
    descriptor: Mapping[str, Any] | None,
    references: pd.DataFrame,
) -> list[dict[str, Any]]:
    """Scores of one held-out dataset's test rows (less the reference subnets) under each
    descriptor's embedding. A device that lacks some of the reference set is described by
    as many subnets of its own training rows, spread the same way (and says so)."""
    measured = _rows_with_genes(device, genes(references))
    if len(measured) < len(references):
        logger.warning(
            "%s_%s measured %d of the %d reference subnets; describing it by %d of its own "
            "training subnets instead",
            hardware,
            space,
            len(measured),
            len(references),
            len(references),
        )
        own = reference_subnets(device[device["split"] == "train"], len(references))
        measured = _rows_with_genes(device, genes(own))
    used = set(genes(measured))
    test = device[(device["split"] == "test") & ~genes(device).isin(used)]
    truth = test["latency"].to_numpy(dtype=float)
    test_batch = ArchBatch.from_frame(test)
    candidates: dict[str, DeviceEmbedding] = {}
    started = time.perf_counter()
    candidates["reference"] = fit_embedding(
        model,
        ArchBatch.from_frame(measured),
        measured["latency"].to_numpy(dtype=float),
        space=space,
    )
    try:
        candidates["registry"] = registry_embedding(model, hardware, descriptor, space=space)
    except PredictorError as exc:
        logger.warning("Registry descriptor of %s left out: %s", hardware, exc)
    for index in blended_devices(model, space):
        candidates[f"head:{model.devices[index]}"] = DeviceEmbedding.of_device(
            int(index), len(model.devices), model.devices[index]
        )
    rows = []
    for descriptor_name, embedding in candidates.items():
        placed = model.placed(
            embedding,
            hardware=hardware,
            space=space,
            width_mult=float(device["width_mult"].iloc[0]),
        )
        metrics = regression_metrics(truth, placed.predict_batch(test_batch))
        rows.append(
            {
                "held_out": f"{hardware}_{space}",
                "descriptor": descriptor_name,
                "trained_on": "+".join(model.devices),
                "measured_subnets": len(measured) if descriptor_name == "reference" else 0,
                "test_rows": len(test),
                **{k: metrics[k] for k in ("mape", "mae", "spearman", "kendall")},
                "weights": " ".join(f"{w:.3f}" for w in embedding.weights),
                "seconds": time.perf_counter() - started,
            }
        )
    return rows
