"""Custom Kedro datasets of the project."""

from ofa_latency_kedro.datasets.json_dataset import AtomicJSONDataset
from ofa_latency_kedro.datasets.latency_folder import LatencyFile, LatencyFolderDataset
from ofa_latency_kedro.datasets.predictor_folder import PredictorFolderDataset

__all__ = ["AtomicJSONDataset", "LatencyFile", "LatencyFolderDataset", "PredictorFolderDataset"]
