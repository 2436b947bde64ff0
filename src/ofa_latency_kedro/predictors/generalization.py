"""One latency model across devices, and how a device it never saw is described to it.

`train_generalized` fits a `SharedBasis` on the rows of many (hardware, space) datasets: a
shared trunk learns what makes subnets slow anywhere, one head per dataset learns how its
device weighs it. A device is then an *embedding*: an intercept (its speed) and a blend of
the training devices' log latencies (how it ranks subnets). Two ways to find the embedding of
a new device, neither using any of its training rows:

``reference``  HELP-style: the device's latency of a fixed small set of reference subnets
               (`reference_subnets`, spread over MACs, depth and resolution). The blend is a
               non-negative least-squares fit of their log latencies, so it interpolates
               between known devices instead of extrapolating from a few noisy numbers.
``registry``   its `conf/base/hardware.yml` entry alone: the training devices weighed by how
               close their descriptors are (log numbers, missing flags, kind), the speed scaled
               by peak FLOP/s where both are known. With a handful of training devices a map
               from datasheet numbers to latency is under-determined; this descriptor is the
               no-measurement fallback and the leave-one-out table says what it is worth.

`leave_one_hardware_out` trains without each device in turn and scores it zero-shot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ofa_latency_kedro.encoding.encoders import Encoder
from ofa_latency_kedro.encoding.hardware import KINDS, NUMERIC_FIELDS
from ofa_latency_kedro.predictors.adaptation import (
    average_embedding,
    blended_devices,
    embedded,
    fit_embedding,
    pick_subnets,
)
from ofa_latency_kedro.predictors.metrics import regression_metrics
from ofa_latency_kedro.predictors.models import SharedBasis
from ofa_latency_kedro.predictors.predictor import (
    LatencyPredictor,
    PredictorError,
    library_versions,
)
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.table import as_latency_table, dataset_names

logger = logging.getLogger(__name__)

DESCRIPTORS = ("reference", "registry")
ENCODER = "analytic+seed128"


def train_generalized(
    table: pd.DataFrame,
    *,
    descriptors: Mapping[str, Mapping[str, Any] | None] | None = None,
    basis: int = 64,
    hidden: int = 256,
    epochs: int = 30,
    lr: float = 2e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> LatencyPredictor:
    """A generalized predictor fitted on every row of ``table`` (several datasets: columns
    ``hardware``, ``space``, arch columns, ``latency``), by mean squared error of the log
    latency. ``descriptors``: registry entries by hardware name, kept for the ``registry``
    descriptor. Until it is placed (`adapt_predictor`, `for_device`) it stands on the plain
    average of the devices of the space with the most rows."""
    started = time.perf_counter()
    table = as_latency_table(table)
    descriptors = descriptors or {}
    names = dataset_names(table)
    devices = sorted(names.unique())
    if not devices:
        raise ValueError("a generalized predictor needs rows of at least one dataset")
    latency = table["latency"].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(latency) & (latency > 0)):
        raise ValueError("a generalized predictor needs positive, finite latencies")
    encoder = Encoder(ENCODER)
    features = torch.from_numpy(encoder.encode(ArchBatch.from_frame(table).at_width(1.0)))
    device_index = torch.tensor(names.map({d: i for i, d in enumerate(devices)}).to_numpy())
    target = torch.from_numpy(np.log(latency).astype(np.float32))
    torch.manual_seed(seed)
    module = SharedBasis(features.shape[1], len(devices), basis, hidden)
    with torch.no_grad():
        module.mean.copy_(features.mean(dim=0))
        module.std.copy_(features.std(dim=0) + 1e-6)
        for index in range(len(devices)):
            module.linear.bias[index] = target[device_index == index].mean()
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    generator = torch.Generator().manual_seed(seed)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(target), generator=generator)
        for begin in range(0, len(order), batch_size):
            rows = order[begin : begin + batch_size]
            optimizer.zero_grad()
            predicted = module(features[rows]).gather(1, device_index[rows, None]).squeeze(1)
            loss = torch.mean((predicted - target[rows]) ** 2)
            loss.backward()
            optimizer.step()
        scheduler.step()
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    spaces = sorted(table["space"].astype(str).unique())
    spaces_by_rows = table["space"].astype(str).value_counts().index.tolist()
    metadata = {
        "kind": "generalized",
        "devices": devices,
        "descriptors": {
            hardware: (dict(descriptors[hardware]) if descriptors.get(hardware) else None)
            for hardware in sorted(table["hardware"].astype(str).unique())
        },
        "device_hardware": [
            str(table.loc[names == device, "hardware"].iloc[0]) for device in devices
        ],
        "device_spaces": [str(table.loc[names == device, "space"].iloc[0]) for device in devices],
        "encoder": {"input": encoder.to_dict()},
        "architecture": {"in_features": int(features.shape[1]), "basis": basis, "hidden": hidden},
        "target": "log_latency_ms",
        "hardware": None,
        "space": spaces[0] if len(spaces) == 1 else None,
        "width_mult": None,
        "training": {
            "rows": {d: int((names == d).sum()) for d in devices},
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "seed": seed,
            "seconds": time.perf_counter() - started,
        },
        "metrics": {},
        "versions": library_versions(),
    }
    predictor = LatencyPredictor(module, metadata)
    predictor.metadata["embedding"] = average_embedding(predictor, spaces_by_rows[0])
    return predictor


def registry_vectors(entries: Mapping[str, Mapping[str, Any] | None]) -> pd.DataFrame:
    """One row per device: log1p of each known numeric field (an unknown one takes the mean
    of the devices that know it, and raises its ``<field>_missing`` flag: never read as 0),
    and the kind one-hot. Columns standardised over the devices given."""
    names = list(entries)
    columns: dict[str, list[float]] = {}
    for name_field in NUMERIC_FIELDS:
        raw = [(entries[name] or {}).get(name_field) for name in names]
        known = [np.log1p(float(v)) for v in raw if v is not None]
        fill = float(np.mean(known)) if known else 0.0
        columns[name_field] = [np.log1p(float(v)) if v is not None else fill for v in raw]
        columns[f"{name_field}_missing"] = [float(v is None) for v in raw]
    for kind in KINDS:
        columns[f"kind_{kind}"] = [
            float((entries[name] or {}).get("kind") == kind) for name in names
        ]
    vectors = pd.DataFrame(columns, index=names)
    spread = vectors.std(axis=0, ddof=0).replace(0.0, 1.0)
    return (vectors - vectors.mean(axis=0)) / spread


def registry_embedding(
    predictor: LatencyPredictor,
    hardware: str,
    descriptor: Mapping[str, Any] | None,
    *,
    space: str | None = None,
) -> dict[str, Any]:
    """The embedding of a device from its registry entry alone (no measurement): the
    training devices of ``space`` weighed by inverse squared descriptor distance; the
    intercept the weighted log ratio of peak FLOP/s where both are known (else the blend's
    own speed)."""
    if predictor.kind != "generalized":
        raise PredictorError(
            f"a registry embedding needs a generalized predictor, not {predictor.kind}"
        )
    if not descriptor:
        raise PredictorError(
            f"no registry entry for {hardware!r}: describe it in conf/base/hardware.yml or "
            "measure the reference subnets (descriptor 'reference')"
        )
    known = predictor.metadata.get("descriptors") or {}
    chosen = blended_devices(predictor, space)
    device_hardware = [predictor.metadata["device_hardware"][index] for index in chosen]
    entries = {name: known.get(name) for name in dict.fromkeys(device_hardware)}
    if not any(entries.values()):
        raise PredictorError(
            "the generalized predictor was trained without registry descriptors of its devices"
        )
    vectors = registry_vectors({**entries, hardware: descriptor})
    distance = ((vectors.drop(index=hardware) - vectors.loc[hardware]) ** 2).sum(axis=1)
    closeness = np.array([1.0 / (distance[name] + 1e-3) for name in device_hardware])
    blend = closeness / closeness.sum()
    peak = descriptor.get("peak_tflops")
    shifts = [
        (w, np.log(float(entries[name]["peak_tflops"]) / float(peak)))
        for w, name in zip(blend, device_hardware, strict=True)
        if peak and entries.get(name) and entries[name].get("peak_tflops")
    ]
    intercept = float(sum(w * s for w, s in shifts) / sum(w for w, _ in shifts)) if shifts else 0.0
    weights = np.zeros(len(predictor.devices))
    weights[chosen] = blend
    return {"intercept": intercept, "weights": weights.tolist(), "fitted_on": "registry"}


def reference_subnets(table: pd.DataFrame, count: int = 10, seed: int = 0) -> pd.DataFrame:
    """The fixed reference set: ``count`` distinct subnets (by genes, whatever the width)
    of ``table`` spread over MACs, depth and resolution. Measure these on a new device to
    describe it."""
    table = as_latency_table(table)
    pool = table.assign(genes=_genes(table)).drop_duplicates("genes").sort_values("genes")
    if len(pool) < count:
        raise ValueError(
            f"a reference set of {count} subnets needs {count} distinct subnets, got {len(pool)}"
        )
    chosen = pick_subnets(pool.reset_index(drop=True), count, sampler="informative", seed=seed)
    return chosen.drop(columns=["latency"], errors="ignore").reset_index(drop=True)


def _genes(table: pd.DataFrame) -> pd.Series:
    return table["canonical_key"].str.partition("/")[2]


def _rows_with_genes(table: pd.DataFrame, genes: pd.Series) -> pd.DataFrame:
    """One row of ``table`` per subnet whose genes are among ``genes``."""
    own = _genes(table)
    return table[own.isin(set(genes)) & ~own.duplicated()]


def leave_one_hardware_out(
    table: pd.DataFrame,
    descriptors: Mapping[str, Mapping[str, Any] | None],
    *,
    reference_count: int = 10,
    held_out: Sequence[str] | None = None,
    **training: Any,
) -> tuple[pd.DataFrame, dict[str, LatencyPredictor]]:
    """For every held-out hardware (default: all of ``table``'s): train on the other
    devices' training rows, then score each of its datasets' test rows zero-shot with each
    descriptor, and with each training device's own head for comparison. Returns the table
    (one row per held-out dataset and descriptor) and the models (``without_<hardware>``)."""
    hardware_names = sorted(table["hardware"].astype(str).unique())
    if len(hardware_names) < 2:
        raise ValueError(
            f"leave-one-hardware-out needs datasets of two devices or more, got {hardware_names}"
        )
    held_out = list(held_out) if held_out else hardware_names
    unknown = [h for h in held_out if h not in hardware_names]
    if unknown:
        raise ValueError(f"cannot hold out {unknown}: the table holds {', '.join(hardware_names)}")
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
        model = train_generalized(train, descriptors=descriptors, **training)
        models[f"without_{hardware}"] = model
        logger.info(
            "Generalized predictor without %s: trained on %s in %.1f s",
            hardware,
            ", ".join(model.devices),
            model.metadata["training"]["seconds"],
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
    measured = _rows_with_genes(device, _genes(references))
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
        measured = _rows_with_genes(device, _genes(own))
    used = set(_genes(measured))
    test = device[(device["split"] == "test") & ~_genes(device).isin(used)]
    truth = test["latency"].to_numpy(dtype=float)
    test_batch = ArchBatch.from_frame(test)
    candidates: dict[str, dict[str, Any] | None] = {}
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
        weights = [float(i == index) for i in range(len(model.devices))]
        candidates[f"head:{model.devices[index]}"] = {"intercept": 0.0, "weights": weights}
    rows = []
    for descriptor_name, embedding in candidates.items():
        placed = embedded(model, embedding, hardware=hardware, space=space)
        metrics = regression_metrics(truth, placed.predict_batch(test_batch))
        rows.append(
            {
                "held_out": f"{hardware}_{space}",
                "descriptor": descriptor_name,
                "trained_on": "+".join(model.devices),
                "measured_subnets": len(measured) if descriptor_name == "reference" else 0,
                "test_rows": len(test),
                **{k: metrics[k] for k in ("mape", "mae", "spearman", "kendall")},
                "weights": " ".join(f"{w:.3f}" for w in embedding["weights"]),
                "seconds": time.perf_counter() - started,
            }
        )
    return rows
