"""A lookup-table device: its dataset, its predictor and OFA's accuracy predictor."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ofa_latency_kedro.datasets import LatencyFolderDataset, PredictorFolderDataset
from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.measurement import measure
from ofa_latency_kedro.predictors import train_predictor
from ofa_latency_kedro.search_space import get_space


@pytest.fixture(scope="package")
def device(tmp_path_factory, shared_dir: Path) -> Path:
    """A Note10 dataset measured with the `lut` backend and the predictor trained on it."""
    root = tmp_path_factory.mktemp("nas")
    lut_dir = shared_dir / "seed_data" / "latency_table@note10"
    archs = get_space("ofa", width_mult=1.2).sample(300, seed=0)
    frame = measure(archs, backend="lut", lut_dir=lut_dir, hardware="note10", space="ofa")
    sidecar = {
        "hardware": "note10",
        "space": "ofa",
        "backend": "lut",
        "lut_dir": str(lut_dir),
        "protocol": frame.attrs["protocol"],
        "descriptor": frame.attrs["hardware"],
    }
    LatencyFolderDataset(str(root / "latency")).save(
        {"note10_ofa.csv": frame, "note10_ofa.json": sidecar}
    )
    table = load_latency_csv(root / "latency" / "note10_ofa.csv")
    PredictorFolderDataset(str(root / "predictors")).save(
        {"note10_ofa": train_predictor(table, config={"depth": 0})}
    )
    shutil.copy(shared_dir / "seed_data" / "acc_predictor.pth", root / "acc_predictor.pth")
    return root
