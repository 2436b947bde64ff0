"""Smoke tests of the Kedro project as a user runs it: `kedro run` in a copy of the project."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.helpers import FAST_PROTOCOL, PROJECT_ROOT, kedro, params_arg

PIPELINES = {"sampling", "encoding", "training", "generalization", "finetuning", "nas"}


def test_every_pipeline_is_registered():
    bootstrap_project(PROJECT_ROOT)
    from kedro.framework.project import pipelines

    assert PIPELINES | {"__default__"} <= set(pipelines)
    default_nodes = {n.name for n in pipelines["__default__"].nodes}
    assert "plan_subnets" in default_nodes


@pytest.mark.slow
def test_default_run_on_tiny_parameters(project_copy: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(
        project_copy
    )  # relative paths (data/, mlflow.db) resolve there, as in a user's run
    bootstrap_project(project_copy)
    runtime = {
        "sampling": {"hardware": "smoke", "num_subnets": 40, "protocol": FAST_PROTOCOL},
        "training": {"config": {"epochs": 5}},
        "nas": {"population_size": 16, "generations": 10},
    }
    with KedroSession.create(project_path=project_copy, runtime_params=runtime) as session:
        session.run()
    data = project_copy / "data"
    plan = pd.read_csv(data / "02_intermediate" / "sampling_plan.csv")
    assert len(plan) == 40
    measured = pd.read_csv(data / "01_raw" / "latency" / "smoke_ofa.csv")
    assert sorted(measured["child_arch"]) == sorted(plan["child_arch"])
    assert (data / "06_models" / "predictors" / "smoke_ofa.pt").is_file()
    metrics = pd.read_csv(data / "08_reporting" / "predictor_metrics.csv")
    assert metrics["dataset"].tolist() == ["smoke_ofa"]
    assert (data / "08_reporting" / "plots" / "smoke_ofa_parity.png").is_file()
    assert (project_copy / "mlflow.db").is_file()
    results = pd.read_csv(data / "07_model_output" / "nas_results.csv")
    assert len(results) == 3 and (results["status"] == "ok").all()
    assert results["verified"].all()  # the smoke dataset was measured on this machine
    assert set(results["objective"]) <= {"accuracy", "macs"}
    assert len(list((data / "07_model_output" / "net_configs").glob("*.json"))) == 3
    assert (data / "08_reporting" / "nas_pareto.png").is_file()
    assert (data / "08_reporting" / "nas_verification.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--pipelines", "--pipeline"])
def test_cli_runs_a_named_pipeline_with_either_flag(project_copy: Path, flag: str):
    params = "sampling.num_subnets=7," + params_arg("sampling.protocol", FAST_PROTOCOL)
    result = kedro(project_copy, "run", flag, "sampling", "--params", params)
    assert result.returncode == 0, result.stdout + result.stderr
    plan = pd.read_csv(project_copy / "data" / "02_intermediate" / "sampling_plan.csv")
    assert len(plan) == 7
    assert "Sampling done" in result.stdout + result.stderr


@pytest.mark.slow
def test_generalization_and_finetuning_from_the_cli_on_seed_files(
    project_copy: Path, shared_dir: Path
):
    raw = project_copy / "data" / "01_raw" / "latency"
    raw.mkdir(parents=True, exist_ok=True)
    for name in ("RTX_2080_Ti_GPU_ofa", "Tesla_P40_GPU_ofa", "note10_lookuptable_ofa"):
        lines = (shared_dir / "seed_data" / "latency" / f"{name}.csv").read_text().splitlines()
        (raw / f"{name}.csv").write_text("\n".join(lines[:401]) + "\n")
    first = kedro(
        project_copy,
        "run",
        "--pipelines",
        "encoding,training",
        "--params",
        "training.config.epochs=5",
    )
    assert first.returncode == 0, first.stdout + first.stderr
    params = ",".join(
        [
            "generalization.model.epochs=3",
            "finetuning.ks=[5,20]",
            "finetuning.draws=[0]",
            "finetuning.samplers=[random]",
            "finetuning.methods=[calibrate,embedding]",
            "finetuning.adapt_k=10",
        ]
    )
    second = kedro(
        project_copy, "run", "--pipelines", "generalization,finetuning", "--params", params
    )
    assert second.returncode == 0, second.stdout + second.stderr
    reporting = project_copy / "data" / "08_reporting"
    loo = pd.read_csv(reporting / "generalization_leave_one_out.csv")
    assert set(loo["held_out"]) == {
        "RTX_2080_Ti_GPU_ofa",
        "Tesla_P40_GPU_ofa",
        "note10_lookuptable_ofa",
    }
    curves = pd.read_csv(reporting / "finetuning_curves.csv")
    assert set(curves["method"]) == {"calibrate", "generalized/calibrate", "generalized/embedding"}
    assert (project_copy / "data" / "06_models" / "generalized" / "all_devices.pt").is_file()
    assert "Leave-one-hardware-out" in second.stdout + second.stderr
