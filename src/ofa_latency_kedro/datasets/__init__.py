"""Custom Kedro datasets of the project."""

from ofa_latency_kedro.datasets.json_dataset import AtomicJSONDataset
from ofa_latency_kedro.datasets.latency_folder import LatencyFolderDataset

__all__ = ["AtomicJSONDataset", "LatencyFolderDataset"]
