"""Measuring subnet latency on real hardware (or OFA's lookup tables) with a stated protocol."""

from ofa_latency_kedro.measurement.backends import (
    BACKENDS,
    Backend,
    BackendUnavailable,
    fold_batch_norms,
    get_backend,
)
from ofa_latency_kedro.measurement.hardware import detect_hardware
from ofa_latency_kedro.measurement.log import LATENCY_COLUMNS, LatencyLog
from ofa_latency_kedro.measurement.lookup_table import LatencyLookupTable, LookupTableError
from ofa_latency_kedro.measurement.measurers import (
    LocalMeasurer,
    RayMeasurer,
    RayUnavailable,
    measure,
)
from ofa_latency_kedro.measurement.protocol import Protocol, Timing

__all__ = [
    "BACKENDS",
    "LATENCY_COLUMNS",
    "Backend",
    "BackendUnavailable",
    "LatencyLog",
    "LatencyLookupTable",
    "LocalMeasurer",
    "LookupTableError",
    "Protocol",
    "RayMeasurer",
    "RayUnavailable",
    "Timing",
    "detect_hardware",
    "fold_batch_norms",
    "get_backend",
    "measure",
]
