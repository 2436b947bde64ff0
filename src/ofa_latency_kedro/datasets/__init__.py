"""Custom Kedro datasets of the project."""

from ofa_latency_kedro.datasets.accuracy_predictor import (
    AccuracyPredictorDataset,
    AccuracyPredictorSource,
)
from ofa_latency_kedro.datasets.atomic_files import AtomicCSVDataset, AtomicParquetDataset
from ofa_latency_kedro.datasets.json_dataset import AtomicJSONDataset
from ofa_latency_kedro.datasets.latency_folder import (
    LatencyFile,
    LatencyFolder,
    LatencyFolderDataset,
)
from ofa_latency_kedro.datasets.plot_folder import PlotFolderDataset
from ofa_latency_kedro.datasets.predictor_folder import PredictorFolder, PredictorFolderDataset

__all__ = [
    "AccuracyPredictorDataset",
    "AccuracyPredictorSource",
    "AtomicCSVDataset",
    "AtomicJSONDataset",
    "AtomicParquetDataset",
    "LatencyFile",
    "LatencyFolder",
    "LatencyFolderDataset",
    "PlotFolderDataset",
    "PredictorFolder",
    "PredictorFolderDataset",
]
