"""Ray Tune search on a real local Ray: the best trial's predictor, and failed trials."""

from __future__ import annotations

from pathlib import Path

import pytest

from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.predictors import prepare_data
from ofa_latency_kedro.predictors.tuning import (
    TuneSettings,
    TuningError,
    ray_session,
    tune_predictor,
)

SMALL = {
    "epochs": ("choice", (4,)),
    "hidden": ("choice", (32, 64)),
    "lr": ("loguniform", (1e-3, 3e-3)),
}


@pytest.fixture(scope="module")
def ray_local():
    with ray_session(None):
        yield


@pytest.fixture(scope="module")
def data(shared_dir: Path):
    table = load_latency_csv(shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv").head(
        800
    )
    return prepare_data(table)


@pytest.mark.slow
def test_the_best_trial_is_returned_with_its_trials(ray_local, data, tmp_path: Path):
    settings = TuneSettings(
        num_samples=3, grace_period=2, storage_path=str(tmp_path), search_space=SMALL
    )
    outcome = tune_predictor(data, settings)
    assert len(outcome.trials) == 3
    assert set(outcome.trials["status"]) <= {"completed", "stopped"}
    assert outcome.errors == []
    completed = outcome.trials[outcome.trials["status"] == "completed"]
    best = completed.loc[completed["val_mae"].idxmin()]
    assert outcome.best_config["hidden"] == best["hidden"]
    assert outcome.predictor.metrics["val"]["mae"] == pytest.approx(best["val_mae"], rel=1e-4)
    assert outcome.predictor.metadata.training["tuning"]["trials"] == 3
    assert any(tmp_path.iterdir())  # Ray Tune's storage went where it was told


@pytest.mark.slow
def test_a_failed_trial_fails_the_search_with_its_error(ray_local, data, tmp_path: Path):
    failing = {**SMALL, "hidden": ("grid", (0, 32))}
    with pytest.raises(
        TuningError, match=r"1 of 2 Ray Tune trials failed.*hidden' must be at least 1"
    ):
        tune_predictor(
            data,
            TuneSettings(num_samples=1, storage_path=str(tmp_path), search_space=failing),
        )
    outcome = tune_predictor(
        data,
        TuneSettings(
            num_samples=1,
            storage_path=str(tmp_path),
            on_trial_error="continue",
            search_space=failing,
        ),
    )
    assert outcome.trials["status"].tolist().count("error") == 1
    assert "hidden' must be at least 1" in outcome.errors[0]
    assert outcome.best_config["hidden"] == 32


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="'on_trial_error' must be one of raise, continue"):
        TuneSettings(on_trial_error="ignore")
    with pytest.raises(ValueError, match="unknown parameter 'training.tune.trials'"):
        TuneSettings.from_dict({"trials": 3})
    with pytest.raises(ValueError, match="'training.tune.search_space.width' is not a training"):
        TuneSettings.from_dict({"search_space": {"width": ["choice", [1, 2]]}})
