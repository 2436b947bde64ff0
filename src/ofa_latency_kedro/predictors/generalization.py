"""One latency model across devices, and how a device it never saw is described to it.

`train_generalized` fits a `SharedBasis` on the rows of many (hardware, space) datasets: a
shared trunk learns what makes subnets slow anywhere, one head per dataset learns how its
device weighs it. A device is then an *embedding* (`DeviceEmbedding`): an intercept (its
speed) and a blend of the training devices' log latencies (how it ranks subnets). Two ways
to find the embedding of a new device, neither using any of its training rows:

``reference``  HELP-style: the device's latency of a fixed small set of reference subnets
               (`reference_subnets`, spread over MACs, depth and resolution). The blend is a
               non-negative least-squares fit of their log latencies (`fit_embedding`), so it
               interpolates between known devices instead of extrapolating from a few noisy
               numbers.
``registry``   its hardware registry entry alone (`registry_embedding`): the training
               devices weighed by how close their descriptors are (log numbers, missing
               flags, kind), the speed scaled by peak FLOP/s where both are known. With a
               handful of training devices a map from datasheet numbers to latency is
               under-determined; this descriptor is the no-measurement fallback.

`ofa_latency_kedro.experiments.leave_one_hardware_out` scores both zero-shot.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import torch

from ofa_latency_kedro.encoding.encoders import Encoder
from ofa_latency_kedro.encoding.hardware import KINDS, NUMERIC_FIELDS
from ofa_latency_kedro.encoding.loading import LatencyDataError
from ofa_latency_kedro.predictors.checkpoint import library_versions
from ofa_latency_kedro.predictors.config import GeneralizedConfig
from ofa_latency_kedro.predictors.domain import training_domain
from ofa_latency_kedro.predictors.embedding import average_embedding, blended_devices
from ofa_latency_kedro.predictors.fitting import train_module
from ofa_latency_kedro.predictors.kinds.generalized import ENCODER, GeneralizedKind
from ofa_latency_kedro.predictors.metadata import DeviceEmbedding, PredictorError, PredictorMetadata
from ofa_latency_kedro.predictors.models import SharedBasis
from ofa_latency_kedro.predictors.predictor import LatencyPredictor
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.selection import pick_subnets
from ofa_latency_kedro.search_space.table import as_latency_table, dataset_names

DESCRIPTORS = ("reference", "registry")


def train_generalized(
    table: pd.DataFrame,
    *,
    descriptors: Mapping[str, Mapping[str, Any] | None] | None = None,
    config: GeneralizedConfig | Mapping[str, Any] | None = None,
) -> LatencyPredictor:
    """A generalized predictor fitted on every row of ``table`` (several datasets: columns
    ``hardware``, ``space``, arch columns, ``latency``), by mean squared error of the log
    latency. ``descriptors``: registry entries by hardware name, kept for the ``registry``
    descriptor. ``config``: a `GeneralizedConfig` or its fields. Until it is placed
    (`adapt_predictor`, `for_device`) it stands on the plain average of the devices of the
    space with the most rows."""
    config = GeneralizedConfig.from_dict(config, "config")
    started = time.perf_counter()
    table = as_latency_table(table)
    descriptors = descriptors or {}
    names = dataset_names(table)
    devices = sorted(names.unique())
    if not devices:
        raise LatencyDataError("a generalized predictor needs rows of at least one dataset")
    latency = table["latency"].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(latency) & (latency > 0)):
        raise LatencyDataError("a generalized predictor needs positive, finite latencies")
    encoder = Encoder(ENCODER)
    batch = ArchBatch.from_frame(table)
    features = torch.from_numpy(encoder.encode(batch.at_width(1.0)))
    device_index = torch.tensor(names.map({d: i for i, d in enumerate(devices)}).to_numpy())
    target = torch.from_numpy(np.log(latency).astype(np.float32))
    torch.manual_seed(config.seed)
    module = SharedBasis(features.shape[1], len(devices), config.basis, config.hidden)
    with torch.no_grad():
        module.mean.copy_(features.mean(dim=0))
        module.std.copy_(features.std(dim=0) + 1e-6)
        for index in range(len(devices)):
            module.linear.bias[index] = target[device_index == index].mean()
    optimizer = torch.optim.AdamW(
        module.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    history = train_module(
        module,
        optimizer,
        inputs=(features, device_index),
        target=target,
        loss=lambda predicted, log_latency: torch.mean((predicted - log_latency) ** 2),
        forward=lambda x, device: module(x).gather(1, device[:, None]).squeeze(1),
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs),
    )
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    spaces = sorted(table["space"].astype(str).unique())
    spaces_by_rows = table["space"].astype(str).value_counts().index.tolist()
    metadata = PredictorMetadata(
        kind=GeneralizedKind.name,
        target=GeneralizedKind.target,
        devices=tuple(devices),
        descriptors={
            hardware: (dict(descriptors[hardware]) if descriptors.get(hardware) else None)
            for hardware in sorted(table["hardware"].astype(str).unique())
        },
        device_hardware=tuple(
            str(table.loc[names == device, "hardware"].iloc[0]) for device in devices
        ),
        device_spaces=tuple(str(table.loc[names == device, "space"].iloc[0]) for device in devices),
        device_widths=tuple(
            float(table.loc[names == device, "width_mult"].iloc[0]) for device in devices
        ),
        domain=training_domain(batch, tuple(sorted(set(batch.r.tolist())))),
        encoders={"input": encoder},
        architecture={
            "in_features": int(features.shape[1]),
            "basis": config.basis,
            "hidden": config.hidden,
        },
        loss="squared error of log latency",
        space=spaces[0] if len(spaces) == 1 else None,
        training={
            "rows": {d: int((names == d).sum()) for d in devices},
            "config": config.to_dict(),
            "epochs_run": len(history["train_loss"]),
            "seconds": round(time.perf_counter() - started, 3),
        },
        history=history,
        versions=library_versions(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    unplaced = LatencyPredictor(module, metadata)
    return unplaced.replace(embedding=average_embedding(unplaced, spaces_by_rows[0]))


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
) -> DeviceEmbedding:
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
            f"no registry entry for {hardware!r}: describe it in the hardware registry "
            "(hardware.yml) or measure the reference subnets (descriptor 'reference')"
        )
    known = predictor.metadata.descriptors
    chosen = blended_devices(predictor, space)
    device_hardware = [predictor.metadata.device_hardware[index] for index in chosen]
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
    return DeviceEmbedding.blend(
        chosen, blend, devices=len(predictor.devices), intercept=intercept, fitted_on="registry"
    )


def reference_subnets(table: pd.DataFrame, count: int = 10, seed: int = 0) -> pd.DataFrame:
    """The fixed reference set: ``count`` distinct subnets (by genes, whatever the width)
    of ``table`` spread over MACs, depth and resolution. Measure these on a new device to
    describe it."""
    table = as_latency_table(table)
    pool = table.assign(genes=genes(table)).drop_duplicates("genes").sort_values("genes")
    if len(pool) < count:
        raise LatencyDataError(
            f"a reference set of {count} subnets needs {count} distinct subnets, got {len(pool)}"
        )
    chosen = pick_subnets(pool.reset_index(drop=True), count, sampler="informative", seed=seed)
    return chosen.drop(columns=["latency"], errors="ignore").reset_index(drop=True)


def genes(table: pd.DataFrame) -> pd.Series:
    """The subnet of every row whatever its width: its canonical key less the width."""
    return table["canonical_key"].str.partition("/")[2]
