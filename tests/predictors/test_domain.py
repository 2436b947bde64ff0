"""A predictor knows its domain: another width or space is refused, every answer is a
positive, finite latency, and extrapolations are said."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ofa_latency_kedro import run_nas
from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.predictors import LatencyPredictor, PredictorError, train_predictor
from ofa_latency_kedro.predictors.kinds.seed_mlp import SEED_DATASET_WIDTHS
from ofa_latency_kedro.search_space import ArchBatch, get_space
from ofa_latency_kedro.search_space.constants import KERNEL_CHOICES
from tests.helpers import PROJECT_ROOT

V1 = Path(__file__).parent / "checkpoints_v1"
SEED = Path("seed_data")


@pytest.fixture(scope="module")
def rtx(shared_dir: Path) -> LatencyPredictor:
    table = load_latency_csv(shared_dir / SEED / "latency" / "RTX_2080_Ti_GPU_ofa.csv").head(3000)
    return train_predictor(table, config={"epochs": 10})


@pytest.fixture(scope="module")
def compofa(shared_dir: Path) -> LatencyPredictor:
    table = load_latency_csv(shared_dir / SEED / "latency" / "Tesla_P40_GPU_fixedkernelcompofa.csv")
    return train_predictor(table, config={"epochs": 5})


def test_a_subnet_of_another_width_is_refused_naming_both_widths(rtx, shared_dir: Path):
    wide = get_space("ofa", width_mult=1.2).sample(3, seed=0)
    with pytest.raises(PredictorError, match=r"subnet 0 has width_mult 1\.2; .*width-1\.0 network"):
        rtx.predict(wide)  # answered -698 ms before
    seed = LatencyPredictor.load(
        shared_dir / SEED / "checkpoints" / "checkpoint_RTX_2080_Ti_GPU_ofa.pt"
    )
    with pytest.raises(PredictorError, match="width_mult 1.2"):
        seed.predict(wide)  # answered as if the width did not exist before
    assert np.all(rtx.predict([a.replace(width_mult=1.0) for a in wide]) > 0)


def test_seed_checkpoints_carry_the_width_the_hardware_registry_gives_their_dataset(
    shared_dir: Path,
):
    registry = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "hardware.yml").read_text())
    for hardware, entry in registry["hardware"].items():
        assert SEED_DATASET_WIDTHS[hardware] == entry["width_mult"], hardware
    note10 = LatencyPredictor.load(shared_dir / SEED / "checkpoints" / "checkpoint_note10_ofa.pt")
    assert (note10.hardware, note10.width_mult) == ("note10_lookuptable", 1.2)


def test_a_subnet_outside_the_space_is_refused_naming_the_field(compofa):
    arch = get_space("compofa").sample(1, seed=0)[0]
    assert compofa.space == "compofa" and compofa.predict([arch])[0] > 0
    seven = arch.replace(ks=(7,) * 20)
    with pytest.raises(
        PredictorError,
        match=r"outside the predictor's space 'compofa': field 'ks\[0\]' has value 7",
    ):
        compofa.predict([seven])


def predictors_to_check(shared_dir: Path) -> list[LatencyPredictor]:
    folder = shared_dir / SEED / "checkpoints"
    return [
        LatencyPredictor.load(V1 / "seed_mlp.pt"),  # answered negative latencies before
        LatencyPredictor.load(V1 / "wide_deep.pt"),
        LatencyPredictor.load(V1 / "adapted_calibrate_features.pt"),
        LatencyPredictor.load(V1 / "generalized_p40.pt"),
        LatencyPredictor.load(folder / "checkpoint_RTX_2080_Ti_GPU_ofa.pt"),
        LatencyPredictor.load(folder / "checkpoint_note10_ofa.pt"),
    ]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), extreme=st.sampled_from(KERNEL_CHOICES))
def test_every_answer_is_a_positive_finite_latency_over_the_whole_space(shared_dir, seed, extreme):
    for predictor in predictors_to_check(shared_dir):
        width = predictor.width_mult or 1.0
        resolutions = list(predictor.metadata.domain.get("resolutions") or [160, 192, 224])
        space = get_space(predictor.space or "ofa", resolutions=resolutions, width_mult=width)
        batch = space.sample_batch(64, seed=seed)
        corners = ArchBatch.from_archs(
            [
                {"ks": [extreme] * 20, "e": [e] * 20, "d": [d] * 5, "r": [r]}
                for e in (3, 6)
                for d in (2, 4)
                for r in resolutions
            ],
            width_mult=width,
        )
        corners = corners[space.contains_batch(corners)]
        for archs in (batch, corners):
            predicted = predictor.predict(archs)
            assert np.all(np.isfinite(predicted)) and np.all(predicted > 0), predictor


def test_extrapolations_are_said_per_subnet(rtx):
    trained = rtx.metadata.domain
    assert trained["resolutions"] == (160, 176, 192, 208, 224)
    smallest = ArchBatch.from_archs([{"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": [160]}])
    typical = get_space("ofa").sample_batch(200, seed=1)
    between = ArchBatch.from_archs([a.replace(r=168) for a in typical.to_archs()[:3]])
    reasons = rtx.extrapolation(ArchBatch.concatenate([smallest, typical, between]))
    assert "MACs below the trained" in reasons[0] and "below the fastest trained" in reasons[0]
    assert (reasons[1:201] == "").mean() > 0.95
    assert all("resolution not trained" in reason for reason in reasons[201:])


def test_a_search_winner_beyond_the_trained_latencies_is_flagged(shared_dir: Path, caplog):
    table = load_latency_csv(shared_dir / SEED / "latency" / "Tesla_P40_GPU_ofa.csv").head(2000)
    p40 = train_predictor(table, config={"depth": 0})
    fastest = float(table["latency"].min())
    with caplog.at_level(logging.WARNING):
        results = run_nas(
            p40,
            None,
            [fastest * 0.9, float(table["latency"].median())],
            objective="macs",
            population_size=20,
            generations=5,
            progress=False,
        )
    assert results["status"].tolist() == ["ok", "ok"]
    assert results["extrapolated"].tolist() == [True, False]
    assert results["message"].iloc[0].startswith("extrapolated: ")
    assert "below the fastest trained" in results["message"].iloc[0]
    assert "outside what the predictor was trained on" in caplog.text


def test_tables_without_a_space_column_get_the_one_space_their_subnets_fit(shared_dir: Path):
    folder = shared_dir / SEED / "latency"
    frames = [
        pd.read_csv(folder / f"{name}_ofa.csv").head(400).assign(hardware=name)
        for name in ("RTX_2080_Ti_GPU", "Tesla_P40_GPU")
    ]
    predictor = train_predictor(pd.concat(frames, ignore_index=True))  # IndexError before
    assert predictor.devices == ("RTX_2080_Ti_GPU_ofa", "Tesla_P40_GPU_ofa")
    fixed = pd.read_csv(folder / "Tesla_P40_GPU_fixedkernelcompofa.csv").head(200)
    mixed = pd.concat([frames[0], fixed.assign(hardware="P40")], ignore_index=True)
    with pytest.raises(
        ValueError, match="the rows of P40 have no 'space' and their subnets fit several"
    ):
        train_predictor(mixed)
