"""From latency CSVs to model inputs: loading and validation, encodings, splits, hardware."""

from ofa_latency_kedro.encoding.encoders import ENCODER_NAMES, Encoder, get_encoder
from ofa_latency_kedro.encoding.hardware import HardwareRegistry
from ofa_latency_kedro.encoding.loading import (
    LatencyDataError,
    dataset_name_parts,
    load_latency_csv,
    merge_repeats,
    read_latency_file,
)
from ofa_latency_kedro.encoding.splits import SPLITS, leaked_subnets, split_table

__all__ = [
    "ENCODER_NAMES",
    "SPLITS",
    "Encoder",
    "HardwareRegistry",
    "LatencyDataError",
    "dataset_name_parts",
    "get_encoder",
    "leaked_subnets",
    "load_latency_csv",
    "merge_repeats",
    "read_latency_file",
    "split_table",
]
