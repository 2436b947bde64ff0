"""`kedro run --pipelines nas` re-runs only the search, with budgets from ``--params``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import kedro


@pytest.fixture
def trained_project(project_copy: Path, device: Path) -> Path:
    """A project whose sampling and training already ran (on the lookup-table device)."""
    data = project_copy / "data"
    shutil.copytree(device / "latency", data / "01_raw" / "latency", dirs_exist_ok=True)
    shutil.copytree(device / "predictors", data / "06_models" / "predictors")
    shutil.copy(device / "acc_predictor.pth", data / "06_models" / "acc_predictor.pth")
    return project_copy


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--pipelines", "--pipeline"])
def test_nas_alone_with_new_budgets(trained_project: Path, flag: str):
    params = "nas.constraints_ms=[16,22],nas.population_size=24,nas.generations=20"
    result = kedro(trained_project, "run", flag, "nas", "--params", params)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    data = trained_project / "data"
    assert not (data / "02_intermediate" / "sampling_plan.csv").exists()
    results = pd.read_csv(data / "07_model_output" / "nas_results.csv")
    assert results["budget_ms"].tolist() == [16, 22]
    assert (results["objective"] == "accuracy").all() and results["budget_met"].all()
    configs = sorted(p.name for p in (data / "07_model_output" / "net_configs").iterdir())
    assert configs == ["note10_ofa_16ms.json", "note10_ofa_22ms.json"]
    config = json.loads((data / "07_model_output" / "net_configs" / configs[0]).read_text())
    assert config["name"] == "MobileNetV3"
    assert (data / "08_reporting" / "nas_pareto.png").stat().st_size > 0
    summary = json.loads((data / "08_reporting" / "nas_verification.json").read_text())
    assert summary["budgets_met"] == 2
    assert "NAS results (objective: accuracy)" in log


@pytest.mark.slow
def test_bad_budgets_are_named(trained_project: Path):
    result = kedro(
        trained_project, "run", "--pipelines", "nas", "--params", "nas.constraints_ms=fast"
    )
    assert result.returncode != 0
    assert "parameter 'nas.constraints_ms' must be a list of milliseconds or 'auto'" in (
        result.stdout + result.stderr
    )
