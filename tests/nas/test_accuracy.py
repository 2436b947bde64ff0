"""OFA's accuracy predictor: loaded from ../shared, batched, and a clear way out offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ofa_latency_kedro.datasets import AccuracyPredictorDataset
from ofa_latency_kedro.errors import OfaLatencyError
from ofa_latency_kedro.nas import (
    AccuracyPredictor,
    AccuracyPredictorUnavailable,
    ensure_accuracy_predictor,
    load_accuracy_predictor,
)
from ofa_latency_kedro.predictors import PredictorError
from ofa_latency_kedro.predictors.models import SeedMLP
from ofa_latency_kedro.search_space import Arch, ArchBatch, get_space

UNREACHABLE = "http://127.0.0.1:9/acc_predictor.pth"  # the discard port: refused at once


def test_predictions_are_top1_fractions_and_batching_changes_nothing(accuracy_predictor):
    archs = get_space("ofa", width_mult=1.2).sample(64, seed=3)
    batched = accuracy_predictor.predict(ArchBatch.from_archs(archs))
    one_by_one = np.array([accuracy_predictor.predict([a])[0] for a in archs])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-6)
    assert 0.65 < batched.min() and batched.max() < 0.85
    largest = Arch.parse({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": [224]})
    smallest = Arch.parse({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": [160]})
    assert accuracy_predictor.predict([largest])[0] > accuracy_predictor.predict([smallest])[0]


def test_missing_file_offline_says_where_to_put_it(tmp_path: Path):
    target = tmp_path / "06_models" / "acc_predictor.pth"
    with pytest.raises(AccuracyPredictorUnavailable) as error:
        load_accuracy_predictor(target, url=UNREACHABLE)
    message = str(error.value)
    assert str(target) in message and "nas.objective: macs" in message
    assert not target.exists()


def test_present_file_is_used_without_download(tmp_path: Path, shared_dir: Path):
    target = tmp_path / "acc_predictor.pth"
    shutil.copy(shared_dir / "seed_data" / "acc_predictor.pth", target)
    assert ensure_accuracy_predictor(target, url=UNREACHABLE) == target


def test_download_goes_to_the_catalog_path(tmp_path: Path, shared_dir: Path):
    source = shared_dir / "seed_data" / "acc_predictor.pth"
    target = tmp_path / "models" / "acc_predictor.pth"
    dataset = AccuracyPredictorDataset(str(target), url=source.resolve().as_uri())
    assert not dataset.exists()
    predictor = dataset.load().get()
    assert target.read_bytes() == source.read_bytes()
    assert isinstance(predictor, AccuracyPredictor) and dataset.exists()


def test_a_file_that_is_not_the_predictor_is_a_predictor_error(tmp_path: Path):
    wrong = tmp_path / "acc_predictor.pth"
    torch.save({"weight": torch.zeros(3)}, wrong)
    with pytest.raises(PredictorError, match=r"acc_predictor\.pth is not OFA's accuracy predictor"):
        AccuracyPredictor.load(wrong)
    torch.save(SeedMLP(in_features=64).state_dict(), wrong)
    with pytest.raises(PredictorError, match=r"\(128-400-400-400-1\): its MLP is 64-400-...-1"):
        AccuracyPredictor.load(wrong)
    torch.save(torch.zeros(3), wrong)
    with pytest.raises(PredictorError, match="holds a Tensor, not a state dict"):
        AccuracyPredictor.load(wrong)
    wrong.write_bytes(b"not a checkpoint")
    with pytest.raises(PredictorError, match="is not a loadable accuracy predictor"):
        AccuracyPredictor.load(wrong)


def test_the_predictor_is_the_seed_mlp_with_ofas_weights(accuracy_predictor, shared_dir: Path):
    assert isinstance(accuracy_predictor.model, SeedMLP)
    state = torch.load(
        shared_dir / "seed_data" / "acc_predictor.pth", map_location="cpu", weights_only=True
    )
    assert torch.equal(accuracy_predictor.model.model[6].bias, state["6.bias"])
    assert issubclass(AccuracyPredictorUnavailable, OfaLatencyError)
    assert issubclass(AccuracyPredictorUnavailable, RuntimeError)
