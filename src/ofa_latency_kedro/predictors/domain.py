"""What a predictor answers for, and where its answers are extrapolations.

Refused outright (`refuse_outside`): a subnet at a width the predictor was not trained at
(``width_mult``; a network of another width is another network), or outside its search space
(a kernel 7 for a fixed-kernel ``compofa`` predictor): the error names both widths, or the
field. Answered but flagged (`extrapolation`): a resolution it was not trained at, MACs beyond
those of its training subnets, a predicted latency beyond its training latencies. Every
answer is positive and finite by construction (`positive`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ofa_latency_kedro.predictors.metadata import PredictorError, PredictorMetadata
from ofa_latency_kedro.search_space import ArchBatch, ArchError, get_space
from ofa_latency_kedro.search_space.network import block_cost_table

#: Below this share of its fastest training latency, a prediction bends smoothly towards
#: it instead of reaching zero (the same floor for every kind; 1e-3 ms when unknown).
FLOOR_SHARE = 0.01
UNKNOWN_FLOOR_MS = 1e-3


def training_domain(batch: ArchBatch, resolutions: tuple[int, ...]) -> dict[str, Any]:
    """What a predictor trained on ``batch`` has seen: its resolutions and MACs range."""
    mmacs = block_cost_table(batch).macs_exact / 1e6
    return {
        "resolutions": [int(r) for r in resolutions],
        "mmacs": {"min": float(mmacs.min()), "max": float(mmacs.max())},
    }


def refuse_outside(metadata: PredictorMetadata, batch: ArchBatch) -> None:
    """`PredictorError` for the first subnet at another width than the predictor's, or
    outside its space, naming both widths or the field."""
    if not len(batch):
        return
    width = metadata.width_mult
    if width is not None:
        other = ~np.isclose(batch.width_mult, width)
        if other.any():
            row = int(np.argmax(other))
            raise PredictorError(
                f"subnet {row} has width_mult {float(batch.width_mult[row]):.1f}; this predictor "
                f"({metadata.hardware}) was trained on the width-{width:.1f} network and "
                f"predicts no other (train or adapt one for width "
                f"{float(batch.width_mult[row]):.1f})"
            )
    if metadata.space is None:
        return
    for value in np.unique(batch.width_mult):
        space = get_space(metadata.space, resolutions="ofa", width_mult=float(value))
        rows = np.flatnonzero(batch.width_mult == value)
        outside = ~space.contains_batch(batch[rows])
        if outside.any():
            row = int(rows[np.argmax(outside)])
            try:
                space.validate(batch[row].to_archs()[0])
            except ArchError as exc:
                raise PredictorError(
                    f"subnet {row} is outside the predictor's space '{metadata.space}': {exc}"
                ) from None


def floor_ms(metadata: PredictorMetadata) -> float:
    spread = metadata.latency_ms or {}
    fastest = spread.get("min")
    return FLOOR_SHARE * float(fastest) if fastest and fastest > 0 else UNKNOWN_FLOOR_MS


def finite(values: np.ndarray) -> np.ndarray:
    """``values``, or a `PredictorError` when any is not finite (an error, not an answer)."""
    if not np.all(np.isfinite(values)):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise PredictorError(f"the predictor gave {bad} value(s) that are not finite")
    return values


def positive(raw: np.ndarray, floor: float) -> np.ndarray:
    """``raw`` (ms) made positive: unchanged well above ``floor`` (where softplus is the
    identity to float precision), bending smoothly to ``floor`` below it."""
    return floor + floor * np.logaddexp(0.0, (finite(raw) - floor) / floor)


def extrapolation(
    metadata: PredictorMetadata, batch: ArchBatch, predicted_ms: np.ndarray
) -> np.ndarray:
    """Per subnet, why its prediction is an extrapolation ("" when it is not): a resolution
    the predictor was not trained at, MACs beyond its training subnets', or a predicted
    latency beyond its training latencies. Criteria the metadata cannot judge are skipped."""
    reasons = [[] for _ in range(len(batch))]
    domain: Mapping[str, Any] = metadata.domain or {}

    def flag(rows: np.ndarray, text: str) -> None:
        for row in np.flatnonzero(rows):
            reasons[row].append(text)

    trained = domain.get("resolutions")
    if trained:
        flag(~np.isin(batch.r, trained), "resolution not trained")
    mmacs = domain.get("mmacs")
    if mmacs:
        macs = block_cost_table(batch).macs_exact / 1e6
        flag(macs < mmacs["min"], f"MACs below the trained {mmacs['min']:.0f} M")
        flag(macs > mmacs["max"], f"MACs above the trained {mmacs['max']:.0f} M")
    spread = metadata.latency_ms or {}
    if "min" in spread and "max" in spread:
        flag(predicted_ms < spread["min"], f"below the fastest trained {spread['min']:.2f} ms")
        flag(predicted_ms > spread["max"], f"above the slowest trained {spread['max']:.2f} ms")
    return np.array(["; ".join(parts) for parts in reasons], dtype=object)
