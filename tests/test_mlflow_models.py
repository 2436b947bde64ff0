"""Predictors as MLflow Models (the tests' SQLite tracking store and Model Registry; each test
registers models of its own names): the pyfunc flavor answers as the checkpoint does,
training's registrations move ``champion`` by the validation MAPE rule, and ``models:/`` URIs
given as parameters become predictors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc.scoring_server import predictions_to_json

from ofa_latency_kedro import mlflow_models
from ofa_latency_kedro.datasets import PredictorFolderDataset
from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.errors import LatencyDataError, ParameterError
from ofa_latency_kedro.mlflow_models import VersionRecord, champion_version
from ofa_latency_kedro.predictors import LatencyPredictor, train_predictor
from ofa_latency_kedro.predictors.generalization import train_generalized
from ofa_latency_kedro.predictors.metadata import Conformal
from tests.helpers import seed_ofa_devices

NAME = "RTX_2080_Ti_GPU_ofa"
TINY = {"epochs": 3, "hidden": 16, "depth": 1}


@pytest.fixture(scope="module")
def rtx(shared_dir: Path, tmp_path_factory) -> tuple[LatencyPredictor, Path]:
    """A tiny predictor of the seed's RTX 2080 Ti file (with a calibrated interval), saved."""
    table = load_latency_csv(shared_dir / "seed_data" / "latency" / f"{NAME}.csv").head(300)
    predictor = train_predictor(table, config=TINY)
    return predictor, predictor.save(tmp_path_factory.mktemp("rtx") / f"{NAME}.pt")


@pytest.fixture(scope="module")
def subnets(shared_dir: Path) -> pd.DataFrame:
    """Real subnets the tiny predictor did not train on, as the seed's CSV spells them."""
    table = pd.read_csv(shared_dir / "seed_data" / "latency" / f"{NAME}.csv")
    return table.iloc[400:412][["child_arch"]].reset_index(drop=True)


def register(predictor: LatencyPredictor, checkpoint: Path, name: str = NAME) -> str:
    """What training's MLflow record does with one predictor: log it, register a version."""
    with mlflow.start_run() as run:
        model = mlflow_models.log_predictor(run.info.run_id, name, predictor, checkpoint)
        return mlflow_models.register_predictor(run.info.run_id, name, predictor, model).version


def with_val_mape(predictor: LatencyPredictor, mape: float | None, tmp: Path, tag: str):
    """The predictor with another validation MAPE (None: no validation figures), saved."""
    metrics = {split: dict(values) for split, values in predictor.metrics.items()}
    if mape is None:
        metrics.pop("val")
    else:
        metrics["val"]["mape"] = mape
    changed = predictor.replace(metrics=metrics)
    return changed, changed.save(tmp / f"{tag}.pt")


def test_the_champion_loads_through_mlflow_and_answers_as_the_checkpoint(
    rtx, subnets, tmp_path: Path
):
    predictor, checkpoint = rtx
    register(predictor, checkpoint)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    out = model.predict(subnets)
    loaded = LatencyPredictor.load(checkpoint)
    archs = subnets["child_arch"].tolist()
    assert list(out.columns) == ["latency_ms", "latency_low_ms", "latency_high_ms"]
    assert np.array_equal(out["latency_ms"].to_numpy(), loaded.predict(archs))
    low, high = loaded.predict_interval(archs, 0.9)
    assert np.array_equal(out["latency_low_ms"].to_numpy(), low)
    assert np.array_equal(out["latency_high_ms"].to_numpy(), high)
    narrow = model.predict(subnets, params={"level": 0.5})
    assert np.array_equal(
        narrow["latency_low_ms"].to_numpy(), loaded.predict_interval(archs, 0.5)[0]
    )
    assert (narrow["latency_low_ms"] >= out["latency_low_ms"]).all()
    assert model.metadata.get_input_schema().input_names() == ["child_arch", "width_mult"]
    assert model.metadata.get_params_schema().params[0].name == "level"
    local = mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion", dst_path=str(tmp_path))
    example = mlflow.models.Model.load(local).load_input_example(local)
    assert len(example) == mlflow_models.EXAMPLE_ROWS
    assert list(example.columns) == ["child_arch", "width_mult"]
    requirements = (Path(local) / "requirements.txt").read_text()
    assert "torch==" in requirements and "mlflow==" in requirements
    assert (Path(local) / "code" / "ofa_latency_kedro" / "predictors").is_dir()


def test_the_model_input_is_a_latency_csvs_child_arch_with_an_optional_width(rtx, subnets):
    predictor, _ = rtx
    expected = predictor.predict(subnets["child_arch"].tolist())
    widths = subnets.assign(width_mult=[1.0, np.nan] * (len(subnets) // 2))
    assert np.array_equal(mlflow_models.predict_frame(predictor, widths)["latency_ms"], expected)
    with pytest.raises(LatencyDataError, match="'child_arch' column"):
        mlflow_models.predict_frame(predictor, subnets.rename(columns={"child_arch": "arch"}))
    with pytest.raises(ValueError, match="width"):
        mlflow_models.predict_frame(predictor, subnets.assign(width_mult=1.2))


def test_an_unbounded_interval_is_answered_as_null_and_the_served_json_stays_valid(rtx, subnets):
    predictor, _ = rtx
    residuals = tuple(np.linspace(-0.02, 0.02, 5))  # 5 residuals: a 90% interval is unbounded
    few = predictor.replace(conformal=Conformal(residuals, "five held-out subnets"))
    out = mlflow_models.predict_frame(few, subnets, 0.9)
    assert (
        out["latency_high_ms"].isna().all()
        and out["latency_high_ms"].map(type).eq(type(None)).all()
    )
    assert np.isfinite(out["latency_low_ms"].astype(float)).all()
    assert np.isfinite(mlflow_models.predict_frame(few, subnets, 0.5)["latency_high_ms"]).all()

    written = io.StringIO()
    predictions_to_json(out, written)

    def refuse(constant: str) -> None:
        raise ValueError(f"the scoring server wrote {constant}, which is not JSON")

    answers = json.loads(written.getvalue(), parse_constant=refuse)["predictions"]
    assert [answer["latency_high_ms"] for answer in answers] == [None] * len(subnets)
    assert [answer["latency_ms"] for answer in answers] == pytest.approx(out["latency_ms"].tolist())


def test_a_generalized_model_answers_each_row_on_its_device(shared_dir: Path):
    table = seed_ofa_devices(shared_dir, 200)
    general = train_generalized(table[table["split"] == "train"], config={"epochs": 3})
    frame = table[table["split"] == "test"].groupby("hardware").head(3)
    devices = (frame["hardware"] + "_" + frame["space"]).tolist()
    query = pd.DataFrame({"child_arch": frame["child_arch"].tolist(), "device": devices})
    query.loc[0, "device"] = None  # as it stands: the average of its devices
    out = mlflow_models.predict_frame(general, query)
    placed = [general if row == 0 else general.for_device(d) for row, d in enumerate(devices)]
    for row, (arch, predictor) in enumerate(zip(query["child_arch"], placed, strict=True)):
        width = predictor.width_mult
        alone = predictor.predict([arch], width_mult=width)[0]
        assert out["latency_ms"].iloc[row] == pytest.approx(alone, rel=1e-6)  # float32 batches
    assert mlflow_models.signature(general).inputs.input_names() == [
        "child_arch",
        "width_mult",
        "device",
    ]
    assert mlflow_models.input_example(general)["device"].iloc[0] == general.devices[0]
    with pytest.raises(ValueError, match="was not trained on 'jetson_ofa'"):
        mlflow_models.predict_frame(general, query.assign(device="jetson_ofa"))


def records(*versions: tuple[int, float | None, str]) -> list[VersionRecord]:
    return [VersionRecord(version, mape, rows) for version, mape, rows in versions]


def test_the_champion_is_the_lowest_validation_mape_on_the_newest_rows():
    same = "800/100/100"
    assert champion_version(records((1, 2.0, same), (2, 1.5, same), (3, 1.8, same))) == 2
    assert champion_version(records((1, 1.5, same), (2, 1.5, same))) == 2  # a tie: the newer
    assert champion_version(records((1, 1.5, same), (2, None, same))) == 1  # no val figure
    # a version trained on more rows: MAPEs on other validation rows do not compare
    assert champion_version(records((1, 1.0, same), (2, 1.6, "900/120/120"))) == 2
    assert champion_version(records((1, 1.0, "900/120/120"), (2, 1.6, same), (3, None, same))) == 2
    assert champion_version(records((1, None, same))) is None
    assert champion_version([]) is None


def test_registering_moves_the_champion_by_the_predictors_own_validation_mape(rtx, tmp_path: Path):
    predictor, _ = rtx
    client = mlflow.MlflowClient()
    name = "rule_test"
    for tag, mape in (("v1", 2.0), ("v2", 1.5), ("v3", 1.8), ("v4", None)):
        register(*with_val_mape(predictor, mape, tmp_path, tag), name=name)
    champion = client.get_model_version_by_alias(name, "champion")
    assert int(champion.version) == 2
    assert float(champion.tags["val_mape_pct"]) == 1.5
    assert champion.tags["hardware"] == "RTX_2080_Ti_GPU" and champion.tags["space"] == "ofa"
    rows = predictor.metadata.training["rows"]
    assert champion.tags["rows_train_val_test"] == f"{rows['train']}/{rows['val']}/{rows['test']}"
    assert "val_mape_pct" not in client.get_model_version(name, "4").tags
    assert "validation MAPE" in client.get_registered_model(name).description


def test_models_uris_resolve_to_the_registered_predictor_or_name_what_is_missing(rtx, subnets):
    predictor, checkpoint = rtx
    name = "uri_test"
    register(predictor, checkpoint, name)
    archs = subnets["child_arch"].tolist()
    for uri in (f"models:/{name}@champion", f"models:/{name}/1"):
        resolved = mlflow_models.load_registered_predictor(uri, "nas.predictors")
        assert np.array_equal(resolved.predict(archs), predictor.predict(archs))
    problems = {
        "models:/jetson_ofa@champion": r"'nas.predictors' names models:/jetson_ofa@champion, "
        r"but the Model Registry at sqlite:///.* has no model 'jetson_ofa' \(it has .*uri_test",
        f"models:/{name}@best": rf"names models:/{name}@best, but model '{name}' has no alias "
        r"'best' \(aliases: champion; versions: 1\)",
        f"models:/{name}/7": "has no version 7",
        f"models:/{name}": "is not models:/<name>@<alias> or models:/<name>/<version>",
    }
    for uri, message in problems.items():
        with pytest.raises(ParameterError, match=message):
            mlflow_models.load_registered_predictor(uri, "nas.predictors")


def test_a_registered_model_takes_the_place_of_its_datasets_checkpoint(rtx, tmp_path: Path):
    predictor, _ = rtx
    better, saved = with_val_mape(predictor, 0.5, tmp_path, "better")
    register(better, saved, "place_test")
    PredictorFolderDataset(str(tmp_path / "folder")).save({NAME: predictor, "other_ofa": predictor})
    folder = PredictorFolderDataset(str(tmp_path / "folder")).load()
    chosen, names = mlflow_models.with_registered_models(
        folder, ("other_ofa", "models:/place_test@champion"), "nas.predictors"
    )
    assert names == ("other_ofa", NAME) and chosen.path == folder.path
    assert chosen[NAME]().metrics["val"]["mape"] == 0.5
    assert folder[NAME]().metrics["val"]["mape"] == predictor.metrics["val"]["mape"]
    assert mlflow_models.with_registered_models(folder, "all", "nas.predictors") == (folder, "all")
    with pytest.raises(ParameterError, match=f"names two predictors of {NAME}"):
        mlflow_models.with_registered_models(
            folder, (NAME, "models:/place_test@champion"), "finetuning.sources"
        )
