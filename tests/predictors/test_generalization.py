"""The generalized predictor: one model over devices, embeddings of unseen devices,
leave-one-hardware-out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ofa_latency_kedro import adapt_predictor
from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.experiments import leave_one_hardware_out
from ofa_latency_kedro.predictors import (
    LatencyPredictor,
    PredictorError,
    regression_metrics,
    train_predictor,
)
from ofa_latency_kedro.predictors.adaptation import applies
from ofa_latency_kedro.predictors.embedding import fit_embedding
from ofa_latency_kedro.predictors.generalization import (
    reference_subnets,
    registry_embedding,
    registry_vectors,
    train_generalized,
)
from ofa_latency_kedro.search_space import ArchBatch
from tests.helpers import seed_ofa_devices

REGISTRY = {
    "RTX_2080_Ti_GPU": {"kind": "gpu", "cuda_cores": 4352, "memory_gb": 11, "peak_tflops": 13.4},
    "Tesla_P40_GPU": {"kind": "gpu", "cuda_cores": 3840, "memory_gb": 24, "peak_tflops": 11.8},
    "note10_lookuptable": {"kind": "lut", "cuda_cores": None},
}


@pytest.fixture(scope="module")
def table(shared_dir: Path) -> pd.DataFrame:
    return seed_ofa_devices(shared_dir, 1000)


@pytest.fixture(scope="module")
def model(table) -> LatencyPredictor:
    train = table[(table["split"] == "train") & (table["hardware"] != "Tesla_P40_GPU")]
    return train_generalized(train, descriptors=REGISTRY, config={"epochs": 20})


def test_each_head_predicts_its_own_device(model, table):
    assert model.kind == "generalized"
    assert model.devices == ("RTX_2080_Ti_GPU_ofa", "note10_lookuptable_ofa")
    for device in model.devices:
        head = model.for_device(device)
        test = table[(table["split"] == "test") & (table["hardware"] + "_ofa" == device)]
        metrics = regression_metrics(
            test["latency"].to_numpy(), head.predict_batch(ArchBatch.from_frame(test))
        )
        assert head.hardware == device.removesuffix("_ofa") and head.space == "ofa"
        assert metrics["mape"] < 8 and metrics["spearman"] > 0.97
    with pytest.raises(PredictorError, match="not trained on 'Tesla_P40_GPU_ofa'"):
        model.for_device("Tesla_P40_GPU_ofa")


def test_a_width_of_another_device_family_reads_the_same_genes(model, table):
    note10 = table[table["hardware"] == "note10_lookuptable"].iloc[:5]
    batch = ArchBatch.from_frame(note10)
    assert np.all(batch.width_mult == 1.2)
    same_genes = ArchBatch(batch.ks, batch.e, batch.d, batch.r, np.ones(len(batch)))
    np.testing.assert_array_equal(
        model.device_log_latency(batch), model.device_log_latency(same_genes)
    )


def test_save_and_load_keep_the_model_and_its_embedding(model, tmp_path: Path):
    placed = model.for_device("note10_lookuptable_ofa")
    loaded = LatencyPredictor.load(placed.save(tmp_path / "generalized.pt"))
    batch = ArchBatch.from_frame(
        pd.DataFrame(
            ArchBatch.from_archs(
                [{"ks": [3] * 20, "e": [4] * 20, "d": [3] * 5, "r": [192]}] * 3, width_mult=1.2
            ).to_frame()
        )
    )
    assert loaded.kind == "generalized" and loaded.devices == model.devices
    assert loaded.width_mult == 1.2  # the Note10's network: its width-1.0 twins are refused
    with pytest.raises(PredictorError, match="width_mult 1.0; .* width-1.2 network"):
        loaded.predict_batch(batch.at_width(1.0))
    assert loaded.metadata.embedding == placed.metadata.embedding
    np.testing.assert_allclose(loaded.predict_batch(batch), placed.predict_batch(batch))


def test_an_embedding_recovers_a_known_blend(model, table):
    pool = table[table["hardware"] == "Tesla_P40_GPU"]
    batch = ArchBatch.from_frame(pool.iloc[:300])
    columns = model.device_log_latency(batch)
    latency = np.exp(0.4 + columns @ np.array([0.8, 0.2]))
    embedding = fit_embedding(model, batch, latency)
    weights = np.array(embedding.weights)
    # the devices' columns are nearly collinear, so the pull towards the average device
    # shows; the blend still leans the right way and reproduces the latencies
    assert 0.6 < weights[0] < 0.85 and weights.sum() == pytest.approx(1.0, abs=0.05)
    fitted = np.exp(embedding.intercept + columns @ weights)
    assert np.mean(np.abs(fitted / latency - 1)) < 0.01
    few = fit_embedding(model, batch[:3], latency[:3])
    assert few.weights == (0.5, 0.5)  # too few samples for a blend: the average, shifted


def test_registry_vectors_never_read_a_missing_value_as_zero():
    vectors = registry_vectors(
        {
            "a": {"kind": "gpu", "cuda_cores": 1000},
            "b": {"kind": "gpu", "cuda_cores": 3000},
            "c": {"kind": "cpu", "cuda_cores": None},
            "d": None,
        }
    )
    assert vectors.loc["c", "cuda_cores"] == pytest.approx(vectors["cuda_cores"].iloc[:2].mean())
    assert vectors.loc["c", "cuda_cores_missing"] > vectors.loc["a", "cuda_cores_missing"]
    assert np.isfinite(vectors.to_numpy()).all()


def test_a_registry_embedding_weighs_the_closest_device_most(model):
    gpu_like = registry_embedding(model, "Tesla_P40_GPU", REGISTRY["Tesla_P40_GPU"])
    assert gpu_like.weights[0] > gpu_like.weights[1]  # RTX closer than the phone
    assert gpu_like.intercept == pytest.approx(np.log(13.4 / 11.8), rel=0.3)
    with pytest.raises(PredictorError, match="no registry entry for 'jetson'"):
        registry_embedding(model, "jetson", None)


def test_the_reference_set_is_spread_and_fixed(table):
    first = reference_subnets(table, 10)
    assert len(first) == 10 and first["canonical_key"].str.partition("/")[2].is_unique
    pd.testing.assert_frame_equal(first, reference_subnets(table, 10))
    macs_spread = first["r"].max() - first["r"].min()
    assert macs_spread >= 64
    with pytest.raises(ValueError, match="needs 5000 distinct subnets"):
        reference_subnets(table, 5000)


def test_a_generalized_predictor_adapts_by_its_embedding(model, table, tmp_path: Path):
    assert applies(model, "embedding") and not applies(model, "last_layer")
    p40 = table[table["hardware"] == "Tesla_P40_GPU"]
    few = p40[p40["split"] == "train"].iloc[:20]
    adapted = adapt_predictor(model, few)
    info = adapted.metadata.adaptation
    assert set(info.cv_mape) == {"calibrate", "calibrate_features", "embedding"}
    assert adapted.hardware == "Tesla_P40_GPU"
    test = p40[p40["split"] == "test"]
    batch = ArchBatch.from_frame(test)
    after = regression_metrics(test["latency"].to_numpy(), adapted.predict_batch(batch))
    assert after["mape"] < 8 and after["spearman"] > 0.97
    loaded = LatencyPredictor.load(adapted.save(tmp_path / "p40.pt"))
    np.testing.assert_allclose(loaded.predict_batch(batch), adapted.predict_batch(batch))


def test_leave_one_hardware_out_scores_each_device_zero_shot(table):
    two = table[table["hardware"] != "note10_lookuptable"]
    results, models = leave_one_hardware_out(
        two, REGISTRY, reference_count=8, config={"epochs": 20}
    )
    assert sorted(models) == ["without_RTX_2080_Ti_GPU", "without_Tesla_P40_GPU"]
    assert models["without_Tesla_P40_GPU"].devices == ("RTX_2080_Ti_GPU_ofa",)
    assert set(results["held_out"]) == {"RTX_2080_Ti_GPU_ofa", "Tesla_P40_GPU_ofa"}
    for _, rows in results.groupby("held_out"):
        assert list(rows["descriptor"])[:2] == ["reference", "registry"]
        assert rows["spearman"].min() > 0.95
    reference = results[results["descriptor"] == "reference"]
    assert (reference["measured_subnets"] == 8).all()
    assert (reference["mape"] < 15).all()
    with pytest.raises(ValueError, match="two devices or more"):
        leave_one_hardware_out(table[table["hardware"] == "Tesla_P40_GPU"], REGISTRY)
    with pytest.raises(ValueError, match="cannot hold out"):
        leave_one_hardware_out(two, REGISTRY, held_out=["jetson"])


def test_train_predictor_on_several_devices_gives_the_generalized_model(table):
    two = table[table["hardware"] != "note10_lookuptable"].drop(columns=["split"])
    predictor = train_predictor(two.iloc[::2])
    assert predictor.kind == "generalized"
    assert set(predictor.metrics["test"]) == {"RTX_2080_Ti_GPU_ofa", "Tesla_P40_GPU_ofa"}
    assert all(m["spearman"] > 0.9 for m in predictor.metrics["test"].values())


def test_an_embedding_blends_only_heads_of_its_own_space(table, shared_dir: Path):
    fixed = load_latency_csv(
        shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_fixedkernelcompofa.csv"
    ).iloc[:400]
    ofa = table[(table["hardware"] == "RTX_2080_Ti_GPU") & (table["split"] == "train")]
    mixed = pd.concat([ofa, fixed], ignore_index=True)
    model = train_generalized(mixed, config={"epochs": 2})
    assert model.devices == ("RTX_2080_Ti_GPU_ofa", "Tesla_P40_GPU_compofa")
    assert model.metadata.device_spaces == ("ofa", "compofa")
    assert model.metadata.embedding.weights == (1.0, 0.0)  # the space with most rows
    p40 = table[table["hardware"] == "Tesla_P40_GPU"].iloc[:40]
    batch = ArchBatch.from_frame(p40)
    embedding = fit_embedding(model, batch, p40["latency"].to_numpy(), space="ofa")
    assert embedding.weights[1] == 0.0 and embedding.weights[0] > 0
    adapted = adapt_predictor(model, p40, method="embedding")
    assert adapted.metadata.embedding.weights[1] == 0.0
    assert adapted.space == "ofa"
