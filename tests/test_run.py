"""Smoke tests of the Kedro project as a user runs it: `kedro run` and `make run` in a copy of
the project, and the Makefile's clean targets."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.helpers import FAST_PROTOCOL, PROJECT_ROOT, kedro, make, params_arg, tree

PIPELINES = {"sampling", "encoding", "training", "generalization", "finetuning", "nas"}


def test_every_pipeline_is_registered():
    bootstrap_project(PROJECT_ROOT)
    from kedro.framework.project import pipelines

    assert PIPELINES | {"__default__"} <= set(pipelines)
    default_nodes = {n.name for n in pipelines["__default__"].nodes}
    assert "sampling.plan_subnets" in default_nodes


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
    assert set(plan["child_arch"]) <= set(measured["child_arch"])
    assert len(measured) == len(plan) + verified_rows(
        data / "01_raw" / "latency" / "smoke_ofa.json"
    )
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
    store = f"sqlite:///{project_copy / 'mlflow.db'}"
    registry = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    for name in ("RTX_2080_Ti_GPU_ofa", "Tesla_P40_GPU_ofa", "note10_lookuptable_ofa"):
        champion = registry.get_model_version_by_alias(name, "champion")  # registered by training
        assert int(champion.version) == 1 and float(champion.tags["val_mape_pct"]) > 0
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
    experiment = registry.get_experiment_by_name("ofa_latency_kedro").experiment_id
    models = {model.name for model in registry.search_logged_models([experiment])}
    assert {"all_devices", "Tesla_P40_GPU_ofa_from_RTX_2080_Ti_GPU_k10"} <= models


#: `make run`'s default pipeline on parameters that take seconds.
TINY_RUN = ",".join(
    [
        "sampling.hardware=twice",
        "sampling.num_subnets=30",  # training's smallest dataset (training.min_rows)
        params_arg("sampling.protocol", FAST_PROTOCOL),
        "sampling.progress=false",
        "training.config.epochs=2",
        "nas.population_size=8",
        "nas.generations=3",
    ]
)


def verified_rows(sidecar: Path) -> int:
    """Rows NAS verification appended to a dataset: its measured winners it did not hold."""
    sessions = json.loads(sidecar.read_text())["sessions"]
    return sum(s["appended"] for s in sessions if s.get("kind") == "verification")


@pytest.mark.slow
def test_make_run_twice_measures_once_and_the_second_run_reuses_the_rows(project_copy: Path):
    shutil.copy2(PROJECT_ROOT / "Makefile", project_copy)
    csv = project_copy / "data" / "01_raw" / "latency" / "twice_ofa.csv"
    first = make(project_copy, "run", f'ARGS=--params "{TINY_RUN}"')
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    measured = csv.read_bytes()
    assert len(pd.read_csv(csv)) == 30 + verified_rows(csv.with_suffix(".json"))

    second = make(project_copy, "run", f'ARGS=--params "{TINY_RUN}"')
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert csv.read_bytes().startswith(measured)  # only the verified winners are appended
    sessions = json.loads(csv.with_suffix(".json").read_text())["sessions"]
    sampling = [s for s in sessions if s.get("kind") != "verification"]
    assert [s["measured"] for s in sampling] == [30, 0]
    assert sampling[0]["already_measured"] == 0 and sampling[1]["already_measured"] >= 30
    report = json.loads(
        (project_copy / "data" / "08_reporting" / "sampling_report.json").read_text()
    )
    assert report["last_session"]["measured"] == 0
    results = pd.read_csv(project_copy / "data" / "07_model_output" / "nas_results.csv")
    assert (results["status"] == "ok").all()


def make_target(root: Path, target: str) -> subprocess.CompletedProcess:
    """``make <target>`` in ``root`` with the Makefile's own defaults (its .venv, not ours)."""
    # --no-print-directory: under `make test` this make is a sub-make, which would say where
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def removed(result: subprocess.CompletedProcess) -> set[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("removing ") for line in lines), lines
    return {line.removeprefix("removing ") for line in lines}


def fresh_clone_layout() -> set[str]:
    """The data/ folders and .gitkeep files of a fresh clone (git keeps no empty folder)."""
    keeps = [path.relative_to(PROJECT_ROOT) for path in (PROJECT_ROOT / "data").rglob(".gitkeep")]
    folders = {parent for keep in keeps for parent in keep.parents if parent != Path(".")}
    return {str(path) for path in [*keeps, *folders]}


def write_files(root: Path, paths: list[str]) -> None:
    for name in paths:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)


def test_clean_data_leaves_the_layout_of_a_fresh_clone_and_says_what_it_removes(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(PROJECT_ROOT / "Makefile", root)
    layout = fresh_clone_layout()
    for name in sorted(layout):
        if name.endswith(".gitkeep"):
            write_files(root, [name])
    write_files(root, ["conf/base/parameters.yml", "conf/local/mlflow.yml"])
    fresh = tree(root, skip=())
    assert {name for name in fresh if name.startswith("data")} == layout
    write_files(
        root,
        [
            "data/01_raw/latency/AMD_EPYC_CPU_ofa.csv",
            "data/01_raw/latency/.AMD_EPYC_CPU_ofa.json.k2x9.tmp",  # left by a killed save
            "data/02_intermediate/sampling_plan.csv",
            "data/06_models/predictors/AMD_EPYC_CPU_ofa.pt",
            "data/06_models/adapted/Tesla_P40_GPU_ofa.pt",
            "data/06_models/ray_tune/training/trial_0/result.json",
            "data/08_reporting/plots/AMD_EPYC_CPU_ofa_parity.png",
            "data/notes.txt",
            "mlflow.db",
            "mlartifacts/1/0a1b/artifacts/AMD_EPYC_CPU_ofa.pt",
            "mlruns/0/0a1b/artifacts/AMD_EPYC_CPU_ofa.pt",
            "info.log",
            "info.log.1",
        ],
    )
    assert removed(make_target(root, "clean-data")) == {
        "mlflow.db",
        "mlartifacts",
        "mlruns",
        "info.log",
        "info.log.1",
        "data/notes.txt",
        "data/01_raw/latency/AMD_EPYC_CPU_ofa.csv",
        "data/01_raw/latency/.AMD_EPYC_CPU_ofa.json.k2x9.tmp",
        "data/02_intermediate/sampling_plan.csv",
        "data/06_models/predictors",
        "data/06_models/adapted/Tesla_P40_GPU_ofa.pt",
        "data/06_models/ray_tune",
        "data/08_reporting/plots",
    }
    assert tree(root, skip=()) == fresh
    assert removed(make_target(root, "clean-data")) == set()


def test_clean_removes_the_environment_builds_and_caches_and_says_so(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(PROJECT_ROOT / "Makefile", root)
    write_files(root, ["data/01_raw/latency/AMD_EPYC_CPU_ofa.csv", "mlflow.db"])
    kept = tree(root, skip=())
    write_files(root, [".venv/bin/python", "build/index.html", ".pytest_cache/README.md"])
    assert removed(make_target(root, "clean")) == {".venv", "build", ".pytest_cache"}
    assert tree(root, skip=()) == kept
