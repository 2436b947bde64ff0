"""The registry of predictor kinds: every kind is built, fed, predicted and saved through
it; checkpoints of earlier versions load and predict the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from ofa_latency_kedro.encoding.encoders import Encoder
from ofa_latency_kedro.predictors import (
    KINDS,
    LatencyPredictor,
    PredictorError,
    PredictorMetadata,
    TrainingConfig,
    get_kind,
)
from ofa_latency_kedro.predictors.kinds import PredictorKind, trainable_kinds
from ofa_latency_kedro.search_space import ArchBatch, get_space

V1 = Path(__file__).parent / "checkpoints_v1"


def test_the_registry_names_every_kind_once():
    assert list(KINDS) == ["wide_deep", "seed_mlp", "generalized"]
    assert trainable_kinds() == ("wide_deep", "seed_mlp")
    assert all(kind.name == name for name, kind in KINDS.items())
    with pytest.raises(PredictorError, match="unknown predictor kind 'xgboost'; known: wide_deep"):
        get_kind("xgboost")
    with pytest.raises(ValueError, match="'kind' must be one of wide_deep, seed_mlp"):
        TrainingConfig(kind="generalized")  # trained across devices by train_generalized


@pytest.mark.parametrize("name", sorted(p.stem for p in V1.glob("*.pt")))
def test_checkpoints_of_the_first_format_load_and_predict_the_same_but_never_negative(
    name: str, tmp_path: Path
):
    expected = json.loads((V1 / "expected.json").read_text())
    before = np.array(expected[name])
    predictor = LatencyPredictor.load(V1 / f"{name}.pt")
    now = predictor.predict(expected["archs"])
    assert (now > 0).all()
    sound = before > 0.1  # the 2-epoch seed MLP answered negative latencies then
    np.testing.assert_allclose(now[sound], before[sound], rtol=1e-6)
    again = LatencyPredictor.load(predictor.save(tmp_path / "again.pt"))
    assert again.metadata == predictor.metadata
    np.testing.assert_array_equal(again.predict(expected["archs"]), now)


@pytest.mark.parametrize("name", ["wide_deep", "seed_mlp", "generalized_p40"])
def test_heads_are_the_output_layers(name: str):
    predictor = LatencyPredictor.load(V1 / f"{name}.pt")
    heads = {id(p) for p in predictor.head_parameters()}
    every = {id(p) for p in predictor.module.parameters()}
    assert heads and heads < every


class ConstantKind(PredictorKind):
    """A toy kind: the same latency for every subnet (its one weight)."""

    name: ClassVar[str] = "constant"
    trainable: ClassVar[bool] = False

    @classmethod
    def build(cls, metadata: PredictorMetadata) -> torch.nn.Module:
        module = torch.nn.Linear(1, 1)
        module.head_parameters = lambda: list(module.parameters())
        return module

    @classmethod
    def module_inputs(cls, metadata, batch, hardware=None):
        return (torch.ones(len(batch), 1),)

    @classmethod
    def predict_chunk(cls, module, metadata, batch, hardware=None):
        return module(*cls.module_inputs(metadata, batch)).squeeze(-1).double().numpy()


def test_a_registered_kind_needs_nothing_else_to_predict_save_and_load(monkeypatch, tmp_path):
    monkeypatch.setitem(KINDS, "constant", ConstantKind)
    module = ConstantKind.build(None)
    with torch.no_grad():
        module.weight.fill_(0.0)
        module.bias.fill_(7.5)
    metadata = PredictorMetadata(
        kind="constant", encoders={"input": Encoder("seed128")}, architecture={}
    )
    predictor = LatencyPredictor(module, metadata)
    batch = get_space("ofa").sample_batch(4, seed=0)
    np.testing.assert_allclose(predictor.predict(batch), 7.5)
    loaded = LatencyPredictor.load(predictor.save(tmp_path / "constant.pt"))
    assert loaded.kind == "constant"
    np.testing.assert_allclose(loaded.predict(ArchBatch.concatenate([batch, batch])), 7.5)
