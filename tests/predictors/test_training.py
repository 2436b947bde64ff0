"""train_predictor: good defaults without Ray; the seed's recipe; clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ofa_latency_kedro.encoding import load_latency_csv, split_table
from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.measurement import measure
from ofa_latency_kedro.predictors import SEED_RECIPE, TrainingConfig, prepare_data, train_predictor
from ofa_latency_kedro.search_space import get_space


def test_a_lookup_table_device_is_learned_exactly(shared_dir: Path):
    archs = get_space("compofa-elastic", width_mult=1.2).sample_distinct(1500, seed=0)
    table = measure(archs, backend="lut", lut_dir=shared_dir / "seed_data" / "latency_table@note10")
    predictor = train_predictor(table)
    assert predictor.metadata.architecture["depth"] == 0  # the wide part alone is exact
    assert predictor.metrics["test"]["mape"] < 0.05
    assert predictor.metrics["test"]["spearman"] > 0.9999


def test_default_predictor_on_a_gpu_dataset(shared_dir: Path):
    table = load_latency_csv(shared_dir / "seed_data" / "latency" / "RTX_2080_Ti_GPU_ofa.csv").head(
        3000
    )
    predictor = train_predictor(table, config={"epochs": 40})
    test = predictor.metrics["test"]
    assert test["mape"] < 3.0
    assert test["spearman"] > 0.995
    assert predictor.metadata.training["rows"] == {"train": 2100, "val": 450, "test": 450}
    assert predictor.metadata.training["split"] == "key"
    assert len(predictor.metadata.history["val_mae"]) == predictor.metadata.training["epochs_run"]


def test_a_given_split_column_is_used(shared_dir: Path):
    table = load_latency_csv(
        shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv", merge=False
    ).head(1000)
    predictor = train_predictor(split_table(table, "seed"), config={"epochs": 5})
    assert predictor.metadata.training["split"] == "given"
    assert predictor.metadata.training["rows"] == {"train": 700, "val": 150, "test": 150}


def test_plain_two_column_tables_are_accepted(shared_dir: Path):
    raw = pd.read_csv(shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv").head(400)
    predictor = train_predictor(raw, config={"epochs": 3})
    assert predictor.metrics["test"]["n"] == 60


def test_the_seed_recipe_trains_the_seed_mlp(shared_dir: Path):
    table = load_latency_csv(shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv").head(
        600
    )
    predictor = train_predictor(table, config={**SEED_RECIPE.to_dict(), "epochs": 2})
    assert predictor.kind == "seed_mlp"
    assert predictor.metadata.architecture == {"in_features": 128, "hidden": 400}
    assert predictor.metadata.training["epochs_run"] == 2


def test_bad_configurations_and_tables_are_refused(shared_dir: Path):
    with pytest.raises(ParameterError, match="unknown parameter 'training.config.learning_rate'"):
        TrainingConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ParameterError, match="'kind' must be one of wide_deep, seed_mlp"):
        TrainingConfig(kind="xgboost")
    with pytest.raises(ParameterError, match="'training.config.epochs' must be an integer"):
        TrainingConfig.from_dict({"epochs": "many"})
    two = load_latency_csv(
        [
            shared_dir / "seed_data" / "latency" / f
            for f in ("Tesla_P40_GPU_ofa.csv", "RTX_2080_Ti_GPU_ofa.csv")
        ]
    )
    with pytest.raises(ValueError, match="several hardwares"):
        prepare_data(two)  # one device per predictor; train_predictor gives a generalized one
    with pytest.raises(ValueError, match="needs the columns child_arch and latency"):
        train_predictor(pd.DataFrame({"arch": [1]}))
