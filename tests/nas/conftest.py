from __future__ import annotations

from pathlib import Path

import pytest

from ofa_latency_kedro.nas import AccuracyPredictor
from ofa_latency_kedro.predictors import LatencyPredictor


@pytest.fixture(scope="session")
def accuracy_predictor(shared_dir: Path) -> AccuracyPredictor:
    return AccuracyPredictor.load(shared_dir / "seed_data" / "acc_predictor.pth")


@pytest.fixture(scope="session")
def rtx_predictor(shared_dir: Path) -> LatencyPredictor:
    """The seed's RTX 2080 Ti checkpoint: the latency predictor of the search-quality target."""
    return LatencyPredictor.load(
        shared_dir / "seed_data" / "checkpoints" / "checkpoint_RTX_2080_Ti_GPU_ofa.pt"
    )
