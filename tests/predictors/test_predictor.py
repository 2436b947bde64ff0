"""LatencyPredictor: the seed's checkpoints, safe save/load, batched prediction."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ofa_latency_kedro.encoding import load_latency_csv, split_table
from ofa_latency_kedro.predictors import (
    LatencyPredictor,
    PredictorError,
    regression_metrics,
    train_predictor,
)
from ofa_latency_kedro.search_space import ArchBatch, get_space

# The seed's test split (last 15%) figures in ../shared/seed_data/README.md.
SEED_FIGURES = {
    "checkpoint_RTX_2080_Ti_GPU_ofa.pt": ("RTX_2080_Ti_GPU_ofa.csv", 0.386, 2.43, 0.9977),
    "checkpoint_Tesla_P40_GPU_ofa.pt": ("Tesla_P40_GPU_ofa.csv", 1.181, 2.53, 0.9988),
    "checkpoint_note10_ofa.pt": ("note10_lookuptable_ofa.csv", 0.352, 1.14, 0.9987),
    "Finetune_Note_10_checkpoint_finetune_Tesla_P40_GPU_ofa.pt": (
        "Tesla_P40_GPU_ofa.csv",
        1.609,
        3.31,
        0.9945,
    ),
}


def seed_test_rows(shared_dir: Path, filename: str):
    """The seed's test rows of a file, at the width of its network (hardware.yml)."""
    table = load_latency_csv(
        shared_dir / "seed_data" / "latency" / filename,
        merge=False,
        width_mult={"note10_lookuptable": 1.2},
    )
    return split_table(table, "seed").query("split == 'test'")


@pytest.mark.parametrize("checkpoint", sorted(SEED_FIGURES))
def test_seed_checkpoints_reproduce_their_published_figures(shared_dir: Path, checkpoint: str):
    filename, mae, mape, spearman = SEED_FIGURES[checkpoint]
    predictor = LatencyPredictor.load(shared_dir / "seed_data" / "checkpoints" / checkpoint)
    assert predictor.kind == "seed_mlp"
    assert predictor.encoder_name == "input:seed128"
    test = seed_test_rows(shared_dir, filename)
    metrics = regression_metrics(
        test["latency"].to_numpy(), predictor.predict(ArchBatch.from_frame(test))
    )
    assert metrics["mae"] == pytest.approx(mae, abs=5e-4)
    assert metrics["mape"] == pytest.approx(mape, abs=5e-3)
    assert metrics["spearman"] == pytest.approx(spearman, abs=5e-5)


def test_seed_checkpoint_names_and_the_generalized_one(shared_dir: Path):
    folder = shared_dir / "seed_data" / "checkpoints"
    rtx = LatencyPredictor.load(folder / "checkpoint_RTX_2080_Ti_GPU_ofa.pt")
    assert (rtx.hardware, rtx.space) == ("RTX_2080_Ti_GPU", "ofa")
    general = LatencyPredictor.load(folder / "checkpoint_generalized_ofa.pt")
    assert general.encoder_name == "input:seed131"
    archs = get_space("ofa").sample(4, seed=0)
    predicted = general.predict(archs, hardware_features=[4352, 11, 616])
    assert predicted.shape == (4,) and np.all(np.isfinite(predicted))
    with pytest.raises(ValueError, match="needs the hardware numbers"):
        general.predict(archs)


@pytest.fixture(scope="module")
def small_predictor(shared_dir: Path) -> LatencyPredictor:
    table = load_latency_csv(shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv").head(
        1500
    )
    return train_predictor(table, config={"epochs": 15, "hidden": 64, "depth": 2})


def test_save_and_load_round_trip(tmp_path: Path, small_predictor: LatencyPredictor):
    path = small_predictor.save(tmp_path / "p40.pt")
    loaded = LatencyPredictor.load(path)
    archs = get_space("ofa").sample(50, seed=2)
    assert np.array_equal(loaded.predict(archs), small_predictor.predict(archs))
    assert loaded.metadata == small_predictor.metadata
    saved = loaded.metadata.to_dict()
    for key in (
        "encoder",
        "space",
        "hardware",
        "target",
        "normalization",
        "metrics",
        "versions",
        "width_mult",
    ):
        assert key in saved
    assert not list(tmp_path.glob(".*tmp"))


def test_predict_accepts_every_spelling(small_predictor: LatencyPredictor):
    archs = get_space("ofa").sample(3, seed=5)
    expected = small_predictor.predict(archs)
    assert np.array_equal(small_predictor.predict([a.to_seed_dict() for a in archs]), expected)
    assert np.array_equal(small_predictor.predict([str(a) for a in archs]), expected)
    assert np.array_equal(small_predictor.predict(ArchBatch.from_archs(archs)), expected)


def test_unseen_resolutions_interpolate_inside_the_trained_range(small_predictor: LatencyPredictor):
    arch = get_space("ofa").sample(1, seed=1)[0]
    at = {r: small_predictor.predict([arch.replace(r=r)])[0] for r in (160, 168, 176)}
    assert min(at[160], at[176]) < at[168] < max(at[160], at[176])
    with pytest.raises(PredictorError, match="cannot predict resolution 132"):
        small_predictor.predict([arch.replace(r=132)])


def test_a_checkpoint_for_something_else_is_refused(
    tmp_path: Path, small_predictor: LatencyPredictor, shared_dir: Path
):
    path = small_predictor.save(tmp_path / "p40.pt")
    LatencyPredictor.load(path, expect={"space": "ofa", "hardware": "Tesla_P40_GPU"})
    with pytest.raises(
        PredictorError, match="refused, the predictor's space is 'ofa', not 'compofa'"
    ):
        LatencyPredictor.load(path, expect={"space": "compofa"})
    with pytest.raises(PredictorError, match="encoder is 'input:seed128', not 'analytic'"):
        LatencyPredictor.load(
            shared_dir / "seed_data" / "checkpoints" / "checkpoint_note10_ofa.pt",
            expect={"encoder": "analytic"},
        )


class Payload:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_loading_never_runs_pickled_code(tmp_path: Path):
    marker = tmp_path / "executed"
    payload = Payload()
    payload.marker = str(marker)
    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "state": payload}, path, pickle_module=pickle)
    with pytest.raises(PredictorError, match="is not a loadable checkpoint"):
        LatencyPredictor.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"not a checkpoint", "is not a loadable checkpoint"),
        (None, "no such predictor checkpoint"),
    ],
)
def test_broken_files_are_named(tmp_path: Path, content, fragment):
    path = tmp_path / "broken.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PredictorError, match=fragment):
        LatencyPredictor.load(path)


def test_a_truncated_checkpoint_is_refused(tmp_path: Path, small_predictor: LatencyPredictor):
    data = small_predictor.save(tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(PredictorError, match="cut.pt is not a loadable checkpoint"):
        LatencyPredictor.load(tmp_path / "cut.pt")


def test_a_million_subnets_are_predicted_in_bounded_chunks(small_predictor: LatencyPredictor):
    batch = get_space("ofa").sample_batch(70_000, seed=0)
    predicted = small_predictor.predict(batch)
    assert predicted.shape == (70_000,) and np.all(np.isfinite(predicted))
    assert np.allclose(predicted[:10], small_predictor.predict(batch[:10]))
